"""Command line: ``ldf-server --config config/default.toml``."""

from __future__ import annotations

import argparse
import logging
import os
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
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="logging verbosity (default from config: info)")
    p.add_argument("--check", action="store_true", help="validate the config file and exit (0 when valid)")
    p.add_argument("--version", action="version", version=f"ldf-server {__version__}")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    overrides = {"host": args.host, "port": args.port, "base_url": args.base_url, "data_dir": args.data_dir,
                 "log_level": args.log_level}
    try:
        config = load_config(args.config, overrides=overrides)
    except ConfigError as exc:
        print(f"ldf-server: invalid configuration: {exc}", file=sys.stderr)
        return 2
    if args.check:
        print(f"{args.config}: valid ({len(config.datasets)} datasets, {len(config.feeds)} feeds)")
        return 0
    logs.configure(config.server.log_level)
    if config.server.data_dir:
        try:
            Path(config.server.data_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(f"ldf-server: cannot create data directory {config.server.data_dir}: {exc}", file=sys.stderr)
            return 2
    return serve(config)


def serve(config) -> int:  # type: ignore[no-untyped-def]
    from ldf_server.app import create_app
    from ldf_server.http import limits

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported platform
        uvloop = None
    app = create_app(config)
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
    return 0
