"""Every exit of ``alloop run`` / ``alloop resume`` other than success leaves its reason in ``campaign.log``.

Failures are injected into the real command line (``alloop.cli.main``) on a real store: an unexpected exception
(traceback to the log, one line to stderr), a user-facing error, and SIGTERM of a real ``alloop resume`` process
(stopped once the log shows it started, not after a time).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alloop import cli
from alloop.campaign.loop import runner
from alloop.config import load_campaign
from alloop.errors import StoreError
from alloop.store.campaign import CampaignStore
from alloop.store.resolve import store_path
from harness.campaigns import write_tiny


def _new_store(tmp_path: Path) -> Path:
    """A campaign store with its config and nothing else: what ``alloop run`` leaves when killed at once."""
    run_dir = tmp_path / "run"
    CampaignStore.create(store_path(run_dir), load_campaign(write_tiny(tmp_path)).to_dict()).close()
    return run_dir


def _fail_with(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    def boom(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise exc

    monkeypatch.setattr(runner, "_check_label_software", boom)


def test_an_unexpected_error_of_resume_leaves_its_traceback_in_the_log(tmp_path, monkeypatch, capsys):
    run_dir = _new_store(tmp_path)
    _fail_with(monkeypatch, RuntimeError("injected failure"))
    assert cli.main(["resume", str(run_dir), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "RuntimeError: injected failure" in err[0] and "campaign.log" in err[0], err
    log = (run_dir / "campaign.log").read_text()
    assert "stopped: unexpected error: RuntimeError: injected failure" in log
    assert "Traceback (most recent call last)" in log and "raise exc" in log
    assert CampaignStore.open(store_path(run_dir), "a") is not None  # the store was closed, not left locked


def test_a_user_facing_error_of_resume_is_one_line_in_the_log_and_on_stderr(tmp_path, monkeypatch, capsys):
    run_dir = _new_store(tmp_path)
    _fail_with(monkeypatch, StoreError("injected: the store says no"))
    assert cli.main(["resume", str(run_dir), "--no-progress"]) == 1
    assert capsys.readouterr().err.strip() == "alloop resume: error: injected: the store says no"
    lines = (run_dir / "campaign.log").read_text().splitlines()
    assert lines[-1].endswith("stopped: error: injected: the store says no")


def test_a_locked_store_is_refused_with_its_reason_in_the_log(tmp_path, capsys):
    run_dir = _new_store(tmp_path)
    with CampaignStore.open(store_path(run_dir), "a"):  # another writer holds the store
        assert cli.main(["resume", str(run_dir), "--no-progress"]) == 1
    err = capsys.readouterr().err
    log = (run_dir / "campaign.log").read_text()
    assert "stopped: error:" in log and err.strip().split("error: ", 1)[1] in log


def test_an_interrupt_of_run_says_so_in_the_log(tmp_path, monkeypatch, capsys):
    _fail_with(monkeypatch, KeyboardInterrupt())
    run_dir = tmp_path / "run"
    assert cli.main(["run", str(write_tiny(tmp_path)), "--dir", str(run_dir), "--no-progress"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert "stopped: interrupted (SIGINT)" in (run_dir / "campaign.log").read_text()


def test_sigterm_stops_resume_with_its_reason_in_the_log(tmp_path):
    run_dir = _new_store(tmp_path)
    log = run_dir / "campaign.log"
    proc = subprocess.Popen([sys.executable, "-m", "alloop.cli", "resume", str(run_dir), "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 300  # a safety net only: the signal is sent on the log's first line
        while not (log.is_file() and "Dask:" in log.read_text()):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "resume did not start within 300 s"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM" in err
    assert "stopped: SIGTERM received" in log.read_text()


def test_a_native_crash_of_a_campaign_process_leaves_its_stack_in_the_log(tmp_path):
    """A segmentation fault cannot raise: faulthandler writes the stacks to the run directory's log."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    code = ("import ctypes, sys\n"
            "from alloop.campaign.loop.exits import logged_exit\n"
            "with logged_exit(sys.argv[1]):\n"
            "    ctypes.string_at(0)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(run_dir)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGSEGV, proc.stderr
    log = (run_dir / "campaign.log").read_text()
    assert "Fatal Python error: Segmentation fault" in log and "string_at" in log


def test_sigusr1_writes_every_threads_stack_to_the_log_and_the_campaign_goes_on(tmp_path):
    """A campaign that seems stuck is asked where it is: its stacks go to the log, the process carries on."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    code = ("import os, signal, sys\n"
            "from alloop.campaign.loop.exits import logged_exit\n"
            "def waiting_here():\n"
            "    os.kill(os.getpid(), signal.SIGUSR1)\n"
            "with logged_exit(sys.argv[1]):\n"
            "    waiting_here()\n"
            "    print('went on')\n")
    proc = subprocess.run([sys.executable, "-c", code, str(run_dir)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "went on", proc.stderr
    log = (run_dir / "campaign.log").read_text()
    assert "waiting_here" in log and "Current thread" in log


def test_a_reader_that_closes_stdout_early_gets_no_traceback(tmp_path):
    """``alloop status RUN | head -1``: the reader is gone before the status is written (the pipe's read end is
    closed before the child starts, so its first write fails whatever the machine's speed); the command exits 141,
    as a Unix tool killed by SIGPIPE does, and quietly."""
    run_dir = _new_store(tmp_path)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "alloop", "status", str(run_dir)], stdout=write_end,
                                stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write_end)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err
