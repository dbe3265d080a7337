"""``lossforge check TARGET``: run the verifier on a registered loss or your own, print the report.

TARGET is a registered name (``focal``), ``package.module:attr`` or ``path/to/file.py:attr``; a class
is instantiated with its defaults or with ``--init key=value``. Exit code 0 when every check passed
or was skipped, 1 when one failed, 2 for a usage error (unknown target, import error, bad option).
"""

from __future__ import annotations

import argparse
import ast
import functools
import importlib
import importlib.util
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import lossforge as lf

from .._core.errors import did_you_mean
from ..verify import CHECKS, CHECKS_SLOW, TASKS, CheckReport, check
from ..verify._user import registered_spec
from ._common import CLIError, unknown_loss

__all__ = ["add_parser", "load_target", "parse_init", "run"]


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "check", parents=parents, help="check a loss, registered or your own, for silent bugs",
        description="Run the verifier on a loss: silent broadcasting, reductions, NaN or inf values and "
                    "gradients at extreme, empty, masked and ignored inputs, in-place changes, half "
                    "precision, determinism, state_dict, and the family battery of its task. Prints a "
                    "table whose last line is 'N passed, N failed'; exits 1 when a check failed.",
        epilog="TARGET: a registered name (focal), package.module:attr, or path/to/file.py:attr. Your own "
               f"loss needs --task ({', '.join(TASKS)}). Example: lossforge check my_losses.py:DiceLoss "
               "--task segmentation --init smooth=1.0",
    )
    p.add_argument("target", nargs="?", metavar="TARGET", help="the loss to check")
    p.add_argument("--task", metavar="TASK", help="inputs and family battery for your own loss")
    p.add_argument("--init", action="append", default=[], metavar="KEY=VALUE",
                   help="a constructor argument for a class TARGET (a Python literal; repeatable)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--compile", action="store_true", help="also check torch.compile (slow: seconds per loss)")
    p.add_argument("--all", action="store_true", help="check every registered loss")
    p.add_argument("--only", metavar="CHECKS", help="comma-separated check names to run")
    p.add_argument("--dtypes", metavar="DTYPES", help="low-precision dtypes to compare with float32 "
                                                     "(default: float16,bfloat16)")
    p.set_defaults(func=run)


def parse_init(items: list[str]) -> dict[str, Any]:
    """``["gamma=2", "reduction=sum"]`` -> ``{"gamma": 2, "reduction": "sum"}`` (literals, else strings).

    Raises:
        CLIError: For an item without ``=`` or with an invalid key.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise CLIError(f"lossforge check: --init must be KEY=VALUE with KEY an identifier, got {item!r}.")
        try:
            out[key] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            out[key] = text.strip()
    return out


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise CLIError(f"lossforge check: no such file {str(path)!r}.")
    name = f"_lossforge_check_{path.stem}_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CLIError(f"lossforge check: cannot import {str(path)!r} (not a Python file).")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise CLIError(f"lossforge check: cannot import {str(path)!r}: {type(exc).__name__}: {exc}") from exc
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    return module


def load_target(text: str) -> Any:
    """The object TARGET names: a registered loss's name (returned as is), or ``module:attr`` and
    ``file.py:attr`` imported.

    Raises:
        CLIError: For an unknown name, a module or file that cannot be imported, a missing attribute.
    """
    if ":" not in text:
        try:
            return lf.get_loss(text).name
        except ValueError:
            for key in lf.list_losses():
                spec = lf.get_loss(key)
                if text in (getattr(spec.function, "__name__", None), getattr(spec.module, "__name__", None)):
                    return spec.name
        error = unknown_loss("check", text)
        raise CLIError(f"{error} Your own loss: MODULE:ATTR or path/to/file.py:ATTR.") from None
    where, _, attr = text.rpartition(":")
    if not where or not attr:
        raise CLIError(f"lossforge check: TARGET must be NAME, MODULE:ATTR or FILE.py:ATTR, got {text!r}.")
    if where.endswith(".py") or "/" in where or "\\" in where:
        module = _import_file(Path(where))
    else:
        try:
            module = importlib.import_module(where)
        except Exception as exc:
            raise CLIError(f"lossforge check: cannot import module {where!r}: {type(exc).__name__}: {exc}") from exc
    try:
        return functools.reduce(getattr, attr.split("."), module)
    except AttributeError:
        shown = [n for n in dir(module) if not n.startswith("_")]
        raise CLIError(f"lossforge check: {where!r} has no attribute {attr!r} (it has: "
                       f"{', '.join(shown[:12])}{', ...' if len(shown) > 12 else ''}).") from None


def _instantiate(obj: Any, init: dict[str, Any], target: str) -> Any:
    if isinstance(obj, str):  # a registered name: --init builds its module
        if not init:
            return obj
        module = lf.get_loss(obj).module
        if module is None:
            raise CLIError(f"lossforge check: {obj!r} has no module class, so --init does not apply.")
        obj = module
    if not isinstance(obj, type):
        if init:
            raise CLIError(f"lossforge check: --init applies to a class, but {target!r} is a "
                           f"{type(obj).__name__}.")
        return obj
    if not init and registered_spec(obj) is not None:
        return obj  # a registered module class: checked as its registry entry
    try:
        return obj(**init)
    except Exception as exc:
        given = ", ".join(f"{k}={v!r}" for k, v in init.items()) or "its defaults"
        hint = "" if init else " Hint: pass its arguments with --init KEY=VALUE."
        raise CLIError(f"lossforge check: cannot instantiate {obj.__name__} with {given}: "
                       f"{type(exc).__name__}: {exc}.{hint}") from exc


def _only(text: str | None, compile: bool) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    every = {**CHECKS, **CHECKS_SLOW}
    for n in names:
        if n not in every:
            raise CLIError(f"lossforge check: --only names checks, got {n!r}.{did_you_mean(n, every)} "
                           f"The checks: {', '.join(every)}.")
    if compile and "compile" not in names:
        names.append("compile")
    return names


def _dtypes(text: str | None) -> list[str] | None:
    return None if text is None else [d.strip() for d in text.split(",") if d.strip()]


def _run_one(obj: Any, args: argparse.Namespace, only: list[str] | None) -> CheckReport:
    try:
        return check(obj, task=args.task, compile=args.compile, checks=only, dtypes=_dtypes(args.dtypes))
    except (ValueError, TypeError) as exc:
        raise CLIError(f"lossforge {exc}" if str(exc).startswith("check:") else f"lossforge check: {exc}") from exc


def _width() -> int | None:
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def _run_all(args: argparse.Namespace, only: list[str] | None) -> int:
    start = time.perf_counter()
    reports = []
    names = lf.list_losses()
    pad = max(len(n) for n in names)
    for name in names:
        report = _run_one(name, args, only)
        reports.append(report)
        if not args.json:
            print(f"{name:<{pad}}  {report.summary()}  ({report.seconds:.1f} s)", flush=True)
            for r in report.failed:
                print(f"    {r.name}: {r.detail}", flush=True)
    passed = sum(len(r.passed) for r in reports)
    failed = sum(len(r.failed) for r in reports)
    skipped = sum(len(r.skipped) for r in reports)
    bad = [r.loss for r in reports if not r.ok]
    if args.json:
        print(json.dumps({"ok": not bad, "passed": passed, "failed": failed, "skipped": skipped,
                          "losses": [r.to_dict() for r in reports]}, indent=2, ensure_ascii=False))
    else:
        print(f"{len(reports)} losses in {time.perf_counter() - start:.0f} s"
              + (f"; failures in {', '.join(bad)}" if bad else ""))
        print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if bad else 0


def run(args: argparse.Namespace) -> int:
    only = _only(args.only, args.compile)
    if args.all:
        if args.target or args.init:
            raise CLIError("lossforge check: give TARGET or --all, not both (--init needs a TARGET).")
        return _run_all(args, only)
    if not args.target:
        raise CLIError("lossforge check: give a TARGET (a registered name, MODULE:ATTR or FILE.py:ATTR) or --all.")
    obj = _instantiate(load_target(args.target), parse_init(args.init), args.target)
    report = _run_one(obj, args, only)
    if args.json:
        print(report.to_json())
    else:
        head = str(report).split("\n", 1)[0]
        print(head)
        print(report.table(width=_width()))
        print(report.summary())
    return 0 if report.ok else 1
