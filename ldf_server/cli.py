"""Command line: ``ldf-server --config config/default.toml``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from ldf_server import __version__, logs
from ldf_server.config import ConfigError, load_config

DEFAULT_CONFIG = "config/default.toml"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ldf-server",
        description="Publish real-time city data as cacheable Linked Data Fragments (LDES, JSON-LD).",
        epilog=(
            "Settings come from the config file, then environment variables, then these options; later ones win. "
            "Every setting has a variable LDF_<SECTION>__<KEY> (LDF_SERVER__PORT, LDF_CATALOG__PUBLISHER__NAME; "
            "entries by id: LDF_FEEDS__GENT_REPLAY__INTERVAL=1m); LDF_HOST, LDF_PORT, LDF_BASE_URL, LDF_DATA_DIR "
            "and LDF_LOG_LEVEL are short forms."
        ),
    )
    p.add_argument("--config", "-c", default=os.environ.get("LDF_CONFIG", DEFAULT_CONFIG), metavar="FILE",
                   help=f"TOML config file describing datasets and feeds (default: $LDF_CONFIG or {DEFAULT_CONFIG})")
    p.add_argument("--host", help="address to listen on (default from config: 127.0.0.1; use 0.0.0.0 in a container)")
    p.add_argument("--port", type=int, help="TCP port to listen on (default from config: 8080)")
    p.add_argument("--base-url", metavar="URL",
                   help="public base URL every IRI is minted from, e.g. https://data.stad.gent "
                        "(default: http://HOST:PORT); must be what clients use, or they stop after one page")
    p.add_argument("--data-dir", metavar="DIR", help="directory of the durable event log (every member, site and horizon, so a restart loses "
                        "nothing); created if missing (default from config; none: memory only)")
    p.add_argument("--workers", type=_workers, metavar="N|auto",
                   help="serving processes on the same port: 1 (default from config), a number, or auto (one per CPU); "
                        "more than 1 needs a data directory (the others serve what they read from its log)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="logging verbosity (default from config: info)")
    p.add_argument("--check", action="store_true", help="validate the config file and exit (0 when valid)")
    p.add_argument("--version", action="version", version=f"ldf-server {__version__}")
    _add_dump_commands(p)
    return p


def _add_dump_commands(p: argparse.ArgumentParser) -> None:
    """``export`` and ``import``; without a subcommand the server runs, as before."""
    commands = p.add_subparsers(dest="command", metavar="{export,import}",
                                help="instead of serving: export a time range of a dataset, or import such a file")

    def common(sub: argparse.ArgumentParser) -> None:
        # SUPPRESS: given here or before the subcommand, either way (a default here would win).
        sub.add_argument("--config", "-c", default=argparse.SUPPRESS, metavar="FILE", help="TOML config file (as for serving)")
        sub.add_argument("--data-dir", default=argparse.SUPPRESS, metavar="DIR", help="the durable log to read or write (default from config)")
        sub.add_argument("--base-url", default=argparse.SUPPRESS, metavar="URL", help="public base URL the IRIs are minted from (default from config)")
        sub.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
        sub.add_argument("dataset", help="dataset id, e.g. parking")

    ex = commands.add_parser("export", help="write a time range of a dataset as gzipped N-Quads or TriG",
                             description="Write the members of [--from, --to) and every site description of a dataset, "
                                         "read from the durable log (no running server needed), as gzipped N-Quads or TriG.")
    common(ex)
    ex.add_argument("--from", dest="start", required=True, metavar="ISO", help="first instant (inclusive), e.g. 2026-03-31T00:00:00Z or 2026-03-31")
    ex.add_argument("--to", dest="end", required=True, metavar="ISO", help="end instant (exclusive), e.g. 2026-04-01")
    ex.add_argument("--format", choices=["nq", "trig"], help="syntax (default: from the output name, else nq)")
    ex.add_argument("--output", "-o", required=True, metavar="FILE.gz", help="file to write (gzipped)")
    im = commands.add_parser("import", help="load a file written by export into the durable log",
                             description="Load a gzipped (or plain) N-Quads or TriG dump into a dataset's durable log. "
                                         "Idempotent; refused while a server runs on the data directory.")
    common(im)
    im.add_argument("file", metavar="FILE.gz", help="the dump to load")
    im.add_argument("--format", choices=["nq", "trig"], help="syntax (default: from the file name)")


def _workers(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number nor auto") from None


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    overrides = {"host": args.host, "port": args.port, "base_url": args.base_url, "data_dir": args.data_dir,
                 "log_level": args.log_level, "workers": args.workers}
    try:
        config = load_config(args.config, overrides=overrides)
    except ConfigError as exc:
        print(f"ldf-server: invalid configuration: {exc}", file=sys.stderr)
        return 2
    if args.check:
        print(f"{args.config}: valid ({len(config.datasets)} datasets, {len(config.feeds)} feeds)")
        return 0
    if args.command:
        return _dump_command(args, config)
    logs.configure(config.server.log_level)
    if config.server.data_dir:
        try:
            Path(config.server.data_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(f"ldf-server: cannot create data directory {config.server.data_dir}: {exc}", file=sys.stderr)
            return 2
    return serve(config)


def serve(config) -> int:  # type: ignore[no-untyped-def]
    if config.server.worker_count > 1:
        from ldf_server.workers import serve_leader

        return serve_leader(config)
    from ldf_server.app import create_app
    from ldf_server.http import limits
    from ldf_server.http.state import STATE

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported platform
        uvloop = None
    app = create_app(config)
    state = app[STATE]
    state.on_fatal = lambda: os.kill(os.getpid(), signal.SIGTERM)  # a failed start-up stops the server (exit 1)
    logging.getLogger(__name__).info("serving %s on %s:%s", config.server.public_base, config.server.host, config.server.port)
    limits.run(  # web.run_app, with the [server] limits on every connection (see ldf_server/http/limits.py)
        app,
        config.server,
        host=config.server.host,
        port=config.server.port,
        access_log=logging.getLogger("aiohttp.access") if config.server.log_level == "debug" else None,
        shutdown_timeout=config.server.shutdown_timeout,  # SIGTERM: in-flight requests get this long
        loop=uvloop.new_event_loop() if uvloop else None,
    )
    return 1 if state.startup_error else 0


def _instant(text: str) -> int:
    """An ISO instant, or a bare day ``YYYY-MM-DD`` meaning its start (UTC)."""
    from ldf_server.timeutil import parse_instant

    return parse_instant(text + "T00:00:00Z" if len(text) == 10 else text)


def _dump_command(args: argparse.Namespace, config) -> int:  # type: ignore[no-untyped-def]
    import time

    from ldf_server import exports
    from ldf_server.rdf.dump import FORMATS
    from ldf_server.store.lock import LockedError
    from ldf_server.timeutil import InstantError, format_instant

    if not config.server.data_dir:
        print("ldf-server: no data directory: give --data-dir or set [server] data_dir", file=sys.stderr)
        return 2
    data_dir = Path(config.server.data_dir)
    started = time.monotonic()
    try:
        if args.command == "export":
            try:
                lo, hi = _instant(args.start), _instant(args.end)
            except InstantError as exc:
                print(f"ldf-server export: {exc}", file=sys.stderr)
                return 2
            if hi <= lo:
                print("ldf-server export: --to must be after --from", file=sys.stderr)
                return 2
            output = Path(args.output)
            fmt = args.format or ("trig" if ".trig" in output.name else "nq")
            result = exports.export(config, data_dir, args.dataset, lo, hi, FORMATS[fmt], output, progress=not args.no_progress)
            print(f"exported {result.members} members and {result.sites} sites ({result.triples} triples) of "
                  f"{args.dataset} from {format_instant(lo)} to {format_instant(hi)} to {output} "
                  f"({result.bytes} bytes) in {time.monotonic() - started:.1f}s", file=sys.stderr)
            return 0
        path = Path(args.file)
        r = exports.load(config, data_dir, args.dataset, path, media_type=FORMATS[args.format] if args.format else None,
                         progress=not args.no_progress)
        print(f"imported {path} into {data_dir / args.dataset}: {r.added} new members, "
              f"{r.duplicates + r.unchanged} already stored, {r.late} late (their pages are immutable), "
              f"{r.expired} past retention, {r.rejected_total} rejected in {time.monotonic() - started:.1f}s", file=sys.stderr)
        return 0
    except LockedError as exc:
        print(f"ldf-server {args.command}: {exc}", file=sys.stderr)
        return 1
    except exports.ExportError as exc:
        print(f"ldf-server {args.command}: {exc}", file=sys.stderr)
        return 1
