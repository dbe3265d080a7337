"""The command line: ``lossforge list`` / ``show``, exit codes, one-line errors, lazy imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import lossforge as lf
from lossforge.cli import COMMANDS, CLIError, main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---- list ---------------------------------------------------------------------------------------

def test_list_shows_every_registered_loss_once(capsys):
    code, out, err = run(capsys, "list")
    assert code == 0, err
    names = [line.split()[0] for line in out.splitlines()]
    assert names == lf.list_losses()


def test_list_line_has_family_kinds_unit_summary(capsys):
    code, out, _ = run(capsys, "list", "cross_entropy")
    assert code == 0
    line = next(line for line in out.splitlines() if line.split()[0] == "cross_entropy")
    spec = lf.get_loss("cross_entropy")
    assert spec.family in line
    assert f"{spec.input_kind}→{spec.target_kind}" in line or f"{spec.input_kind}->{spec.target_kind}" in line
    assert spec.unit in line
    assert line.endswith(spec.summary)


def test_list_pattern_matches_substrings_aliases_and_globs(capsys):
    _, out, _ = run(capsys, "list", "entropy")
    names = [line.split()[0] for line in out.splitlines()]
    assert "cross_entropy" in names and "mse" not in names
    assert all("entropy" in n for n in names)
    _, out, _ = run(capsys, "list", "ce")  # the alias of cross_entropy
    assert "cross_entropy" in [line.split()[0] for line in out.splitlines()]
    _, out, _ = run(capsys, "list", "m?e")
    expected = [n for n in lf.list_losses()
                if any(len(k) == 3 and k[0] == "m" and k[2] == "e" for k in (n, *lf.get_loss(n).aliases))]
    assert "mse" in expected
    assert [line.split()[0] for line in out.splitlines()] == expected


def test_list_family_and_json(capsys):
    code, out, _ = run(capsys, "list", "--family", "regression", "--json")
    assert code == 0
    entries = json.loads(out)
    assert [e["name"] for e in entries] == lf.list_losses("regression")
    assert "mse" in [e["name"] for e in entries]
    mse = next(e for e in entries if e["name"] == "mse")
    assert mse == {**mse, "family": "regression", "input_kind": "real", "target_kind": "real",
                   "module": "MSELoss", "function": "mse_loss", "summary": lf.get_loss("mse").summary}


def test_list_unknown_family_is_a_usage_error_with_suggestion(capsys):
    code, out, err = run(capsys, "list", "--family", "clasification")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "Did you mean 'classification'?" in err


def test_list_without_match_exits_1(capsys):
    code, out, err = run(capsys, "list", "no_such_loss_xyz")
    assert code == 1
    assert out == ""
    assert "no registered loss matching 'no_such_loss_xyz'" in err
    code, out, _ = run(capsys, "list", "no_such_loss_xyz", "--json")
    assert code == 1 and json.loads(out) == []


# ---- show ---------------------------------------------------------------------------------------

def test_show_prints_signatures_spec_and_docstring(capsys):
    code, out, err = run(capsys, "show", "cross_entropy")
    assert code == 0, err
    spec = lf.get_loss("cross_entropy")
    assert out.splitlines()[0].startswith("cross_entropy")
    assert "lossforge.functional.cross_entropy(logits, target, /, *, class_weight=None" in out
    assert "lossforge.CrossEntropyLoss(*, class_weight=None" in out
    for text in (spec.family, spec.input_kind, spec.target_kind, spec.unit, spec.reference):
        assert text in out
    assert ".. math::" in out  # the formula
    assert spec.summary in out


@pytest.mark.parametrize("alias", ["ce", "CrossEntropyLoss", "cross_entropy"])
def test_show_accepts_alias_function_and_module_names(capsys, alias):
    code, out, _ = run(capsys, "show", alias)
    assert code == 0
    assert out.splitlines()[0].startswith("cross_entropy")


def test_show_works_for_every_registered_loss(capsys):
    for name in lf.list_losses():
        code, out, err = run(capsys, "show", name)
        assert code == 0, (name, err)
        assert out.startswith(name)


def test_show_unknown_name_one_line_did_you_mean_exit_2(capsys):
    code, out, err = run(capsys, "show", "cros_entropy")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "unknown loss 'cros_entropy'" in err
    assert "Did you mean 'cross_entropy'?" in err
    assert "Traceback" not in err


def test_debug_raises_instead_of_one_line(capsys):
    with pytest.raises(CLIError, match="unknown loss 'cros_entropy'"):
        main(["--debug", "show", "cros_entropy"])
    with pytest.raises(CLIError, match=r"unknown loss 'cros_entropy'\. Did you mean 'cross_entropy'"):
        main(["show", "cros_entropy", "--debug"])


def test_unexpected_exception_is_one_line_without_debug(capsys, monkeypatch):
    from lossforge.cli import _show

    def boom(name):
        raise RuntimeError("broken registry entry")

    monkeypatch.setattr(_show, "describe", boom)
    code, _, err = run(capsys, "show", "mse")
    assert code == 1
    assert err.count("\n") == 1 and "RuntimeError: broken registry entry" in err and "--debug" in err
    with pytest.raises(RuntimeError, match="broken registry entry"):
        main(["show", "mse", "--debug"])


# ---- parser -------------------------------------------------------------------------------------

def test_usage_errors_exit_2(capsys):
    assert run(capsys, "frobnicate")[0] == 2
    assert run(capsys)[0] == 2  # a command is required
    assert run(capsys, "demo", "--epochs", "0")[0] == 2
    assert run(capsys, "show")[0] == 2


def test_help_lists_the_commands(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("list", "show", "demo"):
        assert command in out
    code, out, _ = run(capsys, "--version")
    assert code == 0 and lf.__version__ in out


def test_every_command_module_has_the_extension_interface():
    for module in COMMANDS:
        assert callable(module.add_parser) and callable(module.run)


def test_python_m_lossforge_and_lazy_optional_imports():
    code = ("import sys, lossforge, lossforge.cli, lossforge.cli._demo; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'matplotlib', 'rich'}))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
    res = subprocess.run([sys.executable, "-m", "lossforge", "show", "cros_entropy"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 2
    assert "Did you mean 'cross_entropy'?" in res.stderr and "Traceback" not in res.stderr
