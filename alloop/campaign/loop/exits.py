"""Why a campaign process stopped, written to its run directory's ``campaign.log``.

A campaign started in the background is diagnosed from its run directory, so every exit of
``alloop run`` / ``alloop resume`` other than success leaves its reason there as well as on stderr:

- a user-facing error (:class:`AlloopError`): its one-line message;
- SIGINT / SIGTERM: which signal, and how to continue (:func:`alloop.signals.stop_on_signals` turns SIGTERM
  into :class:`Stopped`, a ``KeyboardInterrupt``, so the cluster and the store close as on Ctrl-C, and remembers
  both, in case the garbage collector swallowed their exception);
- any other exception: one line naming it, then its traceback (the exception is marked with
  ``alloop_log``, the log's path, so the command line prints one line to stderr and points there).

A crash in native code (a segmentation fault in a compiled library, an abort) cannot raise: while a run directory
is open, :mod:`faulthandler` writes the Python stack of every thread to the log then. A campaign that seems stuck
can be asked for the same without stopping it: ``kill -USR1 <pid>`` appends every thread's stack to the log.
SIGKILL leaves no reason (nothing runs); the store's last commit is the truth then, as always.
"""

from __future__ import annotations

import contextlib
import faulthandler
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alloop.errors import AlloopError
from alloop.signals import Stopped

LOG_NAME = "campaign.log"
#: the attribute that names the campaign log on an exception whose traceback went there (read by alloop.cli)
LOG_ATTRIBUTE = "alloop_log"


def append_log(run_dir: Path, text: str) -> None:
    """Append ``text`` (one or more lines) to ``run_dir/campaign.log``, each line stamped."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    with open(Path(run_dir) / LOG_NAME, "a") as fh:
        for line in text.rstrip("\n").splitlines() or [""]:
            fh.write(f"{stamp} {line}\n")


@contextlib.contextmanager
def logged_exit(run_dir: Path) -> Iterator[None]:
    """Write the reason of any exception leaving the block to ``run_dir/campaign.log`` (when ``run_dir`` exists),
    then re-raise it unchanged; a native crash inside the block dumps the threads' stacks there."""
    with _native_crashes_to(Path(run_dir)):
        try:
            yield
        except BaseException as exc:
            if Path(run_dir).is_dir():
                _record(Path(run_dir), exc)
            raise


@contextlib.contextmanager
def _native_crashes_to(run_dir: Path) -> Iterator[None]:
    """faulthandler writes to ``run_dir/campaign.log`` within the block, on a native crash and on SIGUSR1 (then back
    to what it did before)."""
    if not run_dir.is_dir():
        yield
        return
    was_enabled = faulthandler.is_enabled()
    with open(run_dir / LOG_NAME, "a") as fh:
        faulthandler.enable(file=fh, all_threads=True)
        dumps = _dump_stacks_on_sigusr1(fh)
        try:
            yield
        finally:
            if dumps:
                faulthandler.unregister(signal.SIGUSR1)
            faulthandler.disable()
            if was_enabled:  # on the process's standard error (where it was, unless a caller had chosen a file)
                with contextlib.suppress(AttributeError, OSError, ValueError):
                    if sys.__stderr__ is not None:
                        faulthandler.enable(file=sys.__stderr__, all_threads=True)


def _dump_stacks_on_sigusr1(fh: Any) -> bool:
    """SIGUSR1 makes faulthandler write every thread's stack to ``fh`` (the process goes on); False where it cannot
    (a platform without the signal)."""
    try:
        faulthandler.register(signal.SIGUSR1, file=fh, all_threads=True)
    except (AttributeError, ValueError, RuntimeError):
        return False
    return True


def _record(run_dir: Path, exc: BaseException) -> None:
    resume = f"continue with 'alloop resume {run_dir}'"
    try:
        if isinstance(exc, Stopped):
            append_log(run_dir, f"stopped: {exc.args[0]} received; everything committed is kept; {resume}")
        elif isinstance(exc, KeyboardInterrupt):
            append_log(run_dir, f"stopped: interrupted (SIGINT); everything committed is kept; {resume}")
        elif isinstance(exc, AlloopError):
            append_log(run_dir, f"stopped: error: {one_line(exc)}")
        elif isinstance(exc, Exception):
            append_log(run_dir, f"stopped: unexpected error: {one_line(exc)}; everything committed is kept; "
                                f"{resume}; its traceback follows\n"
                       + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
            setattr(exc, LOG_ATTRIBUTE, str(run_dir / LOG_NAME))
        else:  # SystemExit, GeneratorExit: not a failure of the campaign
            return
    except OSError:  # the log cannot be written (disk full, directory gone): stderr still says why
        return


def one_line(exc: BaseException) -> str:
    """``exc`` as one line: its type unless it is a user-facing error, then its first message line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, AlloopError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
