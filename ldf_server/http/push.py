"""``POST /{dataset}/push/{source}``: sensors push observations; answered once they are stored.

Batches are all or nothing: if any record is invalid, none is stored and the 422 answer
lists the errors of every bad record by index, so a sensor can fix and resend the whole
batch. Resending records already stored is harmless (idempotent on site, series and time).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from ldf_server.adapters.push import PushFormatError, parse_records, records_of
from ldf_server.fragments.members import site_iri
from ldf_server.fragments.stream import StreamFragments
from ldf_server.http.auth import identify, presented_key
from ldf_server.http.handlers import dataset_of
from ldf_server.http.problems import Problem
from ldf_server.http.state import STATE, ServerState
from ldf_server.pilots import PILOTS
from ldf_server.records import Batch, common_problem
from ldf_server.store.ingest import ingest
from ldf_server.store.log import LogError

log = logging.getLogger(__name__)

JSON_TYPES = ("application/json", "application/ld+json")


async def push(request: web.Request) -> web.StreamResponse:
    state, fragments = dataset_of(request)
    source_id = request.match_info["source"]
    source = state.push_sources.get(source_id)
    if source is None or source.config.dataset != fragments.ds:
        raise Problem(404, f"dataset {fragments.ds!r} has no push source {source_id!r}", title="Unknown push source")
    _authorize(request, state, source_id)
    content_type = request.content_type.lower()
    if content_type not in JSON_TYPES:
        raise Problem(415, f"send the records as {' or '.join(JSON_TYPES)}, not {content_type or 'no content type'}",
                      title="Unsupported Media Type", headers={"Accept-Post": ", ".join(JSON_TYPES)})
    limit = state.config.server.max_push_body
    if request.content_length is not None and request.content_length > limit:
        raise Problem(413, f"the body is larger than the limit of {limit} bytes; split the batch", title="Content Too Large")
    if state.forward_push is not None:
        # A follower process: the leader stores it (ldf_server/workers.py). The checks above come
        # first, so a follower refuses what the leader would, and reads no body without a key.
        return await state.forward_push(request)
    body = await read_body(request, limit, state.config.server.body_timeout)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, f"the body is not valid JSON: {exc}", title="Malformed JSON") from None
    _refuse_duplicate_keys(body)
    json_ld = content_type == "application/ld+json"
    try:
        if json_ld:
            # pyld's compaction is pure Python (seconds for a body near the size limit): in a
            # thread, the event loop keeps serving other clients meanwhile.
            records = await asyncio.get_running_loop().run_in_executor(
                None, functools.partial(records_of, doc, json_ld=True, own_context_url=state.urls.context())
            )
        else:
            records = records_of(doc, json_ld=False, own_context_url=state.urls.context())
    except PushFormatError as exc:
        raise Problem(400, str(exc), title="Malformed records") from None
    if len(records) > source.config.max_records:
        raise Problem(413, f"at most {source.config.max_records} records per request", title="Content Too Large")
    members, errors = parse_records(records, pilot=fragments.pilot, resolve_site=_resolver(fragments, source_id, state))
    errors += _store_problems(fragments, members, errors)
    if errors:
        source.status.reject(errors)
        log.warning("push source %s: refused a batch of %d records, %d invalid: %s", source_id, len(records),
                    len(errors), source.status.rejected_reasons)
        raise Problem(422, f"{len(errors)} of {len(records)} records are invalid; nothing was stored",
                      title="Invalid records", errors=sorted(errors, key=lambda e: e["index"]))
    try:
        result = ingest(fragments.store, Batch(members=members), source=f"push:{source_id}")
    except LogError as exc:
        raise Problem(503, f"the records could not be stored durably ({exc.strerror or exc}); nothing was stored, retry later",
                      title="Storage unavailable", headers={"Retry-After": "30"}) from None
    source.status.batches_ok += 1
    source.status.members_added += result.added
    return web.json_response(
        {"accepted": result.added, "duplicates": result.duplicates, "records": len(records)},
        headers={"Cache-Control": "no-store"},
    )


async def read_body(request: web.Request, limit: int, timeout: float) -> bytes:
    """The whole body (``read(n)`` returns what has arrived so far), at most ``limit`` bytes, within ``timeout``."""
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            while size <= limit:
                chunk = await request.content.read(limit + 1 - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
    except TimeoutError:
        raise Problem(408, f"the body did not arrive within {timeout:g} s", title="Request Timeout") from None
    except RequestPayloadError as exc:
        raise Problem(400, f"the body could not be read: {exc}", title="Malformed body") from None
    except ConnectionError:  # the client went away mid-body: nobody reads this answer, but it is no server error
        raise Problem(400, "the connection closed before the body was complete", title="Incomplete body") from None
    if size > limit:
        raise Problem(413, f"the body is larger than the limit of {limit} bytes; split the batch", title="Content Too Large")
    return b"".join(chunks)


def _refuse_duplicate_keys(body: bytes) -> None:
    """I-JSON (RFC 7493): an object naming a member twice is refused, not read as its last value."""
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(items)
        if len(obj) != len(items) and not duplicates:
            seen: set[str] = set()
            duplicates.append(next(k for k, _ in items if k in seen or seen.add(k)))  # type: ignore[func-returns-value]
        return obj

    try:
        json.loads(body, object_pairs_hook=pairs)
    except RecursionError:
        raise Problem(400, "the body nests arrays or objects too deeply", title="Malformed JSON") from None
    except ValueError as exc:
        raise Problem(400, f"the body is not valid JSON: {exc}", title="Malformed JSON") from None
    if duplicates:
        raise Problem(400, f"an object names the member {duplicates[0][:100]!r} more than once", title="Malformed JSON")


def _authorize(request: web.Request, state: ServerState, source_id: str) -> None:
    key = presented_key(request.headers.get("Authorization"), request.headers.get("X-API-Key"))
    challenge = {"WWW-Authenticate": 'Bearer realm="ldf-server push"'}
    if key is None:
        raise Problem(401, "send this source's API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                      title="Unauthorized", headers=challenge)
    owner = identify(state.push_sources, key)
    if owner is None:
        raise Problem(401, "the API key is not valid", title="Unauthorized", headers=challenge)
    if owner != source_id:
        raise Problem(403, f"this API key belongs to another source and may not push as {source_id!r}", title="Forbidden")


def _resolver(fragments: StreamFragments, source_id: str, state: ServerState):  # type: ignore[no-untyped-def]
    """Map a site key or IRI to a key of a site this source may push for."""
    own = {s.key for s in state.push_sources[source_id].config.sites}
    by_iri = {site_iri(fragments.urls, fragments.ds, fragments.store.sites.get(k), k): k for k in own}

    def resolve(ref: str) -> str | None:
        if ref in own:
            return ref
        return by_iri.get(ref)

    return resolve


def _store_problems(fragments: StreamFragments, members: list, earlier: list[dict]) -> list[dict]:  # type: ignore[type-arg]
    """Records that are well formed but that the store would refuse (index = position among valid records)."""
    bad_indexes = {e["index"] for e in earlier}
    valid_indexes = [i for i in range(len(members) + len(bad_indexes)) if i not in bad_indexes]
    store, pilot = fragments.store, PILOTS[fragments.store.pilot]
    now = int(store.clock() * 1000)
    problems = []
    for index, member in zip(valid_indexes, members):
        site = store.sites.get(member.site)
        if store.contains(member):
            continue  # a resend of what is stored: harmless, counted as a duplicate, even in a sealed page
        reason = common_problem(member, site, now) or (pilot.check(member, site) if site else None)
        if reason is None and member.time < store.retained_from:
            reason = "older than the retention window"
        if reason is None and member.time < store.sealed_before:
            reason = "too late: the page for this time is already published as immutable"
        if reason:
            problems.append({"index": index, "errors": [reason]})
    return problems

