"""The GPU linear + cross-entropy script: a CPU smoke run of its whole report, and its refusal without CUDA."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "benchmarks.gpu_lce", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)


def test_cpu_smoke_run_reports_every_implementation() -> None:
    done = _run("--device", "cpu", "--quick", "--repeats", "1", "--dtype", "float32")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "copy bandwidth:" in out and "GEMM:" in out and "gradients dX + dW" in out
    lines = out.splitlines()
    rows = lines[next(i for i, line in enumerate(lines) if line.startswith("implementation")) + 1:]
    assert any(r.startswith("lossforge linear_cross_entropy") for r in rows)
    losses = {float(r.split()[-1]) for r in rows}
    assert max(losses) - min(losses) < 1e-4  # every implementation computes the same loss


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_refuses_cuda_without_a_device() -> None:
    done = _run()
    assert done.returncode != 0 and "no CUDA device here" in done.stderr
