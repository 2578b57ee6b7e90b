"""``alloop dashboard RUN_DIR``: a local web page that follows a campaign store while the campaign runs."""

from __future__ import annotations

import argparse

from alloop.errors import AlloopError

ORDER = 31
DEFAULT_HOST, DEFAULT_PORT, DEFAULT_INTERVAL_S = "127.0.0.1", 5006, 2.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dashboard",
        help="serve a local web page that follows a campaign while it runs: learning curve vs labelling CPU, "
        "predicted vs measured error, coverage, flags and labels per cycle and fidelity, phase timeline, budget left",
        description="Serve a web page (a Bokeh server) showing the campaign store in RUN_DIR (or the store directory "
        "itself) and updating itself after every new commit: the current cycle and phase, the learning curve "
        "(force MAE per model vs cumulative labelling CPU s), predicted vs measured force errors, coverage of the "
        "evaluation set, flagged MD frames and labels per cycle and fidelity, a timeline of the finished phases and "
        "the budget left. Read-only and lock-free: it runs beside a live campaign. Bound to 127.0.0.1 unless "
        "--host says otherwise; Ctrl-C stops it.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="campaign run directory or store directory")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to listen on (default {DEFAULT_HOST}: this machine only; 0.0.0.0: every "
                        "interface, so anyone who reaches the port sees the page)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port to listen on (default {DEFAULT_PORT}; 0: any free port, printed on start)")
    parser.add_argument("--interval", type=float, default=DEFAULT_INTERVAL_S, metavar="SECONDS",
                        help=f"how often the page checks the store for a new commit (default {DEFAULT_INTERVAL_S:g} s)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from alloop.dashboard.server import serve
    from alloop.store import find_store

    if not 0 <= args.port <= 65535:
        raise AlloopError(f"--port must be 0-65535 (got {args.port})")
    if not args.interval > 0:
        raise AlloopError(f"--interval must be a positive number of seconds (got {args.interval:g})")
    path = find_store(args.run_dir)

    def announce(url: str) -> None:
        print(f"alloop dashboard: {url} (store {path}, checked every {args.interval:g} s; Ctrl-C stops it)",
              flush=True)

    serve(path, args.host, args.port, args.interval, announce)
    return 0
