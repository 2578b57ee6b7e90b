"""Stop signals: raised in the main thread, and remembered when the garbage collector drops their exception."""

from __future__ import annotations

import gc
import os
import signal
import sys

import pytest

from alloop.signals import Stopped, raise_if_stopped, stop_on_signals


class _SignalledWhileCollected:
    """Sends a signal from ``__del__``: its handler runs there, and Python drops what it raises."""

    def __init__(self, signum: int) -> None:
        self.signum = signum

    def __del__(self) -> None:
        os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize(("signum", "raised"), [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Stopped)])
def test_a_stop_swallowed_by_the_garbage_collector_is_raised_again(signum, raised, monkeypatch):
    dropped: list = []
    monkeypatch.setattr(sys, "unraisablehook", dropped.append)  # Python's "Exception ignored in __del__"
    with stop_on_signals():
        raise_if_stopped()  # nothing asked yet
        obj = _SignalledWhileCollected(signum)
        del obj
        gc.collect()
        assert [type(d.exc_value) for d in dropped] == [raised]  # the signal's exception went nowhere
        with pytest.raises(raised) as info:
            raise_if_stopped()
        assert isinstance(info.value, Stopped) == (signum == signal.SIGTERM)
    raise_if_stopped()  # outside the block: forgotten


def test_a_stop_signal_raises_in_the_main_thread_and_handlers_come_back():
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals(), pytest.raises(Stopped) as info:
        signal.raise_signal(signal.SIGTERM)
    assert info.value.signum == signal.SIGTERM and info.value.args == ("SIGTERM",)
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_process_started_ignoring_sigint_still_stops_on_it():
    """A shell script's background job starts with SIGINT ignored: ``kill -INT`` must still stop the campaign."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with stop_on_signals(), pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # as it was
    finally:
        signal.signal(signal.SIGINT, previous)
