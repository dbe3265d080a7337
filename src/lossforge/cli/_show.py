"""``lossforge show NAME``: everything the registry knows about one loss, and its docstring."""

from __future__ import annotations

import argparse
import inspect
from typing import Any

import lossforge as lf
import lossforge.functional as LF

from ._common import arrow, unknown_loss

__all__ = ["add_parser", "describe", "find", "run"]


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "show", parents=parents, help="show one loss: signatures, kinds, unit, reference, docstring",
        description="Show one registered loss (by name or alias): the function's signature, the module "
                    "class and its constructor, family, input and target kinds, unit, reference and the "
                    "function's docstring with the formula.",
    )
    p.add_argument("name", metavar="NAME",
                   help="registry name or alias (cross_entropy, ce), or the function or module name (CrossEntropyLoss)")
    p.set_defaults(func=run)


def _public_path(obj: Any, namespace: Any, prefix: str) -> str:
    name = getattr(obj, "__name__", repr(obj))
    if getattr(namespace, name, None) is obj:
        return f"{prefix}.{name}"
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', name)}"


def _signature(obj: Any) -> str:
    """The call signature without annotations (they are in the docstring), e.g. ``(logits, target, /, *, ...)``."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(...)"
    params = [p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values()]
    return str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty))


def find(name: str) -> lf.LossSpec | None:
    """The spec for a registry name or alias, or for the name of a loss's function or module class."""
    try:
        return lf.get_loss(name)
    except ValueError:
        pass
    for key in lf.list_losses():
        spec = lf.get_loss(key)
        if name in (getattr(spec.function, "__name__", None), getattr(spec.module, "__name__", None)):
            return spec
    return None


def describe(name: str) -> str:
    """The text ``lossforge show NAME`` prints.

    Raises:
        CLIError: For an unknown name (with "did you mean").
    """
    spec = find(name)
    if spec is None:
        raise unknown_loss("show", name)
    fn = spec.function
    head = spec.name + (f"  (alias: {', '.join(spec.aliases)})" if spec.aliases else "")
    fields = [
        ("function", _public_path(fn, LF, "lossforge.functional") + _signature(fn)),
        ("module", (_public_path(spec.module, lf, "lossforge") + _signature(spec.module))
         if spec.module is not None else "none (function only)"),
        ("family", spec.family),
        ("kinds", f"{spec.input_kind} {arrow()} {spec.target_kind}  (input {arrow()} target)"),
        ("unit", f"{spec.unit}  (one entry of the unreduced loss, reduction='none')"),
        ("separable", "yes (batch-split additive)" if spec.separable else "no"),
        ("reference", spec.reference or "-"),
    ]
    width = max(len(k) for k, _ in fields)
    lines = [head, *(f"  {k.ljust(width)}  {v}" for k, v in fields), ""]
    lines.append(inspect.getdoc(fn) or "(no docstring)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    print(describe(args.name))
    return 0
