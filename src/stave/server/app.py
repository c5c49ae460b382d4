"""The stave HTTP server: a thin personality over the library (FastAPI; OpenAPI at /openapi.json).

Requests are parsed here, the library does the work, and errors are mapped in one place
(:mod:`stave.server.problems`): RFC 9457 problem+json with a Nostr-style reason prefix.
Blocking library calls run in FastAPI's thread pool; ingest goes through the group-commit
:class:`~stave.server.ingest.Ingestor`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import anyio
import anyio.to_thread
import orjson
from fastapi import FastAPI, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from starlette.background import BackgroundTask

from stave import __version__
from stave.anchor import open_ledger
from stave.config import Settings
from stave.db import open_database
from stave.errors import BlobNotFound, JSONError, ProofError, StorageError, VerificationError
from stave.event import EventType, admit, loads, parse
from stave.event.strictjson import JsonLimits
from stave.log import tiles
from stave.log.anchoring import Anchoring
from stave.log.sequencer import Log
from stave.log.service import LogService, load_or_create_signer
from stave.server import graph_routes, metrics
from stave.server.access import Access
from stave.server.admin import RelayRegistry, install_admin_routes
from stave.server.ingest import Ingested, Ingestor
from stave.server.limits import install_request_limits, read_body
from stave.server.logs import install_request_ids
from stave.server.problems import Problem, install_problem_handlers
from stave.store import ReplicatedStore

__all__ = ["ServerState", "create_app"]

_IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass
class ServerState:
    settings: Settings
    service: LogService
    ingestor: Ingestor
    access: Access
    started_at: float = field(default_factory=time.time)
    checkpoint_size: int = 0  # of the latest published checkpoint, kept by the checkpoint loop
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def log(self) -> Log:
        return self.service.log

    @property
    def store(self) -> ReplicatedStore:
        return self.service.store


def open_state(settings: Settings) -> ServerState:
    database = open_database(settings.database_url)
    store = ReplicatedStore.from_urls(
        settings.durable_urls,
        database,
        cache=settings.store.cache,
        archive=settings.archive_url,
        min_redundancy=settings.store.min_redundancy,
        timeout=settings.store.timeout,
        temp_dir=settings.data_path,
    )
    log = Log(database, load_or_create_signer(settings.log_key_path, settings.log.origin))
    anchoring = Anchoring(log, [open_ledger(url) for url in settings.ledger_urls])
    service = LogService(log, store, anchoring)
    return ServerState(
        settings,
        service,
        Ingestor(
            store,
            log,
            max_batch=settings.server.max_batch,
            commit_delay=settings.server.commit_delay,
            commit_siblings=settings.server.commit_siblings,
        ),
        Access.open(settings),
    )


def create_app(settings: Settings, *, state: ServerState | None = None) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        current: ServerState = state if state is not None else await run_in_threadpool(open_state, settings)
        app.state.stave = current
        app.state.relays = RelayRegistry(current.log.database)
        current.access.relay_approved = app.state.relays.approved
        current.tasks.append(asyncio.create_task(_checkpoint_loop(current)))
        current.tasks.append(asyncio.create_task(_anchor_loop(current)))
        current.tasks.append(asyncio.create_task(graph_routes.follow(app, current)))
        try:
            yield
        finally:
            for task in current.tasks:
                task.cancel()
            await run_in_threadpool(current.ingestor.close)
            await run_in_threadpool(current.service.close)

    app = FastAPI(
        title="stave",
        version=__version__,
        summary="A verifiable event store for music metadata.",
        lifespan=lifespan,
        openapi_tags=[
            {"name": "events", "description": "Submit and read signed events."},
            {"name": "log", "description": "The Merkle log: checkpoints, tiles, proofs (C2SP tlog-tiles)."},
            {"name": "media", "description": "Content-addressed media blobs."},
            {"name": "operations", "description": "Health, metrics and limits."},
            {"name": "auth", "description": "Proof of work for a credential; writes carry it and a request signature."},
            {
                "name": "admin",
                "description": "Label configurations, relays, store and anchoring views (admin credential).",
            },
        ],
    )
    install_problem_handlers(app)
    metrics.install(app)
    install_request_limits(app)
    install_request_ids(app)
    install_admin_routes(app)
    app.include_router(graph_routes.router)
    _routes(app, settings)
    return app


async def _checkpoint_loop(state: ServerState) -> None:
    """Publish a checkpoint every ``checkpoint_interval`` seconds or ``checkpoint_every`` events."""
    settings = state.settings.log
    last_published = 0.0
    while True:
        await asyncio.sleep(min(0.2, settings.checkpoint_interval))
        with contextlib.suppress(Exception):  # a database hiccup: the next round retries
            latest = await run_in_threadpool(state.log.latest_checkpoint)
            size = await run_in_threadpool(state.log.size)
            behind = size - (latest.size if latest else -1)
            due = time.monotonic() - last_published >= settings.checkpoint_interval
            if behind > 0 and (due or behind >= settings.checkpoint_every):
                latest = await run_in_threadpool(state.log.publish_checkpoint)
                last_published = time.monotonic()
            state.checkpoint_size = latest.size if latest else 0


async def _anchor_loop(state: ServerState) -> None:
    while True:
        await asyncio.sleep(state.settings.anchor.interval)
        with contextlib.suppress(Exception):  # Anchoring logs every failure itself
            await run_in_threadpool(state.service.anchoring.run_once)


def _routes(app: FastAPI, settings: Settings) -> None:
    policy = settings.event.policy()
    # Batches admitted at once: one per core. Signature checks are CPU work; more threads than
    # cores only queue for the GIL, and starve the group commit's threads of it (a convoy).
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    admission_slots = anyio.CapacityLimiter(cores)

    def _json_content_type(request: Request, allowed: tuple[str, ...] = ("application/json",)) -> None:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in allowed:
            raise Problem(415, "invalid", f"content type must be {' or '.join(allowed)}, got {kind or 'none'!r}")

    def _admit(data: bytes, where: str = "") -> Any:
        try:
            return admit(data, policy, now=int(time.time()))
        except VerificationError as exc:
            # Malformed JSON is a bad request; a well-formed event that breaks a rule is unprocessable.
            raise Problem(400 if isinstance(exc, JSONError) else 422, "invalid", f"{where}{exc}") from None

    # A batch's authorisation and admission run on a worker thread: a hundred signature checks
    # would hold the event loop for milliseconds, and they release the GIL, so they use the second
    # core while the loop serves other requests.
    def _authorized_event(request: Request, data: bytes) -> Any:
        app.state.stave.access.authorize(request, data)
        return _admit(data)

    def _authorized_batch(request: Request, data: bytes) -> tuple[list[tuple[int, Any]], list[dict[str, Any]]]:
        app.state.stave.access.authorize(request, data)
        lines = _split_batch(data, policy.limits, settings.server.max_batch)
        if not lines:
            raise Problem(400, "invalid", "batch: no events")
        admitted: list[tuple[int, Any]] = []
        answers: list[dict[str, Any]] = [{} for _ in lines]
        now = int(time.time())
        for index, line in enumerate(lines):
            try:
                admitted.append((index, admit(line, policy, now=now)))
            except VerificationError as exc:
                answers[index] = {"ok": False, "reason": f"invalid: {exc}"}
        return admitted, answers

    async def _ingest(events: list[Any]) -> list[Ingested | Exception]:
        state = app.state.stave
        # Most events have no parents: skip the thread hop for them.
        missing = await run_in_threadpool(_missing_parents, state.log, events) if any(e.parents for e in events) else []
        if missing:
            raise Problem(422, "invalid", f"$.parents: unknown parent events {', '.join(missing[:5])}")
        try:
            return list(await asyncio.wrap_future(state.ingestor.submit(events)))
        except StorageError as exc:  # the whole group commit failed: every event of it did
            return [exc] * len(events)

    @app.post("/auth/challenge", tags=["auth"], summary="A single-use proof-of-work challenge")
    async def auth_challenge(request: Request) -> Response:
        address = request.client.host if request.client else "unknown"
        return JSONResponse(app.state.stave.access.challenge(address))

    @app.post("/auth/credential", tags=["auth"], summary="Exchange a solved challenge for an app credential")
    async def auth_credential(request: Request) -> Response:
        _json_content_type(request)
        try:  # strict, like events: a duplicate "counter" must not mean one thing here and another elsewhere
            body = loads(await read_body(request, 4096), JsonLimits(max_bytes=4096, max_depth=4))
        except JSONError as exc:
            raise Problem(400, "invalid", f"not strict JSON: {exc}") from None
        address = request.client.host if request.client else "unknown"
        return JSONResponse(app.state.stave.access.credential(address, body), status_code=201)

    @app.post("/events", tags=["events"], status_code=201, summary="Submit one signed event")
    async def post_event(request: Request) -> Response:
        _json_content_type(request)
        data = await read_body(request, policy.limits.max_bytes)
        event = _authorized_event(request, data)  # inline: one event's checks cost about a thread hop
        [result] = await _ingest([event])
        if isinstance(result, Exception):
            raise result
        metrics.EVENTS.labels(event.type.name, "new" if result.new else "duplicate").inc()
        return _ingested_response(app.state.stave, result)

    @app.post("/events:batch", tags=["events"], summary="Submit many signed events (JSON Lines or an array)")
    async def post_batch(request: Request) -> Response:
        _json_content_type(request, ("application/json", "application/x-ndjson", "application/jsonl"))
        state = app.state.stave
        data = await read_body(request, settings.server.max_batch_bytes)
        admitted, answers = await anyio.to_thread.run_sync(_authorized_batch, request, data, limiter=admission_slots)
        results = await _ingest([event for _, event in admitted]) if admitted else []
        checkpoint_size = state.checkpoint_size
        for (index, event), result in zip(admitted, results, strict=True):
            if isinstance(result, Exception):
                answers[index] = {"ok": False, "id": event.id, "reason": f"error: {result}"}
            else:
                metrics.EVENTS.labels(event.type.name, "new" if result.new else "duplicate").inc()
                answers[index] = {
                    "ok": True,
                    "id": result.event_id,
                    "seq": result.seq,
                    "duplicate": not result.new,
                    "stored": result.stored,
                    "checkpoint_size": checkpoint_size,
                }
        status = 200 if all(a["ok"] for a in answers) else 207
        return JSONResponse({"results": answers}, status_code=status)

    @app.get("/events/{event_id}", tags=["events"], summary="A signed event, verified, by id")
    async def get_event(event_id: str, request: Request) -> Response:
        state = app.state.stave
        _check_id(event_id)
        if request.headers.get("if-none-match") == f'"{event_id}"':
            return Response(status_code=304, headers={"ETag": f'"{event_id}"', "Cache-Control": _IMMUTABLE})
        if await run_in_threadpool(state.log.lookup, event_id) is None:
            raise Problem(404, "not-found", f"event {event_id} is not in this log")
        data = await run_in_threadpool(state.store.get_event, event_id)
        return Response(
            data, media_type="application/json", headers={"ETag": f'"{event_id}"', "Cache-Control": _IMMUTABLE}
        )

    @app.get("/events", tags=["events"], summary="Events in log order, after a cursor")
    async def list_events(
        after_seq: Annotated[int, Query(ge=-1, le=2**63 - 1)] = -1,  # a sequence number is a SQL BIGINT
        type: Annotated[str | None, Query(description="Only this event type.")] = None,
        author: Annotated[str | None, Query(description="Only this author's public key.")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Response:
        state = app.state.stave
        if type is not None and type not in EventType.__members__:
            raise Problem(400, "invalid", f"type: unknown event type {type!r}")
        entries = await run_in_threadpool(
            lambda: state.log.entries(after_seq=after_seq, limit=limit, event_type=type, author=author)
        )
        items = [
            {"seq": e.seq, "id": e.event_id, "type": e.event_type, "author": e.author, "created_at": e.created_at}
            for e in entries
        ]
        return JSONResponse({"events": items, "next_after_seq": items[-1]["seq"] if items else after_seq})

    @app.get("/events/{event_id}/proof", tags=["log"], summary="The proof bundle of an event")
    async def get_proof(event_id: str) -> Response:
        state = app.state.stave
        _check_id(event_id)
        try:
            bundle = await run_in_threadpool(state.service.bundle, event_id)
        except BlobNotFound:
            raise Problem(404, "not-found", f"event {event_id} is not in this log") from None
        except ProofError as exc:
            if "no published checkpoint" in str(exc):
                return JSONResponse(
                    {"status": "pending", "detail": str(exc)},
                    status_code=202,
                    headers={"Retry-After": str(max(1, round(settings.log.checkpoint_interval)))},
                )
            raise
        return Response(orjson.dumps(bundle), media_type="application/json")

    # --- the log as C2SP tlog-tiles ------------------------------------------------------------

    @app.get("/log/checkpoint", tags=["log"], response_class=PlainTextResponse)
    async def log_checkpoint() -> Response:
        state = app.state.stave
        latest = await run_in_threadpool(state.log.latest_checkpoint)
        if latest is None:
            latest = await run_in_threadpool(state.log.publish_checkpoint)
        return PlainTextResponse(latest.note, headers={"Cache-Control": "no-cache"})

    @app.get("/log/vkey", tags=["log"], response_class=PlainTextResponse)
    async def log_vkey() -> Response:
        return PlainTextResponse(app.state.stave.log.vkey() + "\n")

    @app.get("/log/tile/{path:path}", tags=["log"], summary="Tiles and entry bundles (C2SP tlog-tiles)")
    async def log_tile(path: str) -> Response:
        state = app.state.stave
        try:
            if path.startswith("entries/"):
                index, width = tiles.parse_entries_path(f"tile/{path}")
                data = await run_in_threadpool(state.log.entry_bundle, index, width)
            else:
                level, index, width = tiles.parse_tile_path(f"tile/{path}")
                data = await run_in_threadpool(state.log.tile, level, index, width)
        except ProofError as exc:
            raise Problem(404, "not-found", str(exc)) from None
        except VerificationError as exc:
            raise Problem(400, "invalid", f"tile path: {exc}") from None
        # Full tiles never change; partial ones are replaced by wider ones as the log grows.
        cache = _IMMUTABLE if ".p/" not in path else "no-cache"
        return Response(data, media_type="application/octet-stream", headers={"Cache-Control": cache})

    # --- media -----------------------------------------------------------------------------

    @app.put("/media", tags=["media"], status_code=201, summary="Upload a media blob (streamed)")
    async def put_media(request: Request) -> Response:
        state = app.state.stave
        reader = _StreamReader(request, settings.server.max_media_bytes)
        await reader.fill()
        state.access.authorize(request, None, body_sha256=reader.sha256)
        sha, result = await run_in_threadpool(state.store.put_media, reader, max_bytes=settings.server.max_media_bytes)
        return JSONResponse({"sha256": sha, "stored": result.stored}, status_code=200 if result.duplicate else 201)

    @app.get("/media/{sha256}", tags=["media"], summary="A media blob, verified")
    async def get_media(sha256: str) -> Response:
        state = app.state.stave
        _check_id(sha256)
        spool = Path(tempfile.mkstemp(dir=settings.data_path, prefix="stave-media-out-")[1])
        try:
            await run_in_threadpool(state.store.get_media_to, sha256, spool)
        except BaseException:
            spool.unlink(missing_ok=True)
            raise
        return FileResponse(
            spool,
            media_type="application/octet-stream",
            headers={"ETag": f'"{sha256}"', "Cache-Control": _IMMUTABLE},
            background=BackgroundTask(spool.unlink, missing_ok=True),
        )

    # --- operations ------------------------------------------------------------------------

    @app.get("/info", tags=["operations"], summary="What this server accepts (like Nostr's NIP-11)")
    async def info() -> Response:
        state = app.state.stave
        return JSONResponse(
            {
                "name": "stave",
                "version": __version__,
                "log": {"origin": state.log.origin, "vkey": state.log.vkey()},
                "limits": {
                    "max_event_bytes": policy.limits.max_bytes,
                    "max_depth": policy.limits.max_depth,
                    "max_future_skew_seconds": policy.max_future_skew,
                    "max_batch_events": settings.server.max_batch,
                    "max_batch_bytes": settings.server.max_batch_bytes,
                    "max_media_bytes": settings.server.max_media_bytes,
                },
                "accepted_types": sorted(t.name for t in policy.accepted_types),
                "auth": state.access.info(),
                "store": {"durable": len(state.store.durable), "min_redundancy": state.store.min_redundancy},
                "anchoring": [ledger.describe() for ledger in state.service.anchoring.ledgers],
            }
        )

    @app.get("/health", tags=["operations"], summary="200 only when writes can reach quorum")
    async def health() -> Response:
        state = app.state.stave
        store_health = await run_in_threadpool(state.store.health)
        try:
            size = await run_in_threadpool(state.log.size)
            database_ok, database_detail = True, f"log size {size}"
        except Exception as exc:
            database_ok, database_detail = False, f"{type(exc).__name__}: {exc}"
        ok = store_health.ok and database_ok
        body = {
            "ok": ok,
            "database": {"ok": database_ok, "detail": database_detail},
            "store": {
                "ok": store_health.ok,
                "durable_up": store_health.durable_up,
                "min_redundancy": store_health.min_redundancy,
                "backends": [
                    {
                        "name": h.backend,
                        "durable": h.durable,
                        "ok": h.ok,
                        "latency_ms": round(h.latency_ms, 3),
                        "detail": h.detail,
                    }
                    for h in store_health.backends
                ],
            },
            "ingest_queue": state.ingestor.pending(),
        }
        headers = {} if ok else {"Retry-After": "5"}
        return JSONResponse(body, status_code=200 if ok else 503, headers=headers)


def _check_id(value: str) -> None:
    if len(value) != 64 or not all(c in "0123456789abcdef" for c in value):
        raise Problem(400, "invalid", f"an id is 64 lowercase hex characters, got {value[:80]!r}")


def _missing_parents(log: Log, events: list[Any]) -> list[str]:
    wanted = {parent for event in events for parent in event.parents}
    if not wanted:
        return []
    batch_ids = {event.id for event in events}
    known = log.lookup_many(sorted(wanted - batch_ids))
    return sorted(wanted - batch_ids - set(known))


def _split_batch(data: bytes, limits: JsonLimits, max_batch: int) -> list[bytes]:
    """A JSON array of events, or JSON Lines; over ``max_batch`` events is refused before any
    strict parsing or re-serialising (a 16 MiB array of ``{}`` took minutes of the event loop)."""
    stripped = data.lstrip()
    if stripped.startswith(b"["):
        try:
            items = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise Problem(400, "invalid", f"batch: not a JSON array: {exc}") from None
        if not isinstance(items, list):
            raise Problem(400, "invalid", "batch: expected a JSON array of events")
        if len(items) > max_batch:
            raise Problem(413, "invalid", f"{len(items)} events, the batch limit is {max_batch}")
        # Re-serialise each item for admission; duplicate keys inside would already be lost, so
        # an array batch must pass the strict parser as a whole first.
        try:
            parse(data, JsonLimits(max_bytes=max(len(data), 2), max_depth=limits.max_depth + 1))
        except VerificationError as exc:
            raise Problem(400, "invalid", f"batch: {exc}") from None
        return [orjson.dumps(item) for item in items]
    lines: list[bytes] = []
    for line in io.BytesIO(data):  # lazily: stop at the first line over the limit
        if line.strip():
            lines.append(line.rstrip(b"\n"))
            if len(lines) > max_batch:
                raise Problem(413, "invalid", f"more than {max_batch} events, the batch limit is {max_batch}")
    return lines


def _ingested_response(state: ServerState, result: Ingested) -> Response:
    body = {
        "id": result.event_id,
        "seq": result.seq,
        "stored": result.stored,
        "duplicate": not result.new,
        "checkpoint_size": state.checkpoint_size,
    }
    return JSONResponse(
        body, status_code=201 if result.new else 200, headers={"Location": f"/events/{result.event_id}"}
    )


class _StreamReader:
    """The request body as a blocking file-like ``read``, for the store's streamed media put."""

    def __init__(self, request: Request, limit: int) -> None:
        self._request = request
        self._limit = limit
        self._spool = tempfile.SpooledTemporaryFile(max_size=1 << 20)  # noqa: SIM115 - closed in read
        self.sha256 = b""  # of the whole body, for the request signature

    async def fill(self) -> None:
        size = 0
        digest = hashlib.sha256()
        async for chunk in self._request.stream():
            size += len(chunk)
            if size > self._limit:
                raise Problem(413, "invalid", f"media is over the limit of {self._limit} bytes")
            digest.update(chunk)
            self._spool.write(chunk)
        self._spool.seek(0)
        self.sha256 = digest.digest()

    def read(self, size: int = -1) -> bytes:
        data = self._spool.read(size)
        if not data:
            self._spool.close()
        return data
