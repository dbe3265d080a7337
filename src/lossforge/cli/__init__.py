"""The ``lossforge`` command line: ``main(argv) -> exit code``.

Each subcommand is one small module with ``add_parser(subparsers, parents)``,
which registers its parser and sets ``func`` (``func(args) -> int``). A new
subcommand is a new module added to :data:`COMMANDS`.

Exit codes: 0 success; 1 failure (an error while running, a missing optional
dependency, nothing found); 2 usage error (bad flag, unknown loss name). Errors
print one line on stderr; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import _bench, _check, _compare, _demo, _list, _native, _plot, _show, _train
from ._common import CLIError

__all__ = ["COMMANDS", "CLIError", "build_parser", "main"]

#: The subcommand modules, in the order ``--help`` lists them.
COMMANDS = (_list, _show, _demo, _check, _train, _compare, _plot, _bench, _native)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand of :data:`COMMANDS`."""
    from .. import __version__

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback on errors")
    parser = argparse.ArgumentParser(
        prog="lossforge", parents=[common],
        description="Loss functions for PyTorch: browse the registry and run the demo.",
        epilog="'lossforge COMMAND --help' shows a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"lossforge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(sub, [common])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else 2
    debug = getattr(args, "debug", False)
    try:
        return int(args.func(args))
    except CLIError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except BrokenPipeError:  # e.g. ``lossforge list | head``: stop quietly
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        print(f"error: lossforge {args.command}: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
              file=sys.stderr)
        return 1
