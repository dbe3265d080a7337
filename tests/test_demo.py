"""The demo: data, model, custom loss, training loop, metrics and the ``lossforge demo`` command."""

from __future__ import annotations

import contextlib
import io
import json
import math
import sys

import pytest
import torch

import lossforge as lf
from lossforge.cli import main

pytest.importorskip("sklearn")

from lossforge.demo.data import DigitsData, load_digits_data
from lossforge.demo.losses import ConfidencePenaltyLoss, balanced_class_weight
from lossforge.demo.metrics import (
    confusion_matrix,
    expected_calibration_error,
    macro_f1,
    recall_per_class,
)
from lossforge.demo.model import SmallCNN
from lossforge.demo.progress import make_progress
from lossforge.demo.report import format_table, table_rows
from lossforge.demo.train import as_sum, train_run


@pytest.fixture(autouse=True)
def _one_thread():
    """The demo's models are tiny: one thread is as fast, and much faster on a busy machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _main_captured(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    """``lossforge demo --quick`` twice with the default seed, into two folders."""
    pytest.importorskip("matplotlib")
    runs = []
    for name in ("first", "second"):
        out = tmp_path_factory.mktemp(name)
        runs.append((out, *_main_captured(["demo", "--quick", "--out", str(out)])))
    return runs


# ---- the command --------------------------------------------------------------------------------

def test_quick_demo_writes_metrics_png_and_table(quick_runs):
    out, code, stdout, stderr = quick_runs[0]
    assert code == 0, stderr
    png = (out / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["runs"]) == {"builtin", "custom"}
    assert metrics["config"]["epochs"] == 2 and metrics["config"]["seed"] == 0
    custom = metrics["runs"]["custom"]
    assert set(custom["final"]["train_loss"]) == {"cross_entropy", "confidence_penalty", "total"}
    assert set(metrics["runs"]["builtin"]["final"]["train_loss"]) == {"cross_entropy", "total"}
    assert len(custom["history"]) == 2
    for run in metrics["runs"].values():
        for key in ("accuracy", "macro_f1", "rare_recall", "common_recall", "ece"):
            assert 0.0 <= run["final"][key] <= 1.0
        assert run["final"]["accuracy"] > 0.3  # two epochs already learn something
        tl = run["final"]["train_loss"]
        expected_total = tl["cross_entropy"] + 0.1 * tl.get("confidence_penalty", 0.0)
        assert tl["total"] == pytest.approx(expected_total, abs=1e-5)
    for text in ("accuracy", "macro-F1", "rare classes 5-9", "confidence_penalty", "(a) lf.CrossEntropyLoss()"):
        assert text in stdout
    assert "epoch 2/2" in stderr  # plain progress lines (not a terminal)


def test_same_seed_gives_identical_metrics(quick_runs):
    (out_a, code_a, *_), (out_b, code_b, *_) = quick_runs
    assert code_a == code_b == 0
    assert (out_a / "metrics.json").read_text() == (out_b / "metrics.json").read_text()


def test_other_seed_differs_and_no_plot_needs_no_matplotlib(quick_runs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    code, _, err = _main_captured(["demo", "--epochs", "1", "--seed", "1", "--no-plot", "--out", str(tmp_path)])
    assert code == 0, err
    assert not (tmp_path / "curves.png").exists()
    other = json.loads((tmp_path / "metrics.json").read_text())
    first = json.loads((quick_runs[0][0] / "metrics.json").read_text())
    assert other["config"]["seed"] == 1
    assert other["data"] == first["data"]  # the data split is fixed
    assert other["runs"]["builtin"]["history"][0] != first["runs"]["builtin"]["history"][0]


@pytest.mark.parametrize("missing", ["sklearn", "matplotlib"])
def test_missing_extra_is_a_one_line_error_naming_the_extra(tmp_path, monkeypatch, missing):
    monkeypatch.setitem(sys.modules, missing, None)
    code, _, err = _main_captured(["demo", "--quick", "--out", str(tmp_path)])
    assert code == 1
    assert err.count("\n") == 1
    assert "pip install 'lossforge[demo]'" in err
    assert {"sklearn": "scikit-learn", "matplotlib": "matplotlib"}[missing] in err
    assert "Traceback" not in err
    assert not (tmp_path / "metrics.json").exists()


# ---- data and model -----------------------------------------------------------------------------

def test_data_is_imbalanced_stratified_and_deterministic():
    data = load_digits_data()
    assert data.x_train.shape[1:] == (3, 32, 32) and data.x_train.dtype == torch.float32
    train, test = data.train_counts(), data.test_counts()
    full = torch.bincount(torch.as_tensor(pytest.importorskip("sklearn.datasets").load_digits().target)).tolist()
    assert sum(test) == len(data.y_test) == 540
    assert all(abs(t - 0.3 * f) <= 1 for t, f in zip(test, full))  # stratified 30%: a balanced test set
    for c in range(10):
        before = full[c] - test[c]  # the class's training images before thinning
        assert train[c] == (round(0.1 * before) if c in data.rare_classes else before)
    assert torch.equal(data.x_train[:, 0], data.x_train[:, 2])  # grey, repeated to 3 channels
    assert abs(float(data.x_train.mean())) < 1e-4 and abs(float(data.x_train.std()) - 1) < 1e-3
    again = load_digits_data()
    assert torch.equal(again.x_train, data.x_train) and torch.equal(again.y_test, data.y_test)


@pytest.mark.parametrize(("shape", "flat"), [((3, 32, 32), 64 * 4 * 4), ((3, 40, 24), 64 * 5 * 3),
                                             ((1, 28, 28), 64 * 3 * 3), ((3, 8, 8), 64)])
def test_model_flatten_size_follows_the_input_shape(shape, flat):
    model = SmallCNN(shape, num_classes=7)
    assert model.flat_features == flat
    assert model(torch.randn(5, *shape)).shape == (5, 7)


def test_model_refuses_inputs_too_small_for_three_pools():
    with pytest.raises(ValueError, match=r"SmallCNN: input height and width must be at least 8.*got 4x32"):
        SmallCNN((3, 4, 32))
    with pytest.raises(ValueError, match=r"input_shape must be \(channels, height, width\), got \(32, 32\)"):
        SmallCNN((32, 32))


# ---- the custom loss ----------------------------------------------------------------------------

def test_custom_loss_refuses_a_broadcast_target():
    logits = torch.randn(6, 10)
    loss = ConfidencePenaltyLoss()
    for bad in (torch.zeros(6, 1, dtype=torch.long), torch.zeros(1, dtype=torch.long),
                torch.zeros(6, 10, dtype=torch.long)):
        with pytest.raises(lf.ShapeError, match=r"ConfidencePenaltyLoss: target must have shape \(N, \*\) = "
                                                r"\(6,\) to match logits \(6, 10\)") as info:
            loss(logits, bad)
        assert info.value.expected == (6,) and info.value.actual == tuple(bad.shape)
    with pytest.raises(lf.ShapeError, match=r"Hint: target.squeeze\(1\)"):
        loss(logits, torch.zeros(6, 1, dtype=torch.long))
    with pytest.raises(TypeError, match=r"target must be an integer tensor of class indices, got dtype torch\.float32"):
        loss(logits, torch.zeros(6))
    criterion = lf.CrossEntropyLoss() + 0.1 * ConfidencePenaltyLoss()
    with pytest.raises(lf.ShapeError, match=r"target must have shape \(N, \*\) = \(6,\).*got \(6, 1\)"):  # the sum too
        criterion(logits, torch.zeros(6, 1, dtype=torch.long))


def test_custom_loss_values_gradients_and_toolkit_features():
    c = 10
    uniform = torch.zeros(4, c)
    assert float(ConfidencePenaltyLoss()(uniform, torch.zeros(4, dtype=torch.long))) == pytest.approx(0.0, abs=1e-6)
    huge = torch.tensor([[1e4] + [0.0] * (c - 1), [-1e4] * (c - 1) + [0.0]], requires_grad=True)
    value = ConfidencePenaltyLoss()(huge, torch.tensor([0, 1]))
    assert float(value.detach()) == pytest.approx(math.log(c), abs=1e-4)
    value.backward()
    assert torch.isfinite(huge.grad).all()
    # reference: log C + sum p log p, written independently
    x = torch.randn(5, c, 3, dtype=torch.float64)
    p = torch.softmax(x, dim=1)
    ref = math.log(c) + (p * torch.log(p)).sum(dim=1)
    got = ConfidencePenaltyLoss(reduction="none")(x, torch.zeros(5, 3, dtype=torch.long))
    torch.testing.assert_close(got, ref)
    # the base class adds sample_weight / mask
    mask = torch.tensor([True, False, True, False, True])[:, None].expand(5, 3)
    masked = ConfidencePenaltyLoss()(x, torch.zeros(5, 3, dtype=torch.long), mask=mask)
    torch.testing.assert_close(masked, ref[mask].mean())
    x32 = torch.randn(5, c, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: ConfidencePenaltyLoss()(t, torch.zeros(5, dtype=torch.long)), (x32,))


def test_composite_logs_every_term():
    w = balanced_class_weight([90, 10, 0])
    torch.testing.assert_close(w, torch.tensor([100 / 270, 100 / 30, 0.0]))
    criterion = lf.CrossEntropyLoss(class_weight=balanced_class_weight([5, 3, 2])) + 0.1 * ConfidencePenaltyLoss()
    logits, target = torch.randn(8, 3), torch.randint(3, (8,))
    terms = criterion.terms(logits, target)
    assert list(terms) == ["cross_entropy", "confidence_penalty", "total"]
    torch.testing.assert_close(terms["total"], terms["cross_entropy"] + 0.1 * terms["confidence_penalty"])
    single = as_sum(lf.CrossEntropyLoss()).terms(logits, target)
    assert list(single) == ["cross_entropy", "total"]


# ---- training loop and metrics ------------------------------------------------------------------

def _tiny_data(n=24):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, 8, 8, generator=g)
    y = torch.arange(n) % 4
    return DigitsData(x_train=x, y_train=y, x_test=x[:8], y_test=y[:8], num_classes=4, rare_classes=(2, 3),
                      keep_fraction=1.0)


def test_training_loop_zeroes_gradients_every_step(monkeypatch):
    calls = []
    original = torch.optim.Adam.zero_grad

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "zero_grad", counting)
    data = _tiny_data()
    torch.manual_seed(0)
    result = train_run("t", "tiny", lf.CrossEntropyLoss(), SmallCNN((3, 8, 8), 4), data, epochs=2, batch_size=5,
                       lr=1e-3, seed=0, progress=make_progress("none"))
    assert len(calls) == 2 * 5  # ceil(24 / 5) steps per epoch
    assert [row["epoch"] for row in result.history] == [1, 2]


@pytest.mark.parametrize("kind", ["plain", "rich"])
def test_progress_reporters(kind, capsys):
    if kind == "rich":
        pytest.importorskip("rich")
    torch.manual_seed(0)
    train_run("t", "tiny", lf.CrossEntropyLoss(), SmallCNN((3, 8, 8), 4), _tiny_data(), epochs=2, batch_size=8,
              lr=1e-3, seed=0, progress=make_progress(kind))
    err = capsys.readouterr().err
    assert "epoch 2/2" in err
    with pytest.raises(ValueError, match="make_progress: kind must be one of"):
        make_progress("fancy")


def test_metrics_match_scikit_learn():
    skm = pytest.importorskip("sklearn.metrics")
    g = torch.Generator().manual_seed(3)
    target = torch.randint(5, (200,), generator=g)
    pred = torch.where(torch.rand(200, generator=g) < 0.6, target, torch.randint(5, (200,), generator=g))
    pred[pred == 4] = 3  # class 4 is never predicted: precision 0/0
    cm = confusion_matrix(pred, target, 5)
    assert cm.tolist() == skm.confusion_matrix(target.numpy(), pred.numpy(), labels=list(range(5))).tolist()
    assert macro_f1(cm) == pytest.approx(skm.f1_score(target.numpy(), pred.numpy(), average="macro",
                                                      zero_division=0))
    torch.testing.assert_close(recall_per_class(cm), torch.as_tensor(
        skm.recall_score(target.numpy(), pred.numpy(), average=None, zero_division=0), dtype=torch.float64))
    probs = torch.nn.functional.one_hot(target, 5).double()
    assert expected_calibration_error(probs, target) == 0.0  # confident and right


def test_table_has_every_run_and_term():
    data = _tiny_data()
    runs = []
    for key, crit in (("a", lf.CrossEntropyLoss()), ("b", lf.CrossEntropyLoss() + 0.1 * ConfidencePenaltyLoss())):
        torch.manual_seed(0)
        runs.append(train_run(key, f"run {key}", crit, SmallCNN((3, 8, 8), 4), data, epochs=1, batch_size=8,
                              lr=1e-3, seed=0, progress=make_progress("none")))
    rows = table_rows(runs, data.rare_classes, data.num_classes)
    text = format_table(rows)
    assert rows[0] == ["", "run a", "run b"]
    assert "recall, rare classes 2-3" in text and "recall, common classes 0-1" in text
    row = next(r for r in rows if r[0] == "train loss: confidence_penalty")
    assert row[1] == "-" and row[2] != "-"
