"""``lossforge check TARGET``: the three TARGET forms, --init, --task, --json, --only, --all, exit codes and
one-line errors."""

from __future__ import annotations

import json
import re
import textwrap

import pytest

import lossforge as lf
from lossforge.cli import CLIError, main

SUMMARY = re.compile(r"(\d+) passed, (\d+) failed, (\d+) skipped")

USER_LOSSES = '''
import torch
from torch import nn


def broadcasting_mse(pred, target):
    return ((pred - target) ** 2).mean()


class ScaledMSE(nn.Module):
    def __init__(self, scale=1.0, reduction="mean"):
        super().__init__()
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.scale = scale
        self.reduction = reduction

    def forward(self, pred, target):
        if pred.shape != target.shape:
            raise ValueError(f"shapes differ: {tuple(pred.shape)} and {tuple(target.shape)}")
        u = self.scale * (pred - target) ** 2
        if self.reduction == "none":
            return u
        if self.reduction == "sum":
            return u.sum()
        if self.reduction == "mean":
            return u.sum() / max(u.numel(), 1)
        raise ValueError(f"unknown reduction {self.reduction!r}")


class NeedsArguments(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.num_classes = num_classes
'''


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def losses_file(tmp_path):
    path = tmp_path / "my_losses.py"
    path.write_text(textwrap.dedent(USER_LOSSES))
    return path


def _last(out: str) -> tuple[int, int, int]:
    match = SUMMARY.fullmatch(out.strip().splitlines()[-1])
    assert match, out
    return int(match[1]), int(match[2]), int(match[3])


# ---- TARGET forms


def test_a_registered_name_prints_the_table_and_passes(capsys):
    code, out, err = run(capsys, "check", "focal")
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[0].startswith("focal (task classification; ")
    assert lines[1].split() == ["check", "result", "detail"]
    assert any(line.split()[:2] == ["gamma_zero", "passed"] for line in lines)
    passed, failed, skipped = _last(out)
    assert failed == 0 and passed > 20 and skipped > 0


def test_module_colon_attr_of_a_broken_loss_exits_1(capsys, losses_file, monkeypatch):
    monkeypatch.syspath_prepend(str(losses_file.parent))
    code, out, err = run(capsys, "check", "my_losses:broadcasting_mse", "--task", "regression")
    assert code == 1, out + err
    line = next(line for line in out.splitlines() if line.split()[:1] == ["broadcast"])
    assert "FAILED" in line and "silent broadcasting: pred (8, 1) with target (8,)" in line
    assert _last(out)[1] >= 1


def test_file_colon_class_with_init(capsys, losses_file):
    code, out, err = run(capsys, "check", f"{losses_file}:ScaledMSE", "--task", "regression", "--init", "scale=2.0")
    assert code == 0, out + err
    assert out.splitlines()[0].startswith("ScaledMSE (task regression; ")
    assert "reduction_honoured" in out and _last(out)[1] == 0


def test_a_class_is_instantiated_with_its_defaults_or_refused_in_one_line(capsys, losses_file):
    code, _, err = run(capsys, "check", f"{losses_file}:NeedsArguments", "--task", "classification")
    assert code == 2
    assert "cannot instantiate NeedsArguments with its defaults" in err and "--init KEY=VALUE" in err
    assert "Traceback" not in err and err.count("\n") == 1
    code, _, err = run(capsys, "check", f"{losses_file}:ScaledMSE", "--task", "regression", "--init", "scale=-1")
    assert code == 2 and "scale must be positive, got -1" in err


def test_init_on_a_registered_name_builds_its_module(capsys):
    code, out, err = run(capsys, "check", "focal", "--init", "gamma=0.5", "--only", "gamma_zero,no_mutation")
    assert code == 0, out + err
    assert out.splitlines()[0].startswith("FocalLoss (task classification; ")
    assert _last(out) == (2, 0, 0)


# ---- options


def test_json_output(capsys, losses_file):
    code, out, _ = run(capsys, "check", f"{losses_file}:broadcasting_mse", "--task", "regression", "--json")
    assert code == 1
    data = json.loads(out)
    assert data["loss"] == "broadcasting_mse" and data["task"] == "regression" and data["ok"] is False
    statuses = {r["name"]: r["status"] for r in data["results"]}
    assert statuses["broadcast"] == "failed" and statuses["gradcheck"] == "passed"


def test_only_runs_the_named_checks(capsys):
    code, out, _ = run(capsys, "check", "mse", "--only", "broadcast,gradcheck")
    assert code == 0
    assert _last(out) == (2, 0, 0)
    code, _, err = run(capsys, "check", "mse", "--only", "gradchek")
    assert code == 2 and "Did you mean 'gradcheck'" in err


def test_all_on_a_few_names(capsys, monkeypatch):
    monkeypatch.setattr(lf, "list_losses", lambda family=None: ["mse", "dice", "triplet"])
    code, out, err = run(capsys, "check", "--all")
    assert code == 0, out + err
    lines = out.splitlines()
    assert [line.split()[0] for line in lines[:3]] == ["mse", "dice", "triplet"]
    assert lines[-2].startswith("3 losses in ")
    assert _last(out)[1] == 0
    code, out, _ = run(capsys, "check", "--all", "--json", "--only", "broadcast")
    data = json.loads(out)
    assert code == 0 and data["ok"] and [r["loss"] for r in data["losses"]] == ["mse", "dice", "triplet"]


# ---- usage errors: exit 2, one line, no traceback


@pytest.mark.parametrize(("argv", "message"), [
    (["check", "focall"], "unknown loss 'focall'. Did you mean 'focal'?"),
    (["check"], "give a TARGET"),
    (["check", "mse", "--all"], "not both"),
    (["check", "no_such_module_xyz:loss", "--task", "regression"],
     "cannot import module 'no_such_module_xyz': ModuleNotFoundError"),
    (["check", "torch.nn.functional:no_such_loss", "--task", "regression"], "has no attribute 'no_such_loss'"),
    (["check", "torch.nn.functional:mse_loss"], "needs task="),
    (["check", "torch.nn.functional:mse_loss", "--task", "regresion"], "Did you mean 'regression'?"),
    (["check", "torch.nn.functional:mse_loss", "--task", "regression", "--init", "x=1"], "--init applies to a class"),
    (["check", "mse", "--init", "gamma"], "--init must be KEY=VALUE"),
    (["check", "mse", "--dtypes", "int8"], "dtypes must be float16 or bfloat16"),
    (["check", "torch.nn:TripletMarginLoss", "--task", "embedding"],
     "cannot be called with the embedding task's inputs ((8, 4), (8,))"),
])
def test_usage_errors(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2, out + err
    assert message in err, err
    assert "Traceback" not in err and err.count("\n") == 1


def test_an_import_error_in_the_file_is_one_line_unless_debug(capsys, tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("import not_a_module_anywhere\n")
    code, _, err = run(capsys, "check", f"{path}:loss", "--task", "regression")
    assert code == 2
    assert f"cannot import {str(path)!r}: ModuleNotFoundError" in err and "Traceback" not in err
    with pytest.raises(CLIError, match="cannot import"):
        main(["--debug", "check", f"{path}:loss", "--task", "regression"])
    missing = tmp_path / "missing.py"
    code, _, err = run(capsys, "check", f"{missing}:loss", "--task", "regression")
    assert code == 2 and "no such file" in err


@pytest.mark.slow
def test_compile_flag(capsys):
    code, out, err = run(capsys, "check", "mse", "--compile", "--only", "broadcast")
    assert code == 0, out + err
    assert any(line.split()[:2] == ["compile", "passed"] for line in out.splitlines())


@pytest.mark.slow
def test_all_registered_losses_pass(capsys):
    code, out, err = run(capsys, "check", "--all")  # about a minute on 2 cores
    assert code == 0, out + err
    passed, failed, _ = _last(out)
    assert failed == 0 and passed > 20 * len(lf.list_losses())
    assert out.splitlines()[-2].startswith(f"{len(lf.list_losses())} losses in ")
