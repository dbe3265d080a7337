"""Test-suite settings: validation mode on, seeded, deterministic."""

from __future__ import annotations

import pytest
import torch

import lossforge as lf


@pytest.fixture(autouse=True)
def _validation_and_seed():
    torch.manual_seed(0)
    with lf.validation(True):
        yield
