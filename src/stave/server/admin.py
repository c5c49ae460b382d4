"""Administration (admin credential only): label configurations, the relay registry, read-only views.

Seed 004: capture apps are configured per label (which fields, which defaults); an admin
creates and updates a label's configuration, each update a new version, and apps fetch the
current one (``GET /labels/{label}``, public). Relays are registered, approved or revoked; with
``auth.relays_only`` the server accepts writes only through approved relays. Every admin
request is signed like a write (see :mod:`stave.server.access`).
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from stave.auth import Kind
from stave.db import Database
from stave.db.schema import label_configs, relays
from stave.errors import JSONError
from stave.event.strictjson import JsonLimits, loads
from stave.server.limits import read_body
from stave.server.problems import Problem

__all__ = ["RelayRegistry", "install_admin_routes"]

ADMIN = frozenset({Kind.ADMIN})
_MAX_CONFIG = 64 << 10


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class RelayRegistry:
    """Relays by public key; ``approved`` is what ``auth.relays_only`` checks (cached briefly)."""

    def __init__(self, database: Database, cache_seconds: float = 5.0) -> None:
        self.database = database
        self.cache_seconds = cache_seconds
        self._approved: tuple[float, frozenset[str]] = (0.0, frozenset())

    def approved(self, public_key_b64: str) -> bool:
        at, keys = self._approved
        if time.monotonic() - at > self.cache_seconds:
            with self.database.engine.connect() as connection:
                keys = frozenset(
                    connection.execute(select(relays.c.public_key).where(relays.c.state == "approved")).scalars()
                )
            self._approved = (time.monotonic(), keys)
        return public_key_b64 in keys

    def set(self, public_key: str, *, name: str | None = None, url: str | None = None, state: str) -> dict[str, Any]:
        now = _now_ms()
        insert = self.database.insert(relays)
        update: dict[str, Any] = {"state": state, "updated_at": now}
        if name is not None:
            update["name"] = name
        if url is not None:
            update["url"] = url
        with self.database.write() as connection:
            connection.execute(
                insert.on_conflict_do_update(index_elements=["public_key"], set_=update),
                {
                    "public_key": public_key,
                    "name": name or public_key[:12],
                    "url": url,
                    "state": state,
                    "created_at": now,
                    "updated_at": now,
                },
            )
        self._approved = (0.0, frozenset())  # the next check reads the table again
        return self.get(public_key)

    def get(self, public_key: str) -> dict[str, Any]:
        with self.database.engine.connect() as connection:
            row = connection.execute(select(relays).where(relays.c.public_key == public_key)).mappings().first()
        if row is None:
            raise Problem(404, "not-found", f"no relay with key {public_key}")
        return dict(row)

    def list(self) -> list[dict[str, Any]]:
        with self.database.engine.connect() as connection:
            return [dict(row) for row in connection.execute(select(relays).order_by(relays.c.created_at)).mappings()]


def _key(value: object) -> str:
    if not isinstance(value, str):
        raise Problem(400, "invalid", "public_key: expected base64url of a 32-byte Ed25519 key")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise Problem(400, "invalid", "public_key: expected base64url of a 32-byte Ed25519 key")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def install_admin_routes(app: FastAPI) -> None:
    async def admin(request: Request, body: bytes = b"") -> Any:
        return app.state.stave.access.authorize(request, body, kinds=ADMIN)

    async def json_body(request: Request) -> tuple[bytes, Any]:
        body = await read_body(request, _MAX_CONFIG)  # refused before it is read whole
        try:  # strict: a configuration with a duplicate key would be stored as only one reading of it
            return body, loads(body, JsonLimits(max_bytes=_MAX_CONFIG))
        except JSONError as exc:
            raise Problem(400, "invalid", f"not strict JSON: {exc}") from None

    # --- label configurations ---------------------------------------------------------------

    def latest(label: str) -> dict[str, Any] | None:
        database = app.state.stave.log.database
        with database.engine.connect() as connection:
            row = (
                connection.execute(
                    select(label_configs)
                    .where(label_configs.c.label == label)
                    .order_by(label_configs.c.version.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        return {
            "label": row["label"],
            "version": row["version"],
            "config": orjson.loads(row["config"]),
            "created_at": row["created_at"],
        }

    @app.get("/labels/{label}", tags=["admin"], summary="The current configuration of a label (for capture apps)")
    async def get_label(label: str) -> Response:
        found = await run_in_threadpool(latest, label)
        if found is None:
            raise Problem(404, "not-found", f"no configuration for label {label!r}")
        return JSONResponse(found)

    @app.put("/admin/labels/{label}", tags=["admin"], summary="Create or update a label configuration (a new version)")
    async def put_label(label: str, request: Request) -> Response:
        body, config = await json_body(request)
        credential = await admin(request, body)
        if not isinstance(config, dict):
            raise Problem(400, "invalid", "a label configuration is a JSON object")
        if not 1 <= len(label) <= 128:
            raise Problem(400, "invalid", "label: 1 to 128 characters")

        def store() -> int:
            database = app.state.stave.log.database
            with database.write() as connection:
                current = connection.execute(
                    select(func.max(label_configs.c.version)).where(label_configs.c.label == label)
                ).scalar_one()
                version = (current or 0) + 1
                connection.execute(
                    label_configs.insert(),
                    {
                        "label": label,
                        "version": version,
                        "config": orjson.dumps(config).decode(),
                        "created_at": _now_ms(),
                        "created_by": credential.id,
                    },
                )
            return version

        version = await run_in_threadpool(store)
        return JSONResponse({"label": label, "version": version}, status_code=201)

    @app.get("/admin/labels", tags=["admin"], summary="Every label's current configuration")
    async def list_labels(request: Request) -> Response:
        await admin(request)

        def all_latest() -> list[dict[str, Any]]:
            database = app.state.stave.log.database
            with database.engine.connect() as connection:
                labels = list(connection.execute(select(label_configs.c.label).distinct()).scalars())
            return [found for label in sorted(labels) if (found := latest(label)) is not None]

        return JSONResponse({"labels": await run_in_threadpool(all_latest)})

    # --- relays ------------------------------------------------------------------------------

    @app.post("/admin/relays", tags=["admin"], status_code=201, summary="Register a relay by its public key")
    async def register_relay(request: Request) -> Response:
        body, data = await json_body(request)
        await admin(request, body)
        if not isinstance(data, dict):
            raise Problem(400, "invalid", "expected {public_key, name, url?}")
        registry: RelayRegistry = app.state.relays
        key = _key(data.get("public_key"))
        name, url = data.get("name"), data.get("url")
        if not isinstance(name, str) or not 1 <= len(name) <= 128:
            raise Problem(400, "invalid", "name: 1 to 128 characters")
        if url is not None and not isinstance(url, str):
            raise Problem(400, "invalid", "url: a string")
        return JSONResponse(
            await run_in_threadpool(lambda: registry.set(key, name=name, url=url, state="registered")), status_code=201
        )

    @app.post("/admin/relays/{public_key}/{action}", tags=["admin"], summary="Approve or revoke a relay")
    async def relay_action(public_key: str, action: str, request: Request) -> Response:
        await admin(request)
        if action not in ("approve", "revoke"):
            raise Problem(404, "not-found", f"unknown action {action!r}: approve or revoke")
        registry: RelayRegistry = app.state.relays
        key = _key(public_key)
        await run_in_threadpool(registry.get, key)  # 404 for an unknown relay
        state = "approved" if action == "approve" else "revoked"
        if state == "revoked":  # its credentials stop working at once, on every instance sharing revocations
            raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
            app.state.stave.access.verifier.revocation.revoke_subject(raw, time.time())
        return JSONResponse(await run_in_threadpool(lambda: registry.set(key, state=state)))

    @app.get("/admin/relays", tags=["admin"], summary="Every relay and its state")
    async def list_relays(request: Request) -> Response:
        await admin(request)
        return JSONResponse({"relays": await run_in_threadpool(app.state.relays.list)})

    # --- read-only views --------------------------------------------------------------------

    @app.get("/admin/store", tags=["admin"], summary="Store health and the repair queue")
    async def admin_store(request: Request) -> Response:
        await admin(request)
        state = app.state.stave
        health = await run_in_threadpool(state.store.health)
        repairs = await run_in_threadpool(state.store.index.pending_repairs, 100)
        return JSONResponse(
            {
                "ok": health.ok,
                "backends": [
                    {"name": h.backend, "ok": h.ok, "latency_ms": round(h.latency_ms, 3), "detail": h.detail}
                    for h in health.backends
                ],
                "pending_repairs": [{"blob": str(key), "backend": backend, "state": s} for key, backend, s in repairs],
            }
        )

    @app.get("/admin/anchors", tags=["admin"], summary="Anchoring status per ledger")
    async def admin_anchors(request: Request) -> Response:
        await admin(request)
        rows = await run_in_threadpool(app.state.stave.service.anchoring.status)
        return JSONResponse(
            {
                "anchors": [
                    {"ledger": ledger, "size": size, "state": s, "attempts": a, "last_error": e}
                    for ledger, size, s, a, e in rows
                ]
            }
        )
