"""The dashboard's Bokeh server: one page per browser session, refreshed from the store every few seconds.

A :class:`StoreWatcher` reads the store's commit record (one small JSON file) at every refresh and reads the
store anew (read-only, no lock) only when the commit sequence number changed; the snapshot it read is shared by
every session. A store that cannot be read for a moment (a damaged file, a disk gone) keeps the last snapshot on
the page with the reason, and is read again at the next refresh. Nothing is ever written to the store.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bokeh.application import Application
from bokeh.application.handlers.function import FunctionHandler
from bokeh.document import Document
from bokeh.server.server import BaseServer
from bokeh.server.tornado import BokehTornado
from bokeh.server.util import bind_sockets
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop

from alloop.dashboard.data import read_snapshot
from alloop.dashboard.page import Page
from alloop.errors import AlloopError
from alloop.store.campaign import CampaignStore
from alloop.store.record import read_root_meta


class StoreWatcher:
    """The latest snapshot of the store at ``path``, read again only after a new commit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.snapshot = self._read()

    def _read(self) -> dict[str, Any]:
        with CampaignStore.open(self.path, "r") as store:
            return read_snapshot(store)

    def refresh(self) -> dict[str, Any]:
        """The snapshot of the newest commit (re-read when the commit record names a new sequence number)."""
        seq = read_root_meta(self.path)["attributes"]["commit"]["seq"]
        if seq != self.snapshot["commit"]["seq"]:
            self.snapshot = self._read()
        return self.snapshot


def session(watcher: StoreWatcher, interval_s: float) -> Callable[[Document], None]:
    """The function that builds a new session's page and refreshes it every ``interval_s`` seconds."""

    def build(doc: Document) -> None:
        page = Page(watcher.snapshot)
        doc.title = f"alloop dashboard: {watcher.snapshot['name'] or watcher.path}"
        doc.add_root(page.root)

        def update() -> None:
            try:
                snapshot = watcher.refresh()
            except Exception as exc:  # any failure to read is shown on the page, then retried
                page.show_error(watcher.snapshot, f"{type(exc).__name__}: {exc}")
                return
            if snapshot["commit"]["seq"] != page.seq:
                page.show(snapshot)
            elif "could not read" in page.status.text:
                page.show(snapshot)  # readable again: drop the error line

        doc.add_periodic_callback(update, max(50, int(1000 * interval_s)))

    return build


def websocket_origins(host: str, port: int) -> list[str]:
    """Where the page may be opened from: ``localhost`` and the loopback address for a loopback host; the host
    itself for a named one; anywhere (``*``) for a wildcard address (``0.0.0.0``, ``::``)."""
    if host in ("localhost", "") or _is_loopback(host):
        return [f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"]
    if _is_unspecified(host):
        return ["*"]
    return [f"{host}:{port}"]


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def url_of(host: str, port: int) -> str:
    """The page's address (a wildcard host is reached through localhost from this machine)."""
    shown = "localhost" if _is_unspecified(host) else host
    return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"


def start_server(path: Path, host: str, port: int, interval_s: float) -> tuple[BaseServer, str]:
    """Bind ``host:port`` (0: any free port), read the store once and start serving the page on the current
    IOLoop; returns the server and the page's URL (run the loop to serve)."""
    watcher = StoreWatcher(path)  # refuses a store it cannot read before anything listens
    try:
        sockets, bound = bind_sockets(host, port)
    except OSError as exc:  # the port is taken, or the address is not this machine's
        raise AlloopError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    app = BokehTornado({"/": Application(FunctionHandler(session(watcher, interval_s)))},
                       extra_websocket_origins=websocket_origins(host, bound), absolute_url=url_of(host, bound))
    http = HTTPServer(app)
    http.start(1)
    http.add_sockets(sockets)
    server = BaseServer(IOLoop.current(), app, http)
    server.start()
    return server, url_of(host, bound)


def serve(path: Path, host: str, port: int, interval_s: float, announce: Callable[[str], None]) -> None:
    """Serve the dashboard of the store at ``path`` until interrupted; ``announce`` gets the page's URL."""
    server, url = start_server(path, host, port, interval_s)
    announce(url)
    try:
        server.io_loop.start()
    finally:
        server.stop()
