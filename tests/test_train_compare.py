"""``lossforge train`` / ``compare``: data sets, tasks, criteria, the training loop, outputs, determinism."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math

import pytest
import torch
import torch.nn.functional as F

import lossforge as lf
from lossforge.cli import main

pytest.importorskip("sklearn")

from lossforge.demo.datasets import (
    ASYMMETRIC_FLIPS,
    TaskData,
    load_dataset,
    make_regression,
    make_shapes,
)
from lossforge.demo.progress import make_progress
from lossforge.demo.tasks import (
    adapt_target,
    build_criterion,
    evaluate,
    infer_task,
    recall_at_1,
    segmentation_scores,
    spec_terms,
    target_kind,
)
from lossforge.demo.trainer import TrainConfig, compare_rows, train_spec


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _main(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _small(data: TaskData, n_train: int, n_test: int) -> TaskData:
    return TaskData(name=data.name, task=data.task, x_train=data.x_train[:n_train], y_train=data.y_train[:n_train],
                    x_test=data.x_test[:n_test], y_test=data.y_test[:n_test], num_classes=data.num_classes,
                    summary=data.summary, info=data.info, rare_classes=data.rare_classes)


# ---- data ---------------------------------------------------------------------------------------

def test_every_data_set_is_deterministic_and_shaped_for_its_task():
    for name in ("digits", "shapes", "regression-outliers", "digits-unseen", "digits-symmetric-noise"):
        a, b = load_dataset(name), load_dataset(name)
        for field in ("x_train", "y_train", "x_test", "y_test"):
            assert torch.equal(getattr(a, field), getattr(b, field)), (name, field)
        assert len(a.x_train) == len(a.y_train) and len(a.x_test) == len(a.y_test)
    assert not torch.equal(load_dataset("shapes", seed=1).x_train, load_dataset("shapes").x_train)


def test_symmetric_noise_moves_exactly_the_rate_to_other_classes_and_keeps_test_clean():
    clean = load_dataset("digits")
    noisy = load_dataset("digits-symmetric-noise", noise=0.4)
    assert torch.equal(noisy.y_train_clean, clean.y_train)
    wrong = noisy.y_train != clean.y_train
    assert int(wrong.sum()) == round(0.4 * len(clean.y_train))
    assert torch.equal(noisy.y_test, clean.y_test)
    # every class receives wrong labels: the flips are spread over the other classes
    assert (torch.bincount(noisy.y_train[wrong], minlength=10) > 0).all()


def test_asymmetric_noise_only_flips_between_the_listed_pairs():
    clean = load_dataset("digits")
    noisy = load_dataset("digits-asymmetric-noise", noise=0.4)
    wrong = (noisy.y_train != clean.y_train).nonzero().flatten()
    assert len(wrong) > 0
    for i in wrong.tolist():
        assert ASYMMETRIC_FLIPS[int(clean.y_train[i])] == int(noisy.y_train[i])
    for source in ASYMMETRIC_FLIPS:
        n = int((clean.y_train == source).sum())
        assert int((clean.y_train[wrong] == source).sum()) == round(0.4 * n)


def test_imbalanced_digits_thin_only_the_rare_training_classes():
    data = load_dataset("digits-imbalanced", keep=0.1)
    counts = torch.bincount(data.y_train, minlength=10)
    assert data.rare_classes == (5, 6, 7, 8, 9)
    assert counts[:5].min() > 100 and counts[5:].max() < 15
    assert torch.bincount(data.y_test, minlength=10).min() >= 50  # balanced test set


def test_shapes_have_empty_images_and_every_class():
    x, m = make_shapes(64, seed=0)
    assert x.shape == (64, 1, 32, 32) and m.shape == (64, 32, 32)
    assert set(torch.unique(m).tolist()) == {0, 1, 2, 3}
    empty = (m.flatten(1).amax(1) == 0).sum()
    assert 3 <= int(empty) <= 25
    assert torch.equal(make_shapes(8, seed=3)[1], make_shapes(8, seed=3)[1])


def test_regression_outliers_only_in_training_targets():
    _, y, _, yt, clean = make_regression(200, 50, outliers=0.1)
    gross = (y - clean).abs()
    assert int((gross > 0).sum()) == 20 and float(gross[gross > 0].min()) >= 5.0
    assert abs(float(clean.std()) - 1.0) < 0.2 and float(yt.abs().max()) < 5.0


def test_unseen_digits_split_classes():
    data = load_dataset("digits-unseen")
    assert set(data.y_train.tolist()) == {0, 1, 2, 3, 4}
    assert set(data.y_test.tolist()) == {5, 6, 7, 8, 9}
    assert data.num_classes == 5


def test_load_dataset_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"got 'digit'.*Did you mean 'digits'"):
        load_dataset("digit")
    with pytest.raises(ValueError, match=r"takes no options, got --noise"):
        load_dataset("digits", noise=0.2)
    with pytest.raises(ValueError, match=r"serves the task\(s\) segmentation, not 'regression'"):
        load_dataset("shapes", "regression")
    with pytest.raises(ValueError, match=r"noise must be in \[0, 0.9\], got 0.95"):
        load_dataset("digits-symmetric-noise", noise=0.95)


# ---- tasks and criteria -------------------------------------------------------------------------

def test_infer_task_from_data_then_loss():
    assert infer_task(["huber"], None, None) == "regression"
    assert infer_task(["dice + cross_entropy"], None, None) == "segmentation"
    assert infer_task(["triplet"], None, None) == "embedding"
    assert infer_task(["focal"], None, None) == "classification"
    assert infer_task(["triplet"], None, "digits") == "embedding"
    assert infer_task(["cross_entropy"], None, "digits") == "classification"
    assert infer_task(["cross_entropy"], None, "shapes") == "segmentation"
    with pytest.raises(ValueError, match="serves the task"):
        infer_task(["cross_entropy"], "regression", "digits")


def test_build_criterion_fills_in_what_the_data_knows():
    data = load_dataset("digits-imbalanced")
    criterion, filled = build_criterion("cross_entropy + 0.5*class_balanced(beta=0.99)", "classification", data)
    assert filled == {"class_balanced": {"class_counts": "[10 counts]"}}
    counts = torch.bincount(data.y_train, minlength=10).float()
    assert torch.equal(torch.as_tensor(criterion["class_balanced"].class_counts, dtype=torch.float32), counts)
    unseen = _small(load_dataset("digits-unseen"), 16, 16)
    arc, filled = build_criterion("arcface(margin=0.3)", "embedding", unseen)
    assert filled == {"arcface": {"num_classes": 5, "embedding_dim": 32}}
    assert sum(p.numel() for p in arc.parameters()) == 5 * 32


def test_build_criterion_refuses_a_loss_the_task_cannot_feed():
    data = _small(load_dataset("regression-outliers"), 8, 8)
    with pytest.raises(ValueError, match=r"'focal' takes logits → index; the regression task needs real → real\. "
                                         r"Hint: --task classification"):
        build_criterion("huber + focal", "regression", data)
    with pytest.raises(ValueError, match="Did you mean 'huber'"):
        build_criterion("hubber", "regression", data)


def test_targets_follow_the_loss_kind():
    y = torch.tensor([[0, 2], [1, 1]])
    assert torch.equal(adapt_target(y, "index", 3), y)
    onehot = adapt_target(y, "binary", 3)
    assert onehot.shape == (2, 3, 2) and torch.equal(onehot.argmax(1), y)
    assert set(adapt_target(y, "sign", 3).unique().tolist()) == {-1.0, 1.0}
    assert target_kind(lf.build("binary_dice + binary_focal")) == "binary"
    with pytest.raises(ValueError, match="one kind"):
        target_kind(lf.build("dice + binary_dice"))


def test_segmentation_scores_match_a_direct_count():
    g = torch.Generator().manual_seed(0)
    target = torch.randint(3, (4, 8, 8), generator=g)
    target[0] = 0  # an empty image
    pred = torch.where(torch.rand(4, 8, 8, generator=g) < 0.7, target, torch.randint(3, (4, 8, 8), generator=g))
    s = segmentation_scores(pred, target, 3)
    for c in (1, 2):
        tp = ((pred == c) & (target == c)).sum().item()
        fp = ((pred == c) & (target != c)).sum().item()
        fn = ((pred != c) & (target == c)).sum().item()
        assert s["dice_per_class"][c] == pytest.approx(2 * tp / (2 * tp + fp + fn))
        assert s["iou_per_class"][c] == pytest.approx(tp / (tp + fp + fn))
    assert s["dice"] == pytest.approx((s["dice_per_class"][1] + s["dice_per_class"][2]) / 2)
    assert s["empty_correct"] == float((pred[0] == 0).all())
    assert s["pixel_accuracy"] == pytest.approx(float((pred == target).float().mean()))


def test_recall_at_1_is_leave_one_out():
    e = torch.tensor([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0], [0.01, 1.0]])
    assert recall_at_1(e, torch.tensor([0, 0, 1, 1])) == 1.0
    assert recall_at_1(e, torch.tensor([0, 1, 0, 1])) == 0.0


def test_regression_metrics():
    data = _small(load_dataset("regression-outliers"), 8, 8)

    class Zero(torch.nn.Module):
        def forward(self, x):
            return torch.zeros(len(x))

    m = evaluate("regression", Zero(), data)
    assert m["mae"] == pytest.approx(float(data.y_test.abs().mean()))
    assert m["rmse"] == pytest.approx(float(data.y_test.pow(2).mean().sqrt()))


# ---- training -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "task", "data"), [
    ("cross_entropy + 0.1*focal(gamma=2)", "classification", "digits"),
    ("binary_cross_entropy_with_logits", "classification", "digits"),
    ("dice + cross_entropy", "segmentation", "shapes"),
    ("binary_dice", "segmentation", "shapes"),
    ("huber(delta=0.5) + 0.1*l1", "regression", "regression-outliers"),
    ("triplet(margin=0.2) + 0.1*arcface", "embedding", "digits-unseen"),
])
def test_train_spec_logs_every_term_and_learns(spec, task, data):
    full = load_dataset(data, task)
    small = _small(full, 48, 32)
    run = train_spec(spec, task, small, TrainConfig(epochs=2, batch_size=16), progress=make_progress("none"))[0]
    coefs = {name: coef for coef, name, _ in spec_terms(spec)}
    terms = list(coefs)
    assert len(run.history) == 2
    for row in run.history:
        assert set(row["train_loss"]) == {*terms, "total"}
        assert all(math.isfinite(v) for v in row["train_loss"].values())
        total = sum(coefs[t] * row["train_loss"][t] for t in terms)
        assert row["train_loss"]["total"] == pytest.approx(total, rel=1e-5, abs=1e-6)
    for key, value in run.history[-1]["test"].items():
        assert math.isfinite(value), key


def test_training_is_deterministic_and_seeded():
    data = _small(load_dataset("digits"), 64, 32)
    cfg = TrainConfig(epochs=2, batch_size=16, seed=3)
    a = train_spec("focal", "classification", data, cfg, progress=make_progress("none"))[0]
    b = train_spec("focal", "classification", data, cfg, progress=make_progress("none"))[0]
    assert a.history == b.history
    c = train_spec("focal", "classification", data, TrainConfig(epochs=2, batch_size=16, seed=4),
                   progress=make_progress("none"))[0]
    assert c.history != a.history


def test_loss_parameters_are_trained_with_the_model():
    data = _small(load_dataset("digits-unseen"), 32, 16)
    torch.manual_seed(0)
    _, _, criterion = train_spec("proxy_anchor", "embedding", data, TrainConfig(epochs=1, batch_size=16),
                                 progress=make_progress("none"))
    from lossforge.demo.run import _deterministic

    with _deterministic(0, 1):
        from lossforge.demo.tasks import make_model

        make_model("embedding", data)
        fresh, _ = build_criterion("proxy_anchor", "embedding", data)
    moved = [not torch.equal(p, q) for p, q in zip(criterion.parameters(), fresh.parameters())]
    assert moved and all(moved)


def test_compare_rows_show_mean_and_sd():
    data = _small(load_dataset("regression-outliers"), 64, 32)
    runs = {spec: [train_spec(spec, "regression", data, TrainConfig(epochs=1, seed=s),
                              progress=make_progress("none"))[0] for s in (0, 1)] for spec in ("mse", "l1")}
    rows = compare_rows(runs, [("mae", "MAE", False)])
    assert rows[0] == ["", "mse", "l1"]
    assert rows[1][0] == "MAE ↓" and " ± " in rows[1][1]
    assert [r[0] for r in rows[2:]] == ["train loss: mse", "train loss: l1", "train loss: total"]
    assert rows[2][2] == "-"


# ---- the commands -------------------------------------------------------------------------------

def test_train_command_writes_json_csv_png_and_logs_terms(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    code, stdout, stderr = _main(["train", "--loss", "cross_entropy + 0.1*focal(gamma=2)", "--data",
                                  "digits-imbalanced", "--epochs", "2", "--out", str(out), "--progress", "plain"])
    assert code == 0, stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "classification" and metrics["data"]["name"] == "digits-imbalanced"
    assert metrics["config"]["epochs"] == 2 and metrics["config"]["seed"] == 0
    final = metrics["final"]
    assert set(final["train_loss"]) == {"cross_entropy", "focal", "total"}
    for key in ("accuracy", "macro_f1", "ece", "rare_recall", "common_recall"):
        assert 0.0 <= final[key] <= 1.0
    rows = list(csv.DictReader((out / "metrics.csv").read_text().splitlines()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert {"loss:cross_entropy", "loss:focal", "loss:total", "accuracy", "macro_f1", "ece"} <= set(rows[0])
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "recall, rare classes 5-9" in stdout and "train loss: focal" in stdout
    assert "epoch 2/2" in stderr and "focal" in stderr  # the progress line shows each term


@pytest.mark.parametrize(("argv", "keys"), [
    (["--loss", "dice + 0.5*cross_entropy", "--epochs", "1"], ("dice", "iou", "empty_correct")),
    (["--loss", "cauchy", "--epochs", "3"], ("mae", "rmse")),
    (["--loss", "triplet", "--epochs", "1"], ("recall_at_1",)),
])
def test_train_command_other_tasks(tmp_path, argv, keys):
    code, _, stderr = _main(["train", *argv, "--out", str(tmp_path), "--no-plot", "--progress", "none"])
    assert code == 0, stderr
    final = json.loads((tmp_path / "metrics.json").read_text())["final"]
    for key in keys:
        assert 0.0 <= final[key] < 10.0
    assert not (tmp_path / "curves.png").exists()


def test_train_command_is_deterministic(tmp_path):
    argv = ["train", "--loss", "huber", "--epochs", "3", "--no-plot", "--progress", "none", "--seed", "2"]
    assert _main([*argv, "--out", str(tmp_path / "a")])[0] == 0
    assert _main([*argv, "--out", str(tmp_path / "b")])[0] == 0
    assert (tmp_path / "a" / "metrics.json").read_text() == (tmp_path / "b" / "metrics.json").read_text()
    assert (tmp_path / "a" / "metrics.csv").read_text() == (tmp_path / "b" / "metrics.csv").read_text()


def test_compare_command_same_data_and_seeds(tmp_path):
    pytest.importorskip("matplotlib")
    code, stdout, stderr = _main(["compare", "huber", "huber(delta=1.0)", "mse", "--data", "regression-outliers",
                                  "--epochs", "3", "--seeds", "0,1", "--out", str(tmp_path), "--progress", "none"])
    assert code == 0, stderr
    summary = json.loads((tmp_path / "comparison.json").read_text())
    assert summary["seeds"] == [0, 1] and summary["specs"] == ["huber", "huber(delta=1.0)", "mse"]
    runs = summary["runs"]
    # the same loss under two spellings: same initial weights, same batches -> the same numbers
    assert runs["huber"]["mean"] == runs["huber(delta=1.0)"]["mean"]
    assert runs["huber"]["mean"] != runs["mse"]["mean"]
    assert [r["seed"] for r in runs["mse"]["per_seed"]] == [0, 1]
    assert "sd" in runs["mse"]
    rows = list(csv.DictReader((tmp_path / "comparison.csv").read_text().splitlines()))
    assert len(rows) == 3 * 2 * 3
    assert (tmp_path / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    header = next(line for line in stdout.splitlines() if "huber(delta=1.0)" in line)
    assert "mse" in header and "MAE ↓" in stdout and " ± " in stdout


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "--loss", "focall"], "Did you mean 'focal'"),
    (["train", "--loss", "huber", "--task", "classification"], "Hint: --task regression"),
    (["train", "--loss", "focal", "--data", "shape"], "Did you mean 'shapes'"),
    (["train", "--loss", "focal", "--data", "digits", "--noise", "0.2"], "takes no options, got --noise"),
    (["train", "--loss", "focal", "--data", "shapes", "--task", "regression"], "serves the task"),
    (["train", "--loss", "focal +"], "invalid loss spec at position"),
    (["compare", "focal", "focal"], "each SPEC must be given once"),
    (["compare", "focal", "dice_loss"], "Did you mean 'dice'"),
])
def test_usage_errors_are_one_line_with_exit_code_2(tmp_path, argv, message):
    code, _, stderr = _main([*argv, "--out", str(tmp_path / "x"), "--no-plot"])
    assert code == 2
    assert message in stderr and "Traceback" not in stderr
    assert not (tmp_path / "x").exists()  # nothing trained, nothing written


def test_bad_option_values_are_usage_errors():
    assert _main(["compare", "mse", "--seeds", "a,b"])[0] == 2
    assert _main(["train", "--loss", "mse", "--epochs", "0"])[0] == 2
    assert _main(["train", "--loss", "mse", "--noise", "1.5"])[0] == 2


def test_onehot_targets_match_index_targets_for_soft_cross_entropy():
    logits = torch.randn(4, 3, 5, 5)
    target = torch.randint(3, (4, 5, 5))
    soft = lf.build("soft_cross_entropy")(logits, adapt_target(target, "probs", 3))
    assert float(soft) == pytest.approx(float(F.cross_entropy(logits, target)), rel=1e-5)
