"""``lossforge.check`` on losses a user wrote: each broken loss below carries one real bug, and the check
aimed at that bug must fail (with its numbers); a correct loss of every task passes every check.

The losses here are written as a user would, with plain torch and no lossforge helpers.
"""

from __future__ import annotations

import json
import re

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import lossforge as lf
from lossforge.verify import CHECKS, FAMILY_CHECKS, TASKS, CheckReport, CheckTarget, check, get_task

HALF = (torch.float16, torch.bfloat16)


def upcast(x: Tensor) -> Tensor:
    """Half inputs computed in float32 (what autocast does for torch's own losses)."""
    return x.float() if x.dtype in HALF else x


def reduce(u: Tensor, reduction: str, keep: Tensor | None = None) -> Tensor:
    """``none`` / ``sum`` / ``mean`` over the kept units; an empty mean is 0.0, connected to the graph."""
    if keep is not None:
        keep = keep.expand(u.shape)  # a broadcast mask (N, 1) counts every entry it keeps
        u = torch.where(keep, u, u.new_zeros(()))
    if reduction == "none":
        return u
    if reduction == "sum":
        return u.sum()
    if reduction == "mean":
        count = keep.sum() if keep is not None else torch.tensor(u.numel(), device=u.device)
        return u.sum() / count.clamp_min(1)
    raise ValueError(f"reduction must be 'none', 'sum' or 'mean', got {reduction!r}")


def same_shape(a: Tensor, b: Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"target shape {tuple(b.shape)} must equal the input shape {tuple(a.shape)}")


# ---------------------------------------------------------------------------- a correct loss per task


def good_cross_entropy(logits: Tensor, target: Tensor, *, ignore_index: int = -100,
                       reduction: str = "mean") -> Tensor:
    if logits.dim() != 2 or target.shape != logits.shape[:1]:
        raise ValueError(f"expected logits (N, C) and target (N,), got {tuple(logits.shape)} and "
                         f"{tuple(target.shape)}")
    keep = target != ignore_index
    safe = torch.where(keep, target, torch.zeros_like(target))
    u = -upcast(logits).log_softmax(1).gather(1, safe.unsqueeze(1)).squeeze(1)
    return reduce(u, reduction, keep)


def good_bce(logits: Tensor, target: Tensor, *, mask: Tensor | None = None, reduction: str = "mean") -> Tensor:
    same_shape(logits, target)
    x = upcast(logits)
    u = F.softplus(x) - x * target.to(x.dtype)
    return reduce(u, reduction, mask)


class GoodMSE(nn.Module):
    """Squared error that refuses mismatched shapes (the fix of the article's loss)."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        same_shape(output, target)
        return reduce((upcast(output) - upcast(target)) ** 2, self.reduction)


class GoodDice(nn.Module):
    """Soft Dice over the batch (one value per class, averaged)."""

    def __init__(self, smooth: float = 1.0) -> None:
        super().__init__()
        self.smooth = smooth

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        if logits.dim() != 4 or target.shape != (logits.shape[0], *logits.shape[2:]):
            raise ValueError(f"expected logits (N, C, H, W) and target (N, H, W), got {tuple(logits.shape)} and "
                             f"{tuple(target.shape)}")
        p = upcast(logits).softmax(1)
        hot = F.one_hot(target, logits.shape[1]).movedim(-1, 1).to(p.dtype)
        inter = (p * hot).sum((0, 2, 3))
        card = (p + hot).sum((0, 2, 3))
        return 1 - ((2 * inter + self.smooth) / (card + self.smooth)).mean()


def good_contrastive(emb: Tensor, labels: Tensor, *, margin: float = 1.0) -> Tensor:
    if emb.dim() != 2 or labels.shape != emb.shape[:1]:
        raise ValueError(f"expected embeddings (N, D) and labels (N,), got {tuple(emb.shape)} and "
                         f"{tuple(labels.shape)}")
    x = upcast(emb)
    i, j = torch.triu_indices(x.shape[0], x.shape[0], 1, device=x.device)
    sq = (x[i] - x[j]).pow(2).sum(-1)
    positive = sq > 0
    d = torch.where(positive, torch.where(positive, sq, torch.ones_like(sq)).sqrt(), torch.zeros_like(sq))
    u = torch.where(labels[i] == labels[j], sq, F.relu(margin - d) ** 2)
    return u.sum() / max(u.numel(), 1)


def good_iou(pred: Tensor, target: Tensor, *, eps: float = 1e-7, reduction: str = "mean") -> Tensor:
    if pred.dim() != 2 or pred.shape[-1] != 4:
        raise ValueError(f"expected boxes (N, 4), got {tuple(pred.shape)}")
    same_shape(pred, target)
    p, t = upcast(pred), upcast(target)
    area_p = (p[:, 2:] - p[:, :2]).clamp_min(0).prod(1)
    area_t = (t[:, 2:] - t[:, :2]).clamp_min(0).prod(1)
    inter = (torch.minimum(p[:, 2:], t[:, 2:]) - torch.maximum(p[:, :2], t[:, :2])).clamp_min(0).prod(1)
    return reduce(1 - (inter + eps) / (area_p + area_t - inter + eps), reduction)


def good_kl(log_probs: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    if log_probs.dim() != 2:
        raise ValueError(f"expected log-probabilities (N, C), got {tuple(log_probs.shape)}")
    same_shape(log_probs, target)
    lp, t = upcast(log_probs), upcast(target)
    return reduce((torch.xlogy(t, t) - t * lp).sum(1), reduction)


def good_charbonnier(pred: Tensor, target: Tensor, *, eps: float = 1e-3, reduction: str = "mean") -> Tensor:
    if pred.dim() != 4:
        raise ValueError(f"expected images (N, C, H, W), got {tuple(pred.shape)}")
    same_shape(pred, target)
    d = upcast(pred) - upcast(target)
    return reduce((d * d + eps * eps).sqrt().mean((1, 2, 3)), reduction)


def good_listnet(scores: Tensor, relevance: Tensor, *, reduction: str = "mean") -> Tensor:
    if scores.dim() != 2:
        raise ValueError(f"expected scores (N, L), got {tuple(scores.shape)}")
    same_shape(scores, relevance)
    s = upcast(scores)
    return reduce(-(upcast(relevance).softmax(1) * s.log_softmax(1)).sum(1), reduction)


CORRECT = {
    "classification": good_cross_entropy,
    "binary": good_bce,
    "multilabel": good_bce,
    "regression": GoodMSE(),
    "segmentation": GoodDice(),
    "embedding": good_contrastive,
    "boxes": good_iou,
    "distribution": good_kl,
    "image": good_charbonnier,
    "ranking": good_listnet,
}


def test_every_task_has_a_correct_loss_here():
    assert set(CORRECT) == set(TASKS)


@pytest.mark.parametrize("task", list(CORRECT))
def test_a_correct_loss_of_each_task_passes_every_check(task):
    report = check(CORRECT[task], task=task)
    assert report.ok, str(report)
    assert [r.name for r in report] == list(CHECKS)
    ran = [r.name for r in report if r.name in FAMILY_CHECKS and r.status == "passed"]
    family = [name for name, tasks in FAMILY_CHECKS.items() if task in tasks]
    assert set(ran) <= set(family)
    if family:
        assert ran, f"no check of the {task} battery ran: {report}"


# ------------------------------------------------------------------------- the broken losses (>= 10)


def _failed(report: CheckReport, name: str, *fragments: str) -> str:
    result = report[name]
    assert result.status == "failed", f"{name} did not catch {report.loss}:\n{report}"
    for fragment in fragments:
        assert fragment in result.detail, result.detail
    return result.detail


def log_of_probability_then_masked(logits: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    p = torch.sigmoid(logits)
    u = -(target * torch.log(p) + (1 - target) * torch.log(1 - p))  # log(0) = -inf where p saturates
    return torch.where(mask, u, torch.zeros_like(u)).sum() / mask.sum().clamp_min(1)


def test_log_of_a_probability_then_masked_gives_nan_gradients_at_masked_positions():
    report = check(log_of_probability_then_masked, task="binary")
    detail = _failed(report, "masked_garbage")
    assert re.search(r"(NaN|inf)", detail), detail


class SquaredError(nn.Module):
    """The article's bug in one line: ``(N, 1)`` outputs minus ``(N,)`` targets broadcast to ``(N, N)``."""

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        return ((output - target) ** 2).mean()


def test_the_articles_broadcasting_loss_fails_silent_broadcasting():
    report = check(SquaredError(), task="regression")
    detail = _failed(report, "broadcast", "silent broadcasting", "output (8, 1) with target (8,)",
                     "they broadcast to (8, 8)")
    assert "instead of raising" in detail
    assert report["broadcast"].status == "failed" and not report.ok
    fixed = check(GoodMSE(), task="regression")
    assert fixed.ok, str(fixed)
    assert "raises ValueError" in fixed["broadcast"].detail


def l1_ignoring_reduction(pred: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    same_shape(pred, target)
    return (pred - target).abs().mean()  # reduction is accepted and never read


def test_a_loss_that_ignores_reduction():
    report = check(l1_ignoring_reduction, task="regression")
    _failed(report, "reduction_honoured", "reduction is ignored", "'none', 'sum' and 'mean' all return")
    _failed(report, "invalid_reduction", "was accepted")


class FocalOverClasses(nn.Module):
    """Focal loss whose ``.mean()`` runs over the (N, C) one-hot grid: 1/C of the intended value."""

    def __init__(self, gamma: float = 2.0) -> None:
        super().__init__()
        self.gamma = gamma

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        logp = upcast(logits).log_softmax(1)
        hot = F.one_hot(target, logits.shape[1]).to(logp.dtype)
        return (-hot * (1 - logp.exp()) ** self.gamma * logp).mean()


def test_focal_averaged_over_classes_instead_of_samples():
    report = check(FocalOverClasses(), task="classification")
    _failed(report, "gamma_zero", "with gamma=0.0", "1/5 of it", "averages over the 5 classes")
    good = check(lf.FocalLoss(), task="classification")
    assert good["gamma_zero"].status == "passed", str(good["gamma_zero"])


def sqrt_distance_pairs(emb: Tensor, labels: Tensor) -> Tensor:
    i, j = torch.triu_indices(emb.shape[0], emb.shape[0], 1)
    d = (emb[i] - emb[j]).pow(2).sum(-1).sqrt()  # d/dx sqrt at 0 is inf: NaN gradients for equal embeddings
    same = (labels[i] == labels[j]).float()
    return (same * d + (1 - same) * F.relu(1.0 - d)).mean()


def test_a_sqrt_distance_has_a_nan_gradient_at_zero():
    report = check(sqrt_distance_pairs, task="embedding")
    _failed(report, "zero_distance", "positives at distance 0", "gradient", "NaN")
    assert report["gradcheck"].status == "passed"  # random embeddings never coincide: only the edge case shows it


def softmax_then_log(logits: Tensor, target: Tensor) -> Tensor:
    p = logits.softmax(1)
    return -p.gather(1, target.unsqueeze(1)).log().mean()  # softmax underflows to 0 at logits ±100


def test_softmax_then_log_overflows_at_logits_100():
    report = check(softmax_then_log, task="classification")
    _failed(report, "extreme_logits", "logits ±100 in float32")


def shifts_the_logits_in_place(logits: Tensor, target: Tensor) -> Tensor:
    logits -= logits.max(dim=1, keepdim=True).values  # "stability" trick, in place: the caller's logits change
    return F.cross_entropy(logits, target)


def test_in_place_mutation_of_the_input():
    report = check(shifts_the_logits_in_place, task="classification")
    _failed(report, "no_mutation", "logits was modified in place at", "positions, first at logits[")


def logsumexp_by_hand(logits: Tensor, target: Tensor) -> Tensor:
    lse = logits.exp().sum(1).log()  # exp(12) is already past float16's 65504
    return (lse - logits.gather(1, target.unsqueeze(1)).squeeze(1)).float().mean()


def test_float16_overflow():
    report = check(logsumexp_by_hand, task="classification")
    detail = _failed(report, "low_precision", "float16", "logits scaled to 30")
    assert "inf" in detail or "NaN" in detail
    assert report["float32_vs_float64"].status == "passed"  # float32 is fine: only half overflows


def clipped_by_item(pred: Tensor, target: Tensor) -> Tensor:
    err = (pred - target) ** 2
    if err.max().item() > 100.0:  # data-dependent Python branch: a graph break under torch.compile
        err = err.clamp(max=100.0)
    return err.mean()


@pytest.mark.slow
def test_item_control_flow_breaks_torch_compile():
    report = check(clipped_by_item, task="regression", checks=["compile"])
    _failed(report, "compile", "fullgraph")
    assert check(GoodMSE(), task="regression", checks=["compile"]).ok


def ce_divided_by_the_batch(logits: Tensor, target: Tensor, ignore_index: int = -100) -> Tensor:
    keep = target != ignore_index
    safe = torch.where(keep, target, torch.zeros_like(target))
    nll = -upcast(logits).log_softmax(1).gather(1, safe.unsqueeze(1)).squeeze(1)
    return (nll * keep).sum() / target.numel()  # counts the ignored targets too


def test_a_mean_divided_by_the_wrong_count():
    report = check(ce_divided_by_the_batch, task="classification")
    _failed(report, "ignore_index", "vs the loss on the 5 kept samples",
            "it divides by all 8 samples instead of the 5 kept ones")


class NonPersistentClassWeights(nn.Module):
    """Class weights kept in a buffer that ``state_dict`` leaves out: a reloaded model trains differently."""

    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.register_buffer("class_weight", torch.linspace(0.5, 1.5, num_classes), persistent=False)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        w = self.class_weight.to(upcast(logits).dtype)
        return F.cross_entropy(upcast(logits), target, weight=w[: logits.shape[1]])


def test_state_dict_misses_a_non_persistent_buffer():
    report = check(NonPersistentClassWeights(), task="classification")
    _failed(report, "state_dict", "the reloaded module's output")


def normalised_by_the_batch_max(pred: Tensor, target: Tensor) -> Tensor:
    same_shape(pred, target)
    err = (pred - target) ** 2
    return (err / err.max().detach().clamp_min(1e-12)).mean()  # every sample's loss depends on the batch


def test_hidden_batch_coupling_fails_batch_additivity():
    report = check(normalised_by_the_batch_max, task="regression")
    _failed(report, "batch_additivity", "neither their sum", "size-weighted mean")


def mse_with_mask_averaged_over_everything(pred: Tensor, target: Tensor, *, mask: Tensor | None = None,
                                           reduction: str = "mean") -> Tensor:
    same_shape(pred, target)
    u = (pred - target) ** 2
    if mask is not None:
        u = u * mask
    if reduction == "none":
        return u
    if reduction == "sum":
        return u.sum()
    if reduction == "mean":
        return u.sum() / u.numel()  # masked entries still counted in the denominator
    raise ValueError(reduction)


def test_a_masked_mean_over_the_wrong_count_fails_mask_subset():
    report = check(mse_with_mask_averaged_over_everything, task="regression")
    _failed(report, "mask_subset", "vs mean of none[mask]")


def nondeterministic(pred: Tensor, target: Tensor) -> Tensor:
    same_shape(pred, target)
    noise = 1 + 1e-3 * torch.rand(pred.shape, dtype=upcast(pred).dtype)
    return ((pred - target) ** 2 * noise).mean()


def test_random_noise_in_the_loss_fails_determinism():
    report = check(nondeterministic, task="regression")
    _failed(report, "determinism", "two runs differ")


# ------------------------------------------------------------------------------------- the report API


def test_report_iteration_indexing_json_and_text():
    report = check(SquaredError(), task="regression")
    assert isinstance(report, CheckReport) and report.loss == "SquaredError" and report.task == "regression"
    assert len(report) == len(CHECKS) == len(list(report))
    assert report[0].name == next(iter(CHECKS))
    with pytest.raises(KeyError, match="no check named 'broadcst'"):
        report["broadcst"]
    assert {r.name for r in report.failed} >= {"broadcast", "empty_batch"}
    assert len(report.passed) + len(report.failed) + len(report.skipped) == len(report)
    data = json.loads(report.to_json())
    assert data["ok"] is False and data["failed"] == len(report.failed)
    assert [r["name"] for r in data["results"]] == list(CHECKS)
    assert data["results"][list(CHECKS).index("broadcast")]["status"] == "failed"
    text = str(report)
    lines = text.splitlines()
    assert lines[0].startswith("SquaredError (task regression; ")
    assert re.fullmatch(r"\d+ passed, \d+ failed, \d+ skipped", lines[-1]), lines[-1]
    assert lines[-1] == report.summary()
    assert any(line.split()[:2] == ["broadcast", "FAILED"] for line in lines)
    assert "checks of other tasks' batteries skipped" in text
    assert all("applies to" not in line for line in lines)


def test_every_result_has_a_one_line_reason():
    report = check(softmax_then_log, task="classification")
    for r in report:
        assert r.detail and "\n" not in r.detail, str(r)
    assert re.search(r"\d", report["extreme_logits"].detail)


def test_registered_losses_by_name_function_class_and_instance():
    by_name = check("focal", checks=["reductions", "gamma_zero"])
    assert by_name.ok and by_name.loss == "focal" and by_name.task == "classification"
    by_function = check(lf.functional.focal_loss, checks=["signature"])
    assert by_function.loss == "focal" and by_function["signature"].status == "passed"
    by_class = check(lf.FocalLoss, checks=["module_equals_function"])
    assert by_class["module_equals_function"].status == "passed"
    instance = check(lf.FocalLoss(gamma=1.0))
    assert instance.ok, str(instance)
    assert instance.loss == "FocalLoss" and instance.task == "classification"
    assert instance["signature"].status == "skipped" and "lossforge convention" in instance["signature"].detail
    assert instance["state_dict"].status == "skipped"
    assert instance["state_dict"].detail == "the module has no parameters or buffers"


def test_your_own_inputs_run_the_universal_battery():
    x, t = torch.randn(5, 3), torch.randn(5, 3)
    report = check(lambda pred, target: ((pred - target) ** 2).mean(), inputs=(x, t), name="my_mse")
    assert report.loss == "my_mse" and report.task is None
    assert report["broadcast"].status == "failed"
    assert all(report[name].status == "skipped" for name in FAMILY_CHECKS)
    with_task = check(GoodMSE(), task="regression", inputs=(x, t))
    assert with_task.ok, str(with_task)
    assert with_task["perfect_prediction"].status == "passed"


def test_required_mask_and_module_reduction_are_handled():
    target = CheckTarget.from_callable(log_of_probability_then_masked, task="binary")
    assert target.accepts_mask and not target.accepts_reduction
    assert target.arg_names == ("logits", "target")
    x, t = torch.randn(4), torch.ones(4)
    assert torch.isfinite(target.function(x, t))  # the mask defaults to "keep everything"
    module = CheckTarget.from_callable(GoodMSE(), task="regression")
    assert module.accepts_reduction and module.instance is not None
    assert module.function(x, t, reduction="none").shape == (4,)


def test_dtypes_select_the_low_precision_comparisons():
    report = check(good_bce, task="binary", dtypes=["bf16"], checks=["low_precision", "extreme_logits"])
    assert report.ok
    assert "bfloat16" in report["low_precision"].detail and "float16 and" not in report["low_precision"].detail
    with pytest.raises(ValueError, match="dtypes must be float16 or bfloat16"):
        check(good_bce, task="binary", dtypes=["int8"])


def test_usage_errors_are_clear():
    with pytest.raises(ValueError, match=r"task must be one of .*got 'clasification'. Did you mean 'classification'"):
        check(good_cross_entropy, task="clasification")
    with pytest.raises(ValueError, match=r"is not a registered loss, so it needs task= \(one of classification"):
        check(good_cross_entropy)
    with pytest.raises(TypeError, match="must be callable"):
        check(42, task="regression")
    with pytest.raises(ValueError, match="Did you mean 'gradcheck'"):
        check(good_cross_entropy, task="classification", checks=["gradchek"])
    with pytest.raises(ValueError, match="get_loss: name must be a registered loss"):
        check("focall")
    unfit = (r"TripletMarginLoss\(anchor, positive, negative, \*, reduction='mean'\) cannot be called with the "
             r"embedding task's inputs \(\(8, 4\), \(8,\)\): missing a required argument: 'negative'")
    with pytest.raises(ValueError, match=unfit):
        check(nn.TripletMarginLoss(), task="embedding")
    a, p, n = torch.randn(3, 6, 4).unbind(0)
    own = check(nn.TripletMarginLoss(), inputs=(a, p, n), checks=["gradcheck", "no_mutation"])
    assert own.ok, str(own)


def test_task_aliases():
    assert get_task("multiclass").name == "classification"
    assert get_task("metric").name == "embedding"
    for task in TASKS.values():
        samples = task.samples(torch.float32, "cpu")
        assert samples and samples[0].plain
