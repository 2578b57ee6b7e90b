"""Stop signals of an alloop command: SIGINT (Ctrl-C) and SIGTERM raise in the main thread, and are remembered.

:func:`stop_on_signals` wraps every command (``alloop.cli``); the campaign's loops call :func:`raise_if_stopped` at
each label, phase and pass, so a stop whose exception Python dropped (see there) still stops the campaign.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any


class Stopped(KeyboardInterrupt):
    """The process was asked to stop by a signal (SIGTERM; SIGINT raises KeyboardInterrupt itself)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


#: the stop signal received inside :func:`stop_on_signals`, or None: kept in case its exception was swallowed
_requested: int | None = None


def _stop_exception(signum: int) -> KeyboardInterrupt:
    return KeyboardInterrupt() if signum == signal.SIGINT else Stopped(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGINT raises ``KeyboardInterrupt`` and SIGTERM :class:`Stopped` in the main thread (the
    default SIGTERM handler would end the process without closing anything or saying why), and both are remembered.
    Both are handled even when the process started ignoring them (a shell script's background job ignores
    SIGINT): a stop keeps everything committed, and ``kill -INT`` should stop a campaign wherever it started.

    Python runs a signal handler between two bytecodes of the main thread, which may be inside a ``__del__`` or a
    weakref callback of the garbage collector; an exception raised there is printed ("Exception ignored in ...")
    and dropped, so a Ctrl-C could be lost and the campaign go on. The campaign loops call :func:`raise_if_stopped`
    at each label, phase and pass, which raises the remembered stop again.
    """
    global _requested

    def handler(signum: int, frame: Any) -> None:  # noqa: ARG001 (signal's signature)
        global _requested
        _requested = signum
        raise _stop_exception(signum)

    try:
        previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old if old is not None else signal.SIG_DFL)
        _requested = None


def raise_if_stopped() -> None:
    """Raise the stop a signal asked for (``KeyboardInterrupt`` or :class:`Stopped`) if one was received inside
    :func:`stop_on_signals`: its first exception may have been swallowed (see there)."""
    if _requested is not None:
        raise _stop_exception(_requested)
