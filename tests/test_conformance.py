"""Registry-driven conformance (CONVENTIONS §6): every registered loss runs every check of
``lossforge.verify``, the same functions ``lossforge check`` runs. Ids read ``<loss>-<check>``."""

from __future__ import annotations

import pytest

import lossforge as lf
from lossforge.verify import CHECKS, CHECKS_SLOW, CheckTarget

LOSSES = lf.list_losses()


@pytest.mark.parametrize("check", list(CHECKS))
@pytest.mark.parametrize("loss", LOSSES)
def test_conformance(loss: str, check: str) -> None:
    result = CHECKS[check](CheckTarget.from_spec(lf.get_loss(loss)))
    assert result.status != "failed", f"{loss}: {result}"
    if result.status == "skipped":
        pytest.skip(result.detail)


@pytest.mark.slow
@pytest.mark.parametrize("loss", LOSSES)
def test_compile(loss: str) -> None:
    result = CHECKS_SLOW["compile"](CheckTarget.from_spec(lf.get_loss(loss)))
    assert result.status != "failed", f"{loss}: {result}"
    if result.status == "skipped":
        pytest.skip(result.detail)

