"""Structured JSON logs with a request id that relays pass through (``X-Request-ID``)."""

from __future__ import annotations

import contextvars
import logging
import sys
import time
import uuid
from collections.abc import MutableMapping
from typing import Any

import structlog
from fastapi import FastAPI

__all__ = ["REQUEST_ID", "configure_logging", "install_request_ids"]

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_HEADER = "X-Request-ID"


def _add_request_id(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event.setdefault("request_id", REQUEST_ID.get())
    return event


def configure_logging(level: int = logging.INFO) -> None:
    """Every log line, stave's and its libraries', as one JSON object on stderr."""
    processors: list[structlog.types.Processor] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),  # fields passed as ``extra=`` (the request id of a request line)
        _add_request_id,
    ]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=processors,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access",):  # replaced by our own request line
        logging.getLogger(noisy).handlers[:] = []
        logging.getLogger(noisy).propagate = False


def install_request_ids(app: FastAPI) -> None:
    """Request ids, the request log line and the HTTP metrics, as one plain ASGI middleware
    (``@app.middleware("http")`` runs every request through extra tasks and memory streams)."""
    app.add_middleware(_Observe)


class _Observe:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.log = logging.getLogger("stave.http")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from stave.server.metrics import LATENCY, REQUESTS

        started = time.perf_counter()
        incoming = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        # Accept a relay's id when it looks like one; never echo arbitrary text into logs.
        request_id = incoming if 8 <= len(incoming) <= 64 and incoming.replace("-", "").isalnum() else uuid.uuid4().hex
        status = 500
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(elapsed)
            self.log.info(
                "%s %s %d %.1fms",
                scope["method"],
                scope["path"],
                status,
                elapsed * 1e3,
                extra={"request_id": request_id},
            )
