"""``lossforge plot`` (loss and gradient curves) and ``lossforge bench`` (the benchmarks/ runner)."""

from __future__ import annotations

import argparse
import json
import textwrap

import pytest
import torch
import torch.nn.functional as F

from lossforge.cli import main
from lossforge.cli._bench import discover, parse_tables, ratios
from lossforge.cli._plot import parse_param
from lossforge.demo.lossplot import loss_curves


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---- plot: the numbers --------------------------------------------------------------------------

def test_regression_curve_is_loss_of_the_residual_and_its_derivative():
    c = loss_curves("huber", {"delta": [0.5, 2.0]}, lo=-3, hi=3, points=61)
    x = c.x
    for (_, kw, values, grad) in c.curves:
        d = kw["delta"]
        assert torch.allclose(values, torch.where(x.abs() <= d, 0.5 * x**2, d * (x.abs() - 0.5 * d)))
        assert torch.allclose(grad, x.clamp(-d, d))
    assert c.axis.startswith("residual")


def test_regression_curve_is_taken_around_the_target():
    c = loss_curves("mape", lo=-0.5, hi=0.5, points=11, target=2.0)
    assert torch.allclose(c.curves[0][2], c.x.abs() / 2.0)


def test_focal_with_gamma_zero_is_cross_entropy_of_the_margin():
    c = loss_curves("focal", {"gamma": [0, 2]}, lo=-4, hi=4, points=81, classes=4)
    m = c.x
    logits = torch.cat([m[:, None], torch.zeros(len(m), 3, dtype=m.dtype)], dim=1)
    target = torch.zeros(len(m), dtype=torch.long)
    ce = F.cross_entropy(logits, target, reduction="none")
    label, _, values, grad = c.curves[0]
    assert label == "gamma=0"
    assert torch.allclose(values, ce)
    assert torch.allclose(grad, torch.softmax(logits, 1)[:, 0] - 1)  # dCE/dz_y = p_y - 1
    focal_values = c.curves[1][2]
    assert (focal_values <= ce + 1e-12).all()  # the focal factor only shrinks the loss
    assert "C = 4" in c.axis
    assert float(c.x[40]) == 0.0  # the range is symmetric: 0 is on the grid exactly


def test_binary_and_hinge_curves_take_the_margin_of_one_logit():
    c = loss_curves("binary_cross_entropy_with_logits", lo=-2, hi=2, points=5)
    assert torch.allclose(c.curves[0][2], F.softplus(-c.x))
    h = loss_curves("hinge", lo=-2, hi=2, points=5)
    assert h.curves[0][2].tolist() == [3.0, 2.0, 1.0, 0.0, 0.0]


def test_region_losses_are_drawn_per_one_pixel_image():
    c = loss_curves("dice", lo=-3, hi=3, points=7, classes=3)
    values = c.curves[0][2]
    assert torch.isfinite(values).all() and values[0] > values[-1]


def test_losses_that_cannot_be_drawn_say_why():
    with pytest.raises(ValueError, match=r"'triplet' takes embeddings → labels"):
        loss_curves("triplet")
    with pytest.raises(ValueError, match=r"focal\(gamma=-1\) could not be evaluated.*gamma"):
        loss_curves("focal", {"gamma": [-1]})
    with pytest.raises(ValueError, match="lo < hi"):
        loss_curves("huber", lo=1, hi=0)


def test_parse_param_keeps_lists_and_strings():
    assert parse_param("gamma=0,1,2.5") == ("gamma", [0, 1, 2.5])
    assert parse_param("class_counts=[100,10],[10,100]") == ("class_counts", [[100, 10], [10, 100]])
    assert parse_param("mode='a,b',c") == ("mode", ["a,b", "c"])
    for bad, why in (("gamma", "must be NAME=V1,V2"), ("=1", "must be NAME=V1,V2"),
                     ("gamma=", "gamma needs at least one value")):
        with pytest.raises(argparse.ArgumentTypeError, match=why):
            parse_param(bad)


# ---- plot: the command --------------------------------------------------------------------------

def test_plot_command_writes_a_png_and_prints_values(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "sub" / "focal.png"
    code, stdout, stderr = run(capsys, "plot", "focal", "--param", "gamma=0,1,2,5", "--out", str(out))
    assert code == 0, stderr
    png = out.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    assert "gamma=5: gradient" in stdout and f"wrote {out}" in stdout
    line = next(line for line in stdout.splitlines() if line.startswith("gamma=0: loss"))
    assert line.split()[4] == "0.6931"  # log 2 at margin 0 with two classes


def test_plot_command_json_and_combinations(capsys):
    code, stdout, _ = run(capsys, "plot", "focal", "--param", "gamma=0,2", "--param", "alpha=0.25,0.5",
                          "--no-plot", "--json", "--points", "11")
    assert code == 0
    data = json.loads(stdout)
    assert len(data["x"]) == 11 and len(data["curves"]) == 4
    assert data["curves"][3]["params"] == {"gamma": 2, "alpha": 0.5}


@pytest.mark.parametrize(("argv", "message"), [
    (["plot", "focall"], "Did you mean 'focal'"),
    (["plot", "triplet"], "takes embeddings → labels"),
    (["plot", "focal", "--param", "gamma=1", "--param", "gamma=2"], "given twice"),
    (["plot", "focal", "--param", "gama=1"], "could not be evaluated"),
    (["plot", "focal", "--range", "2,1"], "LO < HI"),
])
def test_plot_usage_errors(capsys, argv, message):
    code, _, err = run(capsys, *argv, "--no-plot")
    assert code == 2
    assert message in err and "Traceback" not in err


# ---- bench --------------------------------------------------------------------------------------

FAKE = '''\
"""A fake benchmark against torchvision's formula, for the tests."""
import argparse
import os


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--fail", action="store_true")
    args = p.parse_args(argv)
    if args.fail:
        raise SystemExit(3)
    print("# environment line")
    print("| loss | ms | time / torch | goal |")
    print("|------|----|--------------|------|")
    print(f"| focal | 12 | {1.25 if args.quick else 1.5:.2f}x | met |")
    print("| poly1 | 10 | 0.98x | met |")
    print("against=" + os.environ.get("LOSSFORGE_BENCH_AGAINST", ""))


if __name__ == "__main__":
    main()
'''


@pytest.fixture
def bench_dir(tmp_path):
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "bench_fake.py").write_text(FAKE)
    (folder / "bench_plain.py").write_text('"""No library here."""\nprint("| a | b / c |\\n|---|---|\\n| x | 2.0 |")\n')
    return folder


def test_parse_tables_and_ratio_columns():
    text = textwrap.dedent("""\
        title
        | loss | ms | torch / lossforge | extra / logits | of copy bw |
        |---|---|---|---|---|
        | mse | 1.0 | 1.10 | 0.5x | 80% |
        | l1 | 2.0 | - | 1.5x | 70% |
        """)
    (table,) = parse_tables(text)
    assert table["header"][0] == "loss" and len(table["rows"]) == 2
    found = ratios(table)
    assert {(r["row"], r["column"]) for r in found} == {
        ("mse", "torch / lossforge"), ("l1", "torch / lossforge"), ("mse", "extra / logits"), ("l1", "extra / logits")}
    assert next(r for r in found if r["row"] == "l1" and r["column"] == "torch / lossforge")["value"] is None
    assert next(r for r in found if r["row"] == "l1" and r["column"] == "extra / logits")["value"] == 1.5


def test_discover_finds_scripts_and_the_libraries_they_compare_with(bench_dir):
    found = discover(bench_dir)
    assert list(found) == ["fake", "plain"]
    assert found["fake"].libraries == ["torchvision"] and found["plain"].libraries == []
    assert found["fake"].summary.startswith("A fake benchmark")


def test_bench_lists_without_a_name(capsys, bench_dir):
    code, out, _ = run(capsys, "bench", "--dir", str(bench_dir))
    assert code == 0
    assert "fake" in out and "[vs torchvision]" in out and "plain" in out


def test_bench_runs_prints_ratios_and_json(capsys, bench_dir):
    code, out, err = run(capsys, "bench", "fake", "--dir", str(bench_dir), "--quick")
    assert code == 0, err
    assert "## fake: ok" in out and "# environment line" in out
    assert "time / torch" in out and "1.25x" in out and "0.98x" in out
    assert "| goal |" not in out  # only the ratio columns
    code, out, _ = run(capsys, "bench", "--all", "--dir", str(bench_dir), "--json", "--against", "torchvision")
    assert code == 0
    data = json.loads(out)
    assert [r["name"] for r in data["results"]] == ["fake", "plain"]
    fake = data["results"][0]
    assert fake["returncode"] == 0 and fake["libraries"] == ["torchvision"]
    assert [(r["row"], r["value"]) for r in fake["ratios"]] == [("focal", 1.5), ("poly1", 0.98)]
    assert fake["against"]["torchvision"]["used"] is True
    installed = data["against"]["torchvision"]
    assert ("against=torchvision" in fake["stdout"]) == bool(installed)


def test_bench_against_selects_the_benchmarks_that_use_the_library(capsys, bench_dir):
    code, out, _ = run(capsys, "bench", "--against", "torchvision", "--dir", str(bench_dir), "--json")
    assert code == 0
    assert [r["name"] for r in json.loads(out)["results"]] == ["fake"]
    code, out, _ = run(capsys, "bench", "--against", "smp", "--dir", str(bench_dir))
    assert code == 1 and "no benchmark" in out


def test_bench_failure_and_usage_errors(capsys, bench_dir):
    code, out, _ = run(capsys, "bench", "fake", "--dir", str(bench_dir), "--bench-args=--fail")
    assert code == 1 and "FAILED (exit 3)" in out
    code, _, err = run(capsys, "bench", "fak", "--dir", str(bench_dir))
    assert code == 2 and "Did you mean 'fake'" in err
    code, _, err = run(capsys, "bench", "--against", "monia", "--dir", str(bench_dir))
    assert code == 2 and "Did you mean 'monai'" in err
    code, _, err = run(capsys, "bench", "--dir", str(bench_dir / "nowhere"))
    assert code == 1 and "no benchmarks/bench_*.py" in err


def test_bench_runs_a_real_benchmark_of_the_repository(capsys):
    code, out, err = run(capsys, "bench", "--json")
    assert code == 0, err
    names = [b["name"] for b in json.loads(out)["benchmarks"]]
    assert "elementwise" in names and "softmax_family" in names
    code, out, err = run(capsys, "bench", "elementwise", "--quick", "--json",
                         "--bench-args", "--only mse --no-compile --repeats 1")
    assert code == 0, err
    (result,) = json.loads(out)["results"]
    assert result["returncode"] == 0, result["stderr_tail"]
    assert [r["row"] for r in result["ratios"] if r["column"] == "torch / lossforge"] == ["mse"]
