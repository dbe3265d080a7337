"""``lossforge plot NAME --param gamma=0,1,2,5``: loss and gradient against the margin or residual, as a PNG."""

from __future__ import annotations

import argparse
import ast
import json
from typing import Any

from ..demo import MissingDependencyError
from ._common import CLIError, unknown_loss

__all__ = ["add_parser", "parse_param", "run"]


def _split_top(text: str) -> list[str]:
    """Split at commas outside brackets and quotes: ``"[1,2],3"`` -> ``["[1,2]", "3"]``."""
    parts, depth, quote, cur = [], 0, "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        cur += ch
    parts.append(cur)
    return [p.strip() for p in parts]


def _literal(text: str) -> Any:
    """A Python literal (number, True/False/None, quoted string, list), or the bare text as a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_param(text: str) -> tuple[str, list[Any]]:
    """``"gamma=0,1,2"`` -> ``("gamma", [0, 1, 2])``; values are literals, lists stay whole (``w=[1,2],[2,1]``).

    Raises:
        argparse.ArgumentTypeError: Without ``=``, a name or a value.

    Examples:
        >>> parse_param("gamma=0,0.5,2")
        ('gamma', [0, 0.5, 2])
        >>> parse_param("mining=batch_hard")
        ('mining', ['batch_hard'])
    """
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"must be NAME=V1,V2,..., got {text!r}")
    items = [v for v in _split_top(values) if v]
    if not items:
        raise argparse.ArgumentTypeError(f"{name} needs at least one value, got {text!r}")
    return name, [_literal(v) for v in items]


def _range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be LO,HI, e.g. -4,4, got {text!r}") from None
    if not lo < hi:
        raise argparse.ArgumentTypeError(f"must have LO < HI, got {text!r}")
    return lo, hi


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "plot", parents=parents, help="plot a loss and its gradient against the margin or residual (PNG)",
        description="Draw a registered loss and its gradient against the residual (regression losses) or the "
                    "margin (softmax, sigmoid and hinge losses), one curve per hyper-parameter value, into a PNG; "
                    "print the values at five points. Needs matplotlib unless --no-plot.",
        epilog="examples: lossforge plot focal --param gamma=0,1,2,5;  lossforge plot huber --param delta=0.5,1,2 "
               "--range -3,3;  lossforge plot generalized_cross_entropy --param q=0.1,0.4,0.7,1 --classes 10",
    )
    p.add_argument("name", metavar="NAME", help="registry name or alias")
    p.add_argument("--param", metavar="NAME=V1,V2,...", type=parse_param, action="append", default=[],
                   help="a hyper-parameter and its values (repeat for more; every combination is drawn)")
    p.add_argument("--range", metavar="LO,HI", type=_range, default=None, dest="range_",
                   help="the margin or residual range (default: -4,4; -3,3 for regression)")
    p.add_argument("--points", metavar="N", type=int, default=401, help="points per curve (default: 401)")
    p.add_argument("--classes", metavar="C", type=int, default=2,
                   help="number of classes of softmax losses (default: 2)")
    p.add_argument("--target", metavar="Y", type=float, default=0.0,
                   help="the target of regression losses, the residual is taken around it (default: 0)")
    p.add_argument("--out", metavar="PNG", default=None, help="output file (default: NAME.png)")
    p.add_argument("--no-plot", dest="plot", action="store_false", help="print the values only")
    p.add_argument("--json", action="store_true", help="print the curves as JSON instead of the table")
    p.set_defaults(func=run)


def _table(curves: Any, xs: list[float]) -> list[str]:
    idx = [int(min(range(len(curves.x)), key=lambda i: abs(float(curves.x[i]) - x))) for x in xs]
    header = ["", *(f"x={float(curves.x[i]):g}" for i in idx)]
    rows = [header]
    for label, _, values, grad in curves.curves:
        rows.append([f"{label}: loss", *(f"{float(values[i]):.4g}" for i in idx)])
        rows.append([f"{label}: gradient", *(f"{float(grad[i]):.4g}" for i in idx)])
    widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
    return ["  ".join([r[0].ljust(widths[0]), *(cell.rjust(w) for cell, w in zip(r[1:], widths[1:]))]).rstrip()
            for r in rows]


def run(args: argparse.Namespace) -> int:
    import lossforge as lf

    from ..demo.lossplot import loss_curves, plot_loss_curves

    try:
        spec = lf.get_loss(args.name)
    except ValueError:
        raise unknown_loss("plot", args.name) from None
    params: dict[str, list[Any]] = {}
    for name, values in args.param:
        if name in params:
            raise CLIError(f"lossforge plot: --param {name} is given twice; put every value in one: "
                           f"--param {name}=V1,V2,...")
        params[name] = values
    lo, hi = args.range_ or ((-3.0, 3.0) if spec.input_kind == "real" else (-4.0, 4.0))
    try:
        curves = loss_curves(spec.name, params, lo=lo, hi=hi, points=args.points, classes=args.classes,
                             target=args.target)
    except ValueError as exc:
        raise CLIError(f"lossforge {exc}") from exc
    if args.json:
        print(json.dumps({"name": curves.name, "axis": curves.axis, "x": curves.x.tolist(),
                          "curves": [{"label": label, "params": kw, "loss": v.tolist(), "gradient": g.tolist()}
                                     for label, kw, v, g in curves.curves]}))
    else:
        print(f"{curves.name}: loss and gradient against the {curves.axis}")
        for line in _table(curves, [lo, lo / 2, 0.0, hi / 2, hi] if lo < 0 < hi else
                           [lo + (hi - lo) * k / 4 for k in range(5)]):
            print(line)
    if args.plot:
        try:
            path = plot_loss_curves(curves, args.out or f"{curves.name}.png")
        except MissingDependencyError as exc:
            raise CLIError(f"{exc} Or pass --no-plot.", code=1) from exc
        if not args.json:
            print(f"wrote {path}")
    return 0
