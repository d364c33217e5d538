"""Readiness: what ``/health/ready`` reports, and what takes the server out of a load balancer.

=========  ====  ==============================================================================
status     HTTP  when
=========  ====  ==============================================================================
ok         200   the store is loaded, every check passes and every feed had a recent good poll
degraded   200   as ok, but one or more feeds are stale (no good poll within three intervals).
                 The server still serves the last good data, every site's state carries its own
                 observation time, and taking it out of the load balancer would serve nothing
                 at all: a stale upstream is reported, never fatal
starting   503   the store is not loaded yet (replaying the durable log, backfilling)
failing    503   a critical check failed: the data directory is missing or not writable, or a
                 registered component (the durable log registers ``log``) says it cannot work;
                 such a server would refuse pushes and lose what it polls, so it leaves the
                 load balancer until fixed
=========  ====  ==============================================================================

``checks`` has one entry per component, ``{"ok": bool, "critical": bool, "detail": str}``:
``store``; ``data_dir`` (when one is configured); ``feed:<id>`` per feed (``critical: false``:
stale only degrades); and one per registered check. A component registers a check with
``state.health_checks["name"] = fn`` where ``fn()`` returns ``(healthy, reason)``; a check
that raises counts as failed. Checks run on every probe, so they must be cheap (no I/O
beyond a ``stat``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ldf_server.http.state import ServerState
from ldf_server.timeutil import format_instant

log = logging.getLogger(__name__)


def writable_directory(path: str) -> tuple[bool, str]:
    """Whether the durable log can create and append files in ``path``."""
    p = Path(path)
    if not p.is_dir():
        return False, f"data directory {path} does not exist"
    if not os.access(p, os.W_OK | os.X_OK):
        return False, f"data directory {path} is not writable"
    return True, f"data directory {path} is writable"


def _entry(ok: bool, detail: str, *, critical: bool = True) -> dict[str, Any]:
    return {"ok": ok, "critical": critical, "detail": detail}


def readiness(state: ServerState) -> tuple[int, dict[str, Any]]:
    """The HTTP status and body of ``/health/ready`` (see the module docstring)."""
    now = state.clock()
    members = {ds: s.store.member_count for ds, s in state.streams.items()}
    checks: dict[str, dict[str, Any]] = {
        "store": _entry(state.ready, f"{sum(members.values())} members in {len(members)} datasets" if state.ready
                        else "loading (durable log replay, backfill)"),
    }
    if state.config.server.data_dir:
        checks["data_dir"] = _entry(*writable_directory(state.config.server.data_dir))
    feeds = [p.status.as_json(now) for p in state.pollers]
    for feed in feeds:
        if not feed["stale"]:
            detail = f"last good poll {feed['last_success']}"
        else:
            since = f"last good poll {feed['last_success']}" if feed["last_success"] else "no good poll yet"
            detail = f"stale: {since}" + (f"; last error: {feed['last_error']}" if feed["last_error"] else "")
        checks[f"feed:{feed['feed']}"] = _entry(not feed["stale"], detail, critical=False)
    for name, check in list(state.health_checks.items()):  # the start-up thread may be adding checks
        try:
            ok, reason = check()
        except Exception as exc:  # a broken check is a failed check, never a 500
            log.exception("health check %s raised", name)
            ok, reason = False, f"the check raised {type(exc).__name__}: {exc}"
        checks[name] = _entry(bool(ok), reason)

    if state.startup_error is not None:
        checks["startup"] = _entry(False, f"start-up failed: {state.startup_error}")
    failing = [name for name, c in checks.items() if c["critical"] and not c["ok"] and name != "store"]
    stale = [f["feed"] for f in feeds if f["stale"]]
    if state.startup_error is not None:
        status = "failing"
    elif not state.ready:
        status = "starting"
    elif failing:
        status = "failing"
    else:
        status = "degraded" if stale else "ok"
    not_ok = ([] if state.ready or state.startup_error else ["store"]) + failing + [f"feed:{f}" for f in stale]
    body = {
        "status": status,
        "reasons": [f"{name}: {checks[name]['detail']}" for name in not_ok],  # empty when ok
        "checks": checks,
        "stale_feeds": stale,
        "feeds": feeds,
        "push": {source_id: source.status.as_json() for source_id, source in state.push_sources.items()},
        "datasets": {
            ds: {"members": members[ds], "sites": len(s.store.sites),
                 "updated": format_instant(int(s.store.modified * 1000))}
            for ds, s in state.streams.items()
        },
    }
    if state.worker_info is not None:  # one of several processes: which one, and (a follower) how far behind
        body["worker"] = state.worker_info()
    return (200 if status in ("ok", "degraded") else 503), body
