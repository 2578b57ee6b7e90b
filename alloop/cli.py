"""The ``alloop`` command line: thin parsing, then calls into the package.

Each sub-command lives in ``alloop/commands/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func(args) -> int``.
User mistakes (AlloopError, missing files) print one line and exit 1; a closed
stdout (``| head``) exits 141 quietly; a programming error keeps its traceback, except in ``run`` and ``resume``, which write
it to the run directory's ``campaign.log`` (with every other reason they stop for)
and print one line pointing there. SIGTERM stops them as Ctrl-C does (exit 143).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

import alloop
import alloop.commands
from alloop.errors import AlloopError


def command_modules() -> dict[str, str]:
    """Command name -> its module under ``alloop/commands`` (``import_.py`` is ``alloop import``), without importing
    any of them."""
    return {info.name.rstrip("_"): f"alloop.commands.{info.name}" for info in pkgutil.iter_modules(alloop.commands.__path__)
            if not info.name.startswith("_")}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; with ``command`` (a known command name) only that command's module is imported
    and registered, so ``alloop status`` does not pay for torch, which ``alloop refine`` imports to register."""
    parser = argparse.ArgumentParser(
        prog="alloop",
        description="Active-learning MD for machine-learned force fields: explore with MD, "
        "flag uncertain frames, label them with PySCF at two fidelities, retrain (ASTEROID).",
    )
    parser.add_argument("--version", action="version", version=f"alloop {alloop.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    known = command_modules()
    names = [command] if command in known else list(known)
    modules = [importlib.import_module(known[name]) for name in names]
    for module in sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__)):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from alloop.allocator import reuse_freed_memory
    from alloop.campaign.loop.exits import one_line
    from alloop.signals import Stopped, stop_on_signals

    reuse_freed_memory()  # training and labelling in this process (alloop train, label, evaluate, the driver)
    try:
        with stop_on_signals():
            code = int(args.func(args) or 0)
            sys.stdout.flush()
            return code
    except BrokenPipeError:
        return _reader_went_away()
    except AlloopError as exc:
        print(f"alloop {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        print(f"alloop {args.command}: error: no such file: {exc.filename or exc}", file=sys.stderr)
        return 1
    except Stopped as exc:
        print(f"alloop {args.command}: stopped by {exc.args[0]}", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print(f"alloop {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        log = getattr(exc, "alloop_log", None)
        if log is None:
            raise
        print(f"alloop {args.command}: unexpected error: {one_line(exc)} (traceback in {log}; everything "
              "committed is kept)", file=sys.stderr)
        return 1


def _reader_went_away() -> int:
    """The reader of stdout closed it (``alloop status RUN | head``): no traceback, stdout pointed at /dev/null so
    the interpreter's final flush cannot fail again, and the exit status a Unix tool killed by SIGPIPE has."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141


if __name__ == "__main__":
    sys.exit(main())
