"""The GPU linear + cross-entropy script: a CPU smoke run of its whole report, and its refusal without CUDA."""

from __future__ import annotations

import pytest
import torch
from benchmarks import gpu_lce


def test_cpu_smoke_run_reports_every_implementation(capsys: pytest.CaptureFixture[str]) -> None:
    gpu_lce.main(["--device", "cpu", "--quick", "--repeats", "1", "--dtype", "float32"])
    out = capsys.readouterr().out
    assert "copy bandwidth:" in out and "GEMM:" in out and "gradients dX + dW" in out
    lines = out.splitlines()
    rows = lines[next(i for i, line in enumerate(lines) if line.startswith("implementation")) + 1:]
    assert any(r.startswith("lossforge linear_cross_entropy") for r in rows)
    losses = {float(r.split()[-1]) for r in rows}
    assert max(losses) - min(losses) < 1e-4  # every implementation computes the same loss


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_refuses_cuda_without_a_device() -> None:
    with pytest.raises(SystemExit, match="no CUDA device here"):
        gpu_lce.main([])
