"""API keys of push sources: stored as SHA-256 digests, compared in constant time, never logged."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from dataclasses import dataclass, field
from typing import Mapping

from ldf_server.config import PushSourceConfig

log = logging.getLogger(__name__)


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()  # header bytes that are not UTF-8 hash as sent


@dataclass
class PushStatus:
    """What a push source sent: the counterpart of a feed's poll status, for metrics and readiness."""

    batches_ok: int = 0
    batches_refused: int = 0  # 422: invalid records, nothing stored
    members_added: int = 0
    records_rejected: int = 0
    rejected_reasons: dict[str, int] = field(default_factory=dict)  # short reason → count

    def reject(self, errors: list[dict]) -> None:  # type: ignore[type-arg]
        self.batches_refused += 1
        for error in errors:
            self.records_rejected += 1
            for text in error["errors"][:1]:  # the first problem of a record is its reason
                reason = text.split(":", 1)[0][:60]  # "site: 'x' is not known" → "site": bounded labels
                self.rejected_reasons[reason] = self.rejected_reasons.get(reason, 0) + 1

    def as_json(self) -> dict[str, object]:
        return {"batches_ok": self.batches_ok, "batches_refused": self.batches_refused,
                "members_added": self.members_added, "records_rejected": self.records_rejected,
                "rejected_reasons": dict(self.rejected_reasons)}


@dataclass(frozen=True, slots=True)
class PushSource:
    config: PushSourceConfig
    key_digest: bytes | None  # None: the key's environment variable is not set, so nobody can push
    status: PushStatus = field(default_factory=PushStatus)


def load_sources(configs: list[PushSourceConfig], env: Mapping[str, str] | None = None) -> dict[str, PushSource]:
    env = os.environ if env is None else env
    sources = {}
    for cfg in configs:
        if cfg.key_sha256:
            key_digest: bytes | None = bytes.fromhex(cfg.key_sha256)
        else:
            value = env.get(cfg.key_env or "")
            key_digest = digest(value) if value else None
            if key_digest is None:
                log.warning("push source %s: environment variable %s is not set; pushes will be refused", cfg.id, cfg.key_env)
        sources[cfg.id] = PushSource(cfg, key_digest)
    return sources


def identify(sources: Mapping[str, PushSource], presented: str) -> str | None:
    """Which source a key belongs to; every digest is compared, so timing reveals nothing."""
    presented_digest = digest(presented)
    found = None
    for source_id, source in sources.items():
        if source.key_digest is not None and hmac.compare_digest(presented_digest, source.key_digest):
            found = source_id
    return found


def presented_key(authorization: str | None, api_key: str | None) -> str | None:
    """The key from ``Authorization: Bearer …`` or ``X-API-Key``."""
    if api_key:
        return api_key.strip() or None
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None
