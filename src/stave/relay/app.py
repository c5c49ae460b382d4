"""The relay: proof of work and rate limits for apps, forwarding to servers with its own credential.

Apps talk to the relay exactly as they would to a server: they get an ``app`` credential from
the relay by proof of work (``/auth/challenge``, ``/auth/credential``) and sign their writes.
The relay checks them, then forwards each write to a server signed with **its** ``relay``
credential (issued by the server's operator: ``stave credential issue --kind relay``), passing
the request id through. Reads are forwarded as they are. Several upstream servers are tried in
turn when one cannot be reached. The relay keeps no state of its own beyond its keys; run as
many as needed. A server with ``auth.relays_only`` accepts writes only from relays.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from stave import __version__
from stave.auth import sign_request
from stave.config import Settings
from stave.errors import JSONError
from stave.event import loads
from stave.event.strictjson import JsonLimits
from stave.server.access import Access
from stave.server.limits import install_request_limits, read_body
from stave.server.logs import install_request_ids
from stave.server.problems import Problem, install_problem_handlers

__all__ = ["RelayConfig", "create_relay"]

_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}


@dataclass(frozen=True)
class RelayConfig:
    upstreams: Sequence[str]
    credential: str  # the relay's own ``relay`` credential, issued by the servers' operator
    key: bytes  # the Ed25519 seed that credential is bound to
    timeout: float = 30.0
    # The largest body forwarded: the servers' own largest (media, 64 MiB by default); the relay
    # refuses a larger one before reading it whole, and the servers enforce their finer limits.
    max_body: int = 64 << 20


def create_relay(settings: Settings, config: RelayConfig) -> FastAPI:
    if not config.upstreams:
        raise ValueError("a relay needs at least one upstream server")
    access = Access.open(settings)  # the relay's own issuer key and limits, in its data dir
    turn = itertools.cycle(range(len(config.upstreams)))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=config.timeout) as client:
            app.state.http = client
            yield

    app = FastAPI(title="stave relay", version=__version__, lifespan=lifespan)
    install_problem_handlers(app)
    install_request_limits(app)  # the servers' header-size, control-character and content-coding limits
    install_request_ids(app)

    async def forward(request: Request, body: bytes, *, sign: bool) -> Response:
        # The target as sent, still percent-encoded: what gets signed and forwarded (url.path is decoded).
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        query = request.scope.get("query_string", b"")
        target = raw_path.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() not in _HOP_HEADERS and name.lower() not in ("authorization", "stave-signature")
        }
        if sign:
            headers.update(sign_request(config.key, config.credential, request.method, target, body, time.time()))
        start = next(turn)
        errors = []
        for offset in range(len(config.upstreams)):
            upstream = config.upstreams[(start + offset) % len(config.upstreams)].rstrip("/")
            try:
                if sign and offset:  # a fresh nonce per attempt: the server refuses a replayed one
                    headers.update(
                        sign_request(config.key, config.credential, request.method, target, body, time.time())
                    )
                answer = await app.state.http.request(request.method, upstream + target, content=body, headers=headers)
            except httpx.TransportError as exc:
                errors.append(f"{upstream}: {exc}")
                continue
            if answer.status_code == 503 and offset + 1 < len(config.upstreams):
                errors.append(f"{upstream}: 503")
                continue
            passed = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_HEADERS}
            return Response(answer.content, status_code=answer.status_code, headers=passed)
        raise Problem(503, "unavailable", f"no upstream server answered: {'; '.join(errors)}", retry_after=5)

    @app.post("/auth/challenge")
    async def challenge(request: Request) -> Response:
        return JSONResponse(access.challenge(request.client.host if request.client else "unknown"))

    @app.post("/auth/credential")
    async def credential(request: Request) -> Response:
        try:  # strict, as on the servers: a duplicate "counter" must not mean one thing here and another there
            body = loads(await read_body(request, 4096), JsonLimits(max_bytes=4096, max_depth=4))
        except JSONError as exc:
            raise Problem(400, "invalid", f"not strict JSON: {exc}") from None
        return JSONResponse(
            access.credential(request.client.host if request.client else "unknown", body), status_code=201
        )

    @app.post("/events")
    @app.post("/events:batch")
    @app.put("/media")
    async def write(request: Request) -> Response:
        body = await read_body(request, config.max_body)
        access.authorize(request, body)  # the app's credential and signature, checked here
        return await forward(request, body, sign=True)

    @app.get("/info")
    async def info(request: Request) -> Response:
        return JSONResponse(
            {"name": "stave relay", "version": __version__, "upstreams": len(config.upstreams), "auth": access.info()}
        )

    @app.get("/{path:path}")
    async def read(request: Request, path: str) -> Response:
        return await forward(request, b"", sign=False)

    return app
