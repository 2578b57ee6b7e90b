"""``alloop dashboard``: one line for a run directory that is not a store and for bad options; a real server process
bound to localhost that serves the page, leaves the store untouched and stops cleanly on SIGTERM."""

from __future__ import annotations

import socket
import urllib.request

from dashboard_store import store_files, write_store

from alloop.cli import main
from alloop.dashboard.server import url_of, websocket_origins
from alloop.store import find_store
from harness.dashboard import running_dashboard


def _one_line_error(capsys, argv: list[str]) -> str:
    assert main(["dashboard", *argv]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith("alloop dashboard: error: ")
    return captured.err


def test_one_line_when_the_run_directory_is_not_a_store(tmp_path, capsys):
    assert "holds no campaign store" in _one_line_error(capsys, [str(tmp_path)])
    assert "no such directory" in _one_line_error(capsys, [str(tmp_path / "missing")])
    (tmp_path / "store.zarr").mkdir()
    (tmp_path / "store.zarr" / "zarr.json").write_text("{}")
    assert "not an alloop campaign store" in _one_line_error(capsys, [str(tmp_path)])


def test_one_line_for_bad_options_and_a_taken_port(tmp_path, capsys):
    run_dir = write_store(tmp_path)
    assert "--port must be 0-65535" in _one_line_error(capsys, [str(run_dir), "--port", "70000"])
    assert "--interval must be a positive" in _one_line_error(capsys, [str(run_dir), "--interval", "0"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err = _one_line_error(capsys, [str(run_dir), "--port", str(port)])
    assert f"cannot listen on 127.0.0.1:{port}" in err


def test_addresses():
    assert websocket_origins("127.0.0.1", 5006) == ["localhost:5006", "127.0.0.1:5006", "[::1]:5006"]
    assert websocket_origins("localhost", 80)[0] == "localhost:80"
    assert websocket_origins("0.0.0.0", 5006) == ["*"]
    assert websocket_origins("node7", 5006) == ["node7:5006"]
    assert url_of("0.0.0.0", 5006) == "http://localhost:5006/"
    assert url_of("::1", 5006) == "http://[::1]:5006/"


def test_the_server_serves_the_page_on_localhost_and_writes_nothing(tmp_path):
    run_dir = write_store(tmp_path)
    before = store_files(find_store(run_dir))
    with running_dashboard(run_dir, "--interval", "0.2") as dashboard:
        assert dashboard.url.startswith("http://127.0.0.1:")  # bound to localhost by default
        with urllib.request.urlopen(dashboard.url, timeout=120) as response:
            page = response.read().decode()
        assert response.status == 200 and "<title>alloop dashboard: tiny</title>" in page
        port = int(dashboard.url.rsplit(":", 1)[1].strip("/"))
        with socket.socket() as probe:  # bound to 127.0.0.1 alone: another loopback address is refused
            assert probe.connect_ex(("127.0.0.2", port)) != 0
        with urllib.request.urlopen(dashboard.url + "static/js/bokeh.min.js", timeout=120) as response:
            assert response.status == 200  # BokehJS from the server itself: no CDN needed
    assert dashboard.returncode == 143 and "stopped by SIGTERM" in dashboard.stderr
    assert store_files(find_store(run_dir)) == before


def test_another_host_is_used_when_asked(tmp_path):
    host = "127.0.0.2"
    with running_dashboard(write_store(tmp_path), "--host", host) as dashboard:
        assert dashboard.url.startswith(f"http://{host}:")
        with urllib.request.urlopen(dashboard.url, timeout=120) as response:
            assert response.status == 200
