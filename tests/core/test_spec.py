"""Spec strings, dicts and lists: a parser, never eval."""

from __future__ import annotations

import pytest
import torch

import lossforge as lf


def test_string_spec_builds_weighted_sum_with_arguments():
    c = lf.build("mse + 0.5*cross_entropy(label_smoothing=0.1, ignore_index=255)")
    assert isinstance(c, lf.WeightedSum)
    assert c.coefficients == {"mse": 1.0, "cross_entropy": 0.5}
    ce = c["cross_entropy"]
    assert ce.label_smoothing == 0.1 and ce.ignore_index == 255


def test_single_loss_is_returned_as_itself():
    m = lf.build("cross_entropy(label_smoothing=0.2)")
    assert isinstance(m, lf.CrossEntropyLoss) and m.label_smoothing == 0.2
    assert isinstance(lf.build("ce"), lf.CrossEntropyLoss)  # alias


@pytest.mark.parametrize("text,coefs", [
    ("2*mse", [2.0]),
    ("mse*3", [3.0]),
    ("mse - 0.5*mse", [1.0, -0.5]),
    ("0.5*(mse + 2*mse)", [0.5, 1.0]),
    ("mse/4", [0.25]),
    ("1e-2 * mse", [0.01]),
])
def test_arithmetic(text, coefs):
    c = lf.build(text)
    got = [1.0] if not isinstance(c, lf.WeightedSum) else list(c.coefficients.values())
    assert got == pytest.approx(coefs)


def test_literals_lists_none_bool_strings_negative():
    m = lf.build("cross_entropy(class_weight=[1, 2.5, -1e-1], ignore_index=None, reduction='sum')")
    assert torch.allclose(m.class_weight, torch.tensor([1.0, 2.5, -0.1]))
    assert m.ignore_index is None and m.reduction == "sum"


def test_dict_and_list_forms():
    m = lf.build({"loss": "cross_entropy", "label_smoothing": 0.1})
    assert isinstance(m, lf.CrossEntropyLoss) and m.label_smoothing == 0.1
    c = lf.build([{"loss": "mse"}, {"loss": "cross_entropy", "coef": 0.5}])
    assert c.coefficients == {"mse": 1.0, "cross_entropy": 0.5}
    c2 = lf.build(["mse", {"loss": "mse", "coef": 2}])
    assert list(c2.coefficients.values()) == [1.0, 2.0]
    mod = lf.MSELoss()
    assert lf.build(mod) is mod


@pytest.mark.parametrize("text,match", [
    ("__import__('os')", r"position 0: unknown loss '__import__'"),
    ("os.system('rm')", r"position 2: attribute access is not allowed"),
    ("mse.__class__", r"position 3: attribute access is not allowed"),
    ("mse(reduction=open('x'))", r"position 14: expected a literal"),
    ("msee", r"unknown loss 'msee'\. Did you mean 'mse'\?"),
    ("focl", r"unknown loss 'focl'"),
    ("mse +", r"position 5: expected a number, a loss name or '\('"),
    ("mse mse", r"position 4: unexpected 'mse'"),
    ("mse * mse", r"a product may hold only one loss"),
    ("2*3", r"a term must name a loss"),
    ("mse(label_smoothing=0.1, label_smoothing=0.2)", r"duplicate argument 'label_smoothing'"),
    ("mse/0", r"division by zero"),
    ("lambda: 0", r"unexpected character ':'"),
    ("mse; import os", r"unexpected character ';'"),
])
def test_malicious_and_malformed_specs_are_rejected(text, match):
    with pytest.raises(ValueError, match=match):
        lf.build(text)


def test_error_shows_a_caret_under_the_position():
    with pytest.raises(ValueError) as info:
        lf.build("mse + bogus")
    assert info.value.args[0].splitlines()[-1] == "        ^"


def test_unknown_argument_names_the_loss():
    with pytest.raises(ValueError, match=r"build: mse\(gama=2\).*unexpected keyword argument 'gama'"):
        lf.build("mse(gama=2)")
    with pytest.raises(ValueError, match=r"cross_entropy: label_smoothing must be in \[0, 1\], got 1.5"):
        lf.build("cross_entropy(label_smoothing=1.5)")


def test_bad_container_types():
    with pytest.raises(TypeError, match=r"spec must be a str, dict, list or nn\.Module, got int"):
        lf.build(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"a dict spec needs a 'loss' key, got keys \['gamma'\]"):
        lf.build({"gamma": 2})
    with pytest.raises(ValueError, match=r"loss must be a registered name, got 'dise'"):
        lf.build({"loss": "dise"})
