"""Segmentation and region losses: ratios to torch cross-entropy (region, Lovász) and to Dice (distance maps).

Three workloads, every case timed forward + backward, interleaved with its anchor in one process:

1. region losses on 8 x 21 x 512 x 512 logits with class indices (goal: each <= 1.2x torch CE's time and
   <= 1.1x the logits in peak extra memory; ``dice + cross_entropy`` <= 1.5x CE; ``dice + focal`` shares the
   same softmax pass), with MONAI and kornia;
2. Lovász-softmax on 2 x 15 x 256 x 256 (goal: <= 3x CE), with kornia;
3. boundary and Hausdorff-DT on 2 x 1 x 96^3 (goal: <= 20x Dice), with MONAI (scipy distance maps).

Peak extra memory is the resident-set growth of one forward + backward in a fresh process, over the
inputs (the gradient included), divided by the size of the logits.

    python -m benchmarks.bench_segmentation            # the shapes above
    python -m benchmarks.bench_segmentation --quick    # small shapes, a smoke test
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F

import lossforge as lf
import lossforge.functional as LF

from ._harness import environment, fwd_bwd, interleaved, peak_extra_memory, report_peak_extra, table

Step = Callable[[], object]
MODULE = "benchmarks.bench_segmentation"


def _region_shape(quick: bool) -> tuple[int, int, int, int]:
    return (2, 21, 128, 128) if quick else (8, 21, 512, 512)


def _lovasz_shape(quick: bool) -> tuple[int, int, int, int]:
    return (2, 15, 64, 64) if quick else (2, 15, 256, 256)


def _volume_side(quick: bool) -> int:
    return 48 if quick else 96


def _monai() -> object | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import monai.losses
    except ImportError:
        return None
    return monai.losses


def _kornia() -> object | None:
    try:
        import kornia.losses
    except ImportError:
        return None
    return kornia.losses


def _quiet(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    def call(*args: torch.Tensor) -> torch.Tensor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args)

    return call


# ------------------------------------------------------------------------------------------ 1. region losses


def _region_inputs(quick: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    n, c, h, w = _region_shape(quick)
    logits = torch.randn(n, c, h, w, requires_grad=True)
    target = torch.randint(0, c, (n, h, w))
    binary = (torch.rand(n, c, h, w) > 0.5).float()
    return logits, target, binary


def _region_cases(quick: bool) -> dict[str, tuple[Callable[..., torch.Tensor], str]]:
    """name -> (loss(logits, index target, binary target), anchor)."""
    dice_ce = lf.build("dice + cross_entropy")
    dice_focal = lf.build("dice + focal")
    cases: dict[str, tuple[Callable[..., torch.Tensor], str]] = {
        "torch cross_entropy": (lambda x, t, b: F.cross_entropy(x, t), "ce"),
        "dice": (lambda x, t, b: LF.dice_loss(x, t), "ce"),
        "jaccard": (lambda x, t, b: LF.jaccard_loss(x, t), "ce"),
        "tversky": (lambda x, t, b: LF.tversky_loss(x, t, alpha=0.3, beta=0.7), "ce"),
        "focal_tversky": (lambda x, t, b: LF.focal_tversky_loss(x, t), "ce"),
        "generalized_dice": (lambda x, t, b: LF.generalized_dice_loss(x, t), "ce"),
        "mcc": (lambda x, t, b: LF.mcc_loss(x, t), "ce"),
        "dice + cross_entropy (lf.build)": (lambda x, t, b: dice_ce(x, t), "ce"),
        "dice + focal (lf.build)": (lambda x, t, b: dice_focal(x, t), "ce"),
        "binary_dice (same logits, 0/1 target)": (lambda x, t, b: LF.binary_dice_loss(x, b), "ce"),
        "torch bce_with_logits (same)": (lambda x, t, b: F.binary_cross_entropy_with_logits(x, b), "ce"),
    }
    ml = _monai()
    if ml is not None:
        m_dice = _quiet(ml.DiceLoss(softmax=True, to_onehot_y=True))  # type: ignore[attr-defined]
        m_dice_ce = _quiet(ml.DiceCELoss(softmax=True, to_onehot_y=True))  # type: ignore[attr-defined]
        m_gdl = _quiet(ml.GeneralizedDiceLoss(softmax=True, to_onehot_y=True))  # type: ignore[attr-defined]
        cases["MONAI DiceLoss"] = (lambda x, t, b: m_dice(x, t.unsqueeze(1)), "ce")
        cases["MONAI DiceCELoss"] = (lambda x, t, b: m_dice_ce(x, t.unsqueeze(1)), "ce")
        cases["MONAI GeneralizedDiceLoss"] = (lambda x, t, b: m_gdl(x, t.unsqueeze(1)), "ce")
    kl = _kornia()
    if kl is not None:
        cases["kornia dice_loss (macro)"] = (lambda x, t, b: kl.dice_loss(x, t, average="macro"), "ce")  # type: ignore[attr-defined]
    return cases


def _region_memory_cases() -> list[str]:
    names = ["torch cross_entropy", "dice", "focal_tversky", "generalized_dice", "dice + cross_entropy (lf.build)",
             "binary_dice (same logits, 0/1 target)"]
    if _monai() is not None:
        names.append("MONAI DiceLoss")
    return names


def _bench_region(quick: bool, repeats: int, memory: bool) -> str:
    logits, target, binary = _region_inputs(quick)
    cases = _region_cases(quick)
    steps: dict[str, Step] = {name: fwd_bwd(lambda x, f=f: f(x, target, binary), logits)
                              for name, (f, _) in cases.items()}
    t = interleaved(steps, repeats=repeats)
    ce = t["torch cross_entropy"]
    mem: dict[str, float] = {}
    if memory:
        size = logits.numel() * logits.element_size()
        for name in _region_memory_cases():
            mem[name] = peak_extra_memory(MODULE, f"region:{name}", *(["--quick"] if quick else [])) / size
    rows = []
    for name in cases:
        rows.append([name, f"{t[name] * 1e3:.0f}", f"{t[name] / ce:.2f}",
                     f"{mem[name]:.2f}" if name in mem else "-"])
    shape = "x".join(map(str, _region_shape(quick)))
    return (f"### Region losses, logits {shape} float32 with class indices\n\n"
            f"Goal: each region loss <= 1.2x torch CE time and <= 1.1x the logits in peak extra memory; "
            f"dice + CE <= 1.5x CE.\n\n"
            + table(rows, ["loss (forward + backward)", "ms", "time / torch CE", "peak extra / logits"]))


# ------------------------------------------------------------------------------------------ 2. Lovász


def _bench_lovasz(quick: bool, repeats: int) -> str:
    torch.manual_seed(1)
    n, c, h, w = _lovasz_shape(quick)
    logits = torch.randn(n, c, h, w, requires_grad=True)
    target = torch.randint(0, c, (n, h, w))
    hard = (logits.detach() * 4).requires_grad_(True)
    cases: dict[str, Step] = {
        "torch cross_entropy": fwd_bwd(lambda x: F.cross_entropy(x, target), logits),
        "lovasz_softmax (logits ~ N(0, 1))": fwd_bwd(lambda x: LF.lovasz_softmax_loss(x, target), logits),
        "lovasz_softmax (logits ~ N(0, 16): more overlap to sort)": fwd_bwd(
            lambda x: LF.lovasz_softmax_loss(x, target), hard),
        "lovasz_softmax, per_image=False": fwd_bwd(lambda x: LF.lovasz_softmax_loss(x, target, per_image=False),
                                                   logits),
    }
    kl = _kornia()
    if kl is not None:
        cases["kornia lovasz_softmax_loss"] = fwd_bwd(lambda x: kl.lovasz_softmax_loss(x, target), logits)  # type: ignore[attr-defined]
    t = interleaved(cases, repeats=repeats)
    ce = t["torch cross_entropy"]
    rows = [[name, f"{t[name] * 1e3:.1f}", f"{t[name] / ce:.2f}"] for name in cases]
    shape = "x".join(map(str, (n, c, h, w)))
    return (f"### Lovász-softmax, logits {shape} float32\n\nGoal: <= 3x torch CE, no Python loop over classes.\n\n"
            + table(rows, ["loss (forward + backward)", "ms", "time / torch CE"]))


# ------------------------------------------------------------------------------------------ 3. distance maps


def _volume(quick: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Two volumes with ellipsoids (a realistic mask), logits correlated with it."""
    side = _volume_side(quick)
    g = torch.stack(torch.meshgrid(*[torch.arange(side, dtype=torch.float32)] * 3, indexing="ij"))
    s = side / 96

    def blob(centre: list[float], radii: list[float]) -> torch.Tensor:
        c = torch.tensor(centre).view(3, 1, 1, 1) * s
        r = torch.tensor(radii).view(3, 1, 1, 1) * s
        return ((g - c) ** 2 / r ** 2).sum(0) < 1

    target = torch.stack([blob([40, 50, 45], [20, 15, 25]) | blob([70, 30, 60], [10, 12, 8]),
                          blob([50, 50, 50], [30, 20, 10])]).unsqueeze(1).float()
    torch.manual_seed(2)
    logits = (torch.randn(target.shape) + 2 * (2 * target - 1)).requires_grad_(True)
    return logits, target


def _bench_distance(quick: bool, repeats: int) -> str:
    logits, target = _volume(quick)
    cases: dict[str, Step] = {
        "binary_dice": fwd_bwd(lambda x: LF.binary_dice_loss(x, target), logits),
        "binary_boundary": fwd_bwd(lambda x: LF.binary_boundary_loss(x, target), logits),
        "binary_hausdorff_dt": fwd_bwd(lambda x: LF.binary_hausdorff_dt_loss(x, target), logits),
    }
    ml = _monai()
    have_scipy = True
    try:
        import scipy  # noqa: F401
    except ImportError:
        have_scipy = False
    if ml is not None:
        m_dice = _quiet(ml.DiceLoss(sigmoid=True))  # type: ignore[attr-defined]
        cases["MONAI DiceLoss"] = fwd_bwd(lambda x: m_dice(x, target), logits)
        if have_scipy:
            m_hd = _quiet(ml.HausdorffDTLoss(sigmoid=True))  # type: ignore[attr-defined]
            m_bd = _quiet(ml.BoundaryLoss(sigmoid=True))  # type: ignore[attr-defined]
            cases["MONAI HausdorffDTLoss (scipy)"] = fwd_bwd(lambda x: m_hd(x, target), logits)
            cases["MONAI BoundaryLoss (scipy)"] = fwd_bwd(lambda x: m_bd(x, target), logits)
    t = interleaved(cases, repeats=repeats, warmup=1)
    dice = t["binary_dice"]
    rows = [[name, f"{t[name] * 1e3:.1f}", f"{t[name] / dice:.1f}"] for name in cases]
    side = _volume_side(quick)
    return (f"### Distance-map losses, logits 2x1x{side}x{side}x{side} float32\n\n"
            f"Goal: <= 20x Dice, exact distance maps in torch.\n\n"
            + table(rows, ["loss (forward + backward)", "ms", "time / lossforge binary_dice"]))


# ------------------------------------------------------------------------------------------ main


def _memory_case(case: str, quick: bool) -> None:
    """In a fresh process: allocate the inputs, then report the peak extra memory of one step."""
    kind, name = case.split(":", 1)
    if kind != "region":
        raise ValueError(f"bench_segmentation: --memory-case must start with 'region:', got {case!r}.")
    logits, target, binary = _region_inputs(quick)
    fn, _ = _region_cases(quick)[name]
    report_peak_extra(fwd_bwd(lambda x: fn(x, target, binary), logits))


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes (a smoke test)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated sections: region, lovasz, distance")
    parser.add_argument("--no-memory", action="store_true", help="skip the fresh-process memory probes")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--memory-case", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_case:
        _memory_case(args.memory_case, args.quick)
        return ""
    wanted = set(args.only.split(",")) if args.only else {"region", "lovasz", "distance"}
    parts = [f"Segmentation losses; {environment()}; command: python -m {MODULE} "
             + " ".join(a for a in (argv if argv is not None else sys.argv[1:]))]
    missing = [name for name, mod in (("monai", _monai()), ("kornia", _kornia())) if mod is None]
    parts.append("Anchors not installed (skipped): " + ", ".join([*missing, "segmentation_models_pytorch"]) + ".")
    if "region" in wanted:
        parts.append(_bench_region(args.quick, args.repeats, not args.no_memory))
    if "lovasz" in wanted:
        parts.append(_bench_lovasz(args.quick, args.repeats))
    if "distance" in wanted:
        parts.append(_bench_distance(args.quick, args.repeats))
    out = "\n\n".join(parts)
    print(out)
    return out


if __name__ == "__main__":
    main()
