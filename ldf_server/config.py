"""Configuration: one TOML file, validated completely before anything starts.

Errors name the key and the problem (``feeds[1].interval: ...``). Environment variables
override any setting (``LDF_SERVER__PORT``; see ``ldf_server/config_env.py``); secrets
never live in the file, only the names of the environment variables holding them.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from ldf_server.config_env import OverrideError, annotate, apply_environment
from ldf_server.timeutil import parse_duration
from ldf_server.vocabularies import LICENCES

Duration = Annotated[float, BeforeValidator(parse_duration)]
Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")]
LanguageMap = Annotated[dict[Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]+)*$")], str], Field(min_length=1)]

MAX_WORKERS = 64
RESERVED_IDS = {"health", "metrics", "openapi", "static", "context", "tpf", "api", "assets"}


class ConfigError(Exception):
    """A configuration file that cannot be used; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    base_url: str | None = Field(default=None, pattern=r"^https?://[^/?#]+(/[^?#]*)?$")
    # Where the durable log lives; without one the store is in memory only (tests, demos).
    data_dir: str | None = None
    fsync: Literal["always", "interval", "never"] = "always"
    fsync_interval: Duration = 1.0
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    max_push_body: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)  # bytes; larger pushes get 413
    # Limits against hostile or broken clients (ldf_server/http/limits.py).
    max_request_line: int = Field(default=8190, ge=256, le=65536)  # bytes of the request target; longer: 414
    max_header_size: int = Field(default=8190, ge=256, le=65536)  # bytes of one header line; longer: 431
    max_headers: int = Field(default=128, ge=16, le=1024)  # header lines in a request; more: 431
    max_connections: int = Field(default=1000, ge=1, le=1_000_000)  # open connections; more: 503 and closed
    header_timeout: Annotated[Duration, Field(gt=0, le=3600)] = 10.0  # from a request's first byte to its last header: else 408, closed
    body_timeout: Annotated[Duration, Field(gt=0, le=3600)] = 30.0  # for a push body to arrive completely: else 408
    keepalive_timeout: Annotated[Duration, Field(ge=0, le=86400)] = 75.0  # an idle connection is closed after this
    # On SIGTERM: how long in-flight requests may take to finish before they are cancelled.
    shutdown_timeout: Annotated[Duration, Field(ge=0, le=600)] = 10.0
    # Live push (``/{ds}/events``): a comment line this often keeps proxies from closing an idle
    # stream; this many new members per dataset are kept for clients resuming with Last-Event-ID.
    sse_heartbeat: Annotated[Duration, Field(gt=0, le=3600)] = 15.0
    sse_buffer: int = Field(default=1000, ge=1, le=1_000_000)
    # The dashboard's map background: a tile URL template such as
    # "https://tile.openstreetmap.org/{z}/{x}/{y}.png"; none by default (no request leaves the server's origin).
    map_tiles: str | None = Field(default=None, pattern=r"^https?://[^/?#\s'\";,]+/[^\s'\";,]*$")
    # Serving processes: 1 (one process does everything), a number, or "auto" (one per CPU). With
    # more than one, this process leads (feeds, pushes, the log) and starts followers that serve
    # from the durable log on the same port (SO_REUSEPORT); see ldf_server/workers.py.
    workers: int | Literal["auto"] = 1

    @field_validator("workers")
    @classmethod
    def _workers_in_range(cls, workers: int | str) -> int | str:
        if isinstance(workers, int) and not 1 <= workers <= MAX_WORKERS:
            raise ValueError(f"must be between 1 and {MAX_WORKERS}, or \"auto\" (one process per CPU)")
        return workers

    @model_validator(mode="after")
    def _followers_read_the_log(self) -> "ServerConfig":
        if self.worker_count > 1 and not self.data_dir:
            raise ValueError(
                f"workers = {self.workers} needs a data_dir: the other processes serve what they read from the "
                "durable log; set [server] data_dir (or --data-dir / LDF_DATA_DIR), or use workers = 1"
            )
        if self.worker_count > 1 and self.port == 0 and not self.base_url:
            raise ValueError(
                f"workers = {self.workers} with port = 0 needs a base_url: every process must mint the same IRIs, "
                "and a port the system picks is known only after the first process has bound it"
            )
        return self

    @property
    def worker_count(self) -> int:
        """How many processes serve: ``workers``, with ``"auto"`` as the CPUs this process may use."""
        if self.workers == "auto":
            return max(1, min(MAX_WORKERS, usable_cpus()))
        return self.workers

    @property
    def public_base(self) -> str:
        """Every IRI is minted from this (no trailing slash)."""
        if self.base_url:
            return self.base_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"


def usable_cpus(cgroup: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The CPUs this process may use: its affinity, and a container's CPU quota (cgroup v2
    ``cpu.max``, e.g. ``docker run --cpus=2`` on a larger host), whichever is smaller."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = cgroup.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota to honour
    return cpus


class Publisher(_Strict):
    name: str
    iri: str = Field(pattern=r"^https?://")


class DatasetConfig(_Strict):
    id: Identifier
    pilot: Literal["parking", "crowdedness", "accessibility"]
    title: LanguageMap
    description: LanguageMap
    licence: Literal["cc0", "modellicentie-gratis-hergebruik"] = "cc0"
    publisher: Publisher | None = None
    contact: Contact | None = None
    keywords: dict[str, list[str]] = Field(default_factory=dict)
    window: Duration = 300.0
    grace: Duration = 60.0
    retention: Duration = 7 * 86400.0

    @field_validator("window")
    @classmethod
    def _windows_tile_a_day(cls, window: float) -> float:
        if window < 1 or window != int(window) or 86400 % int(window):
            raise ValueError("must be a whole number of seconds that divides a day (e.g. 1m, 5m, 15m, 1h)")
        return window

    @field_validator("retention")
    @classmethod
    def _whole_days(cls, retention: float) -> float:
        if retention < 86400:
            raise ValueError("must be at least 1d (pages are grouped per UTC day and expire a day at a time)")
        return retention

    @property
    def licence_iri(self) -> str:
        return LICENCES[self.licence]


class FeedConfig(_Strict):
    id: Identifier
    adapter: str
    dataset: Identifier
    enabled: bool = True
    interval: Annotated[Duration, Field(ge=1)] = 30.0
    timeout: Annotated[Duration, Field(gt=0)] = 10.0
    retries: int = Field(default=3, ge=0, le=10)
    backoff: Duration = 1.0
    options: dict[str, Any] = Field(default_factory=dict)


class Contact(_Strict):
    """Who answers questions about the data (DCAT-AP's contact point)."""

    name: str
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class CatalogConfig(_Strict):
    title: LanguageMap = {"en": "Real-time open city data", "nl": "Realtime open stadsdata"}
    description: LanguageMap = {
        "en": "Linked Open Data published close to the source, as cacheable Linked Data Fragments.",
        "nl": "Linked Open Data, dicht bij de bron gepubliceerd als cachebare Linked Data Fragments.",
    }
    publisher: Publisher | None = None
    contact: Contact | None = None


class PushSite(_Strict):
    """A site (e.g. a people counter's zone) described in the config for a push source."""

    key: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*(/[a-z0-9][a-z0-9-]*)+$")]
    label: str
    description: str | None = None
    iri: str | None = Field(default=None, pattern=r"^https?://")
    capacity: int | None = Field(default=None, ge=0)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class PushSourceConfig(_Strict):
    """A sensor or system allowed to push observations into one dataset with its own API key.

    The key itself never appears here: either the name of the environment variable that
    holds it (``key_env``) or its SHA-256 digest in hex (``key_sha256``).
    """

    id: Identifier
    dataset: Identifier
    key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    key_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    sites: list[PushSite] = Field(default_factory=list)
    max_records: int = Field(default=5000, ge=1, le=100_000)

    @model_validator(mode="after")
    def _one_key(self) -> "PushSourceConfig":
        if (self.key_env is None) == (self.key_sha256 is None):
            raise ValueError("give exactly one of key_env (an environment variable name) or key_sha256")
        return self


class Config(_Strict):
    server: ServerConfig = ServerConfig()
    catalog: CatalogConfig = CatalogConfig()
    datasets: list[DatasetConfig] = Field(min_length=1)
    feeds: list[FeedConfig] = Field(default_factory=list)
    push: list[PushSourceConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> "Config":
        ids = [d.id for d in self.datasets]
        reserved = sorted(set(ids) & RESERVED_IDS)
        if reserved:
            raise ValueError(f"dataset ids {reserved} are reserved for server routes")
        if len(set(ids)) != len(ids):
            raise ValueError(f"dataset ids must be unique: {ids}")
        feed_ids = [f.id for f in self.feeds]
        if len(set(feed_ids)) != len(feed_ids):
            raise ValueError(f"feed ids must be unique: {feed_ids}")
        for i, feed in enumerate(self.feeds):
            if feed.dataset not in ids:
                raise ValueError(f"feeds[{i}].dataset: no dataset with id {feed.dataset!r} (known: {', '.join(ids)})")
        push_ids = [p.id for p in self.push]
        if len(set(push_ids)) != len(push_ids):
            raise ValueError(f"push source ids must be unique: {push_ids}")
        for i, source in enumerate(self.push):
            if source.dataset not in ids:
                raise ValueError(f"push[{i}].dataset: no dataset with id {source.dataset!r} (known: {', '.join(ids)})")
            pilot = self.dataset(source.dataset).pilot
            if pilot not in ("parking", "crowdedness"):
                raise ValueError(f"push[{i}].dataset: datasets of the {pilot} pilot take no pushes (they are imported)")
        return self

    def dataset(self, dataset_id: str) -> DatasetConfig:
        return next(d for d in self.datasets if d.id == dataset_id)


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not re.match(r"^function-|^function-after", str(part)):
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def format_validation_error(exc: ValidationError, origins: Mapping[str, str] | None = None) -> str:
    lines = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(annotate(f"{_where(tuple(err['loc']))}: {msg}", origins or {}))
    return "\n".join(lines)


def load_config(
    path: str | Path,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Read, merge (file < environment < command line) and validate a config file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return config_from_dict(raw, source=str(path), env=os.environ if env is None else env, overrides=overrides)


def config_from_dict(
    raw: dict[str, Any],
    *,
    source: str = "<config>",
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Validate a config already parsed from TOML (tests build these directly)."""
    from ldf_server.adapters.registry import options_model, validate_options

    try:  # every setting can come from LDF_<SECTION>__<KEY> (ldf_server/config_env.py)
        raw, origins = apply_environment(raw, env or {}, model=Config, options_model=options_model)
    except OverrideError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    server = dict(raw.get("server") or {})
    server.update({k: v for k, v in (overrides or {}).items() if v is not None})
    raw["server"] = server
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}:\n{format_validation_error(exc, origins)}") from None
    problems = []
    for i, feed in enumerate(config.feeds):
        problems.extend(annotate(f"feeds[{i}].{p}", origins) for p in validate_options(feed))
    if problems:
        raise ConfigError(f"{source}:\n" + "\n".join(problems))
    return config
