"""Every Python block of the tutorial and of the getting-started page runs, in order, as one script.

Each page runs in a subprocess of its own, so a loss it registers (``my_brier``) never reaches the
registry of the test session.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text(encoding="utf-8"))


@pytest.mark.parametrize("page", ["tutorial.md", "getting-started.md"])
def test_page_code_runs(page: str, tmp_path: Path) -> None:
    if page == "tutorial.md":
        pytest.importorskip("sklearn", reason="the tutorial trains on scikit-learn's digits (the demo extra)")
    blocks = python_blocks(DOCS / page)
    assert len(blocks) >= 4, f"{page}: expected several python blocks, found {len(blocks)}"
    script = tmp_path / "page.py"
    script.write_text("\n\n".join(f"# --- block {i + 1}\n{b}" for i, b in enumerate(blocks)), encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # a tiny model: threads only contend on a shared machine
    proc = subprocess.run([sys.executable, "-W", "error::UserWarning", str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{page} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
