"""The Loss base class, @elementwise_loss, register_loss, the registry, validation mode, errors."""

from __future__ import annotations

import inspect

import pytest
import torch

import lossforge as lf
import lossforge.functional as LF


def test_loss_subclass_in_five_lines():
    class Cubic(lf.Loss):
        def elementwise(self, pred, target):
            return (pred - target).abs() ** 3

    pred, target = torch.tensor([1.0, -2.0]), torch.zeros(2)
    assert Cubic()(pred, target).item() == pytest.approx(4.5)
    assert Cubic(reduction="sum")(pred, target).item() == pytest.approx(9.0)
    assert Cubic()(pred, target, mask=torch.tensor([True, False])).item() == pytest.approx(1.0)
    assert Cubic()(pred, target, sample_weight=torch.tensor([3.0, 1.0])).item() == pytest.approx(11 / 4)


def test_loss_subclass_refuses_the_articles_broadcast():
    class Sq(lf.Loss):
        def elementwise(self, pred, target):
            return (pred - target) ** 2

    with pytest.raises(lf.ShapeError, match=r"target must have the shape of pred \(8, 1\), got \(8,\)") as info:
        Sq()(torch.randn(8, 1), torch.randn(8))
    assert info.value.expected == (8, 1) and info.value.actual == (8,)


def test_loss_subclass_must_define_something():
    with pytest.raises(TypeError, match="must define elementwise"):
        class Empty(lf.Loss):
            pass


def test_loss_half_inputs_compute_in_float32():
    class Sq(lf.Loss):
        def elementwise(self, pred, target):
            return (pred - target) ** 2

    x = torch.full((4,), 300.0, dtype=torch.float16, requires_grad=True)
    out = Sq()(x, torch.zeros(4, dtype=torch.float16))
    assert out.dtype == torch.float32 and out.item() == 90000.0  # 9e4 overflows float16
    out.backward()
    assert x.grad.dtype == torch.float16


def test_weight_keyword_is_refused_with_a_hint():
    with pytest.raises(TypeError, match=r"weight= is not an argument.*Hint: use sample_weight=.*class_weight="):
        LF.mse_loss(torch.ones(2), torch.ones(2), weight=torch.ones(2))
    with pytest.raises(TypeError, match=r"weight= is not an argument"):
        lf.MSELoss()(torch.ones(2), torch.ones(2), weight=torch.ones(2))
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'maks'. Did you mean 'mask'"):
        LF.mse_loss(torch.ones(2), torch.ones(2), maks=None)


def test_elementwise_loss_decorator_signature_module_and_registration():
    @lf.elementwise_loss(name="test_scaled_l1")
    def scaled_l1(pred, target, *, scale: float = 1.0):
        """Scaled L1."""
        return scale * (pred - target).abs()

    sig = inspect.signature(scaled_l1)
    assert [p.kind for p in sig.parameters.values()][:2] == [inspect.Parameter.POSITIONAL_ONLY] * 2
    assert sig.parameters["reduction"].default == "mean"
    assert sig.parameters["sample_weight"].default is None and sig.parameters["mask"].default is None
    x, t = torch.tensor([1.0, -3.0]), torch.zeros(2)
    assert scaled_l1(x, t, scale=2.0).item() == 4.0
    assert scaled_l1(x, t, reduction="none").tolist() == [1.0, 3.0]
    m = scaled_l1.Module(scale=2.0)
    assert type(m).__name__ == "TestScaledL1Loss"
    assert m(x, t).item() == 4.0
    spec = lf.get_loss("test_scaled_l1")
    assert spec.function is scaled_l1 and spec.module is scaled_l1.Module and spec.family == "custom"
    assert "test_scaled_l1" in lf.list_losses("custom")
    assert isinstance(lf.build("test_scaled_l1(scale=3.0) + mse"), lf.WeightedSum)
    with pytest.raises(lf.ShapeError, match=r"test_scaled_l1: target must have the shape of pred"):
        scaled_l1(torch.ones(3, 1), torch.ones(3))
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'scal'. Did you mean 'scale'"):
        scaled_l1.Module(scal=2.0)
    with pytest.raises(ValueError, match="already registered"):
        lf.register_loss(lf.get_loss("test_scaled_l1"))
    lf.unregister_loss("test_scaled_l1")
    assert "test_scaled_l1" not in lf.list_losses()


def test_elementwise_loss_rejects_reserved_keywords():
    with pytest.raises(TypeError, match=r"must not take \['reduction'\]"):
        @lf.elementwise_loss
        def bad(pred, target, *, reduction="mean"):
            return pred


def test_registry_lookup_errors_and_listing():
    with pytest.raises(ValueError, match=r"get_loss: name must be a registered loss, got 'crossentropy'. "
                                         r"Did you mean 'cross_entropy'"):
        lf.get_loss("crossentropy")
    with pytest.raises(ValueError, match=r"family must be one of .*got 'regresion'. Did you mean 'regression'"):
        lf.list_losses("regresion")
    spec = lf.get_loss("ce")
    assert spec.name == "cross_entropy" and spec.module is lf.CrossEntropyLoss
    assert spec.input_kind == "logits" and spec.target_kind == "index" and spec.unit
    assert spec.reference and spec.sample_inputs(torch.float32, "cpu") and spec.error_inputs()


def test_validation_mode_checks_class_range_only_when_on():
    logits, target = torch.randn(3, 4), torch.tensor([0, 1, 7])
    with lf.validation(True), pytest.raises(ValueError, match=r"target must hold class indices in \[0, 3\]"
                                                              r" or ignore_index=-100, got class 7"):
        LF.cross_entropy(logits, target)
    lf.set_validation(False)
    try:
        assert not lf.validation_enabled()
        with pytest.raises(IndexError, match="Target 7 is out of bounds"):  # torch's own kernel check
            LF.cross_entropy(logits, target)
    finally:
        lf.set_validation(True)


def test_module_state_dict_round_trip_keeps_class_weight():
    m = lf.CrossEntropyLoss(class_weight=torch.tensor([1.0, 3.0]))
    m2 = lf.CrossEntropyLoss(class_weight=torch.ones(2))
    m2.load_state_dict(m.state_dict())
    assert torch.equal(m2.class_weight, torch.tensor([1.0, 3.0]))


def test_import_costs_torch_only():
    import subprocess
    import sys

    code = ("import sys, torch; before = set(sys.modules); import lossforge; new = set(sys.modules) - before; "
            "print(sorted(m for m in new if m.split('.')[0] in "
            "('sklearn', 'matplotlib', 'rich', 'tqdm', 'monai', 'kornia', 'numpy', 'scipy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
