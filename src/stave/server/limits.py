"""Limits every request meets before any route sees it: the size of its headers, its content coding.

- Headers: at most ``MAX_HEADER_BYTES`` in all (a credential and a request signature take about
  4.5 KiB), answered ``431``. The HTTP parser has already read them by then (uvicorn's httptools
  parser sets no limit of its own), so a proxy in front should bound them as well; this keeps an
  oversized request from reaching any route and tells the client why.
- Control characters in the target: no route takes a path or query holding a C0 control
  character or DEL (``%00``, ``%0a``…), and PostgreSQL cannot even compare text holding NUL
  (it answered a ``?author=%00`` with a 500), so such a target is answered ``400``.
- Content coding: stave decodes none, so a body labelled ``gzip``, ``br`` or anything but
  ``identity`` is answered ``415`` with ``Accept-Encoding: identity`` (RFC 9110 §15.5.16) instead
  of being parsed or stored as the label denies, and no compressed body is ever inflated.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import unquote_to_bytes

from fastapi import FastAPI, Request

from stave.server.problems import Problem, problem_response

__all__ = ["MAX_HEADER_BYTES", "install_request_limits", "read_body", "refusal"]

MAX_HEADER_BYTES: Final = 32 << 10


def refusal(headers: list[tuple[bytes, bytes]], path: str = "/", query: bytes = b"") -> Problem | None:
    """Why a request with these (ASGI) headers, decoded path and raw query is refused before routing, or None."""
    for where, text in (("path", path.encode("utf-8", "surrogateescape")), ("query", unquote_to_bytes(query))):
        control = next((byte for byte in text if byte < 0x20 or byte == 0x7F), None)
        if control is not None:
            return Problem(400, "invalid", f"the request {where} holds the control character 0x{control:02x}")
    size = sum(len(name) + len(value) + 4 for name, value in headers)  # "name: value\r\n"
    if size > MAX_HEADER_BYTES:
        return Problem(431, "invalid", f"request headers are {size} bytes, the limit is {MAX_HEADER_BYTES}")
    for name, value in headers:
        if name == b"content-encoding":
            codings = [coding.strip().lower() for coding in value.decode("latin-1").split(",")]
            if any(coding not in ("", "identity") for coding in codings):
                shown = value.decode("latin-1")[:80]
                return Problem(415, "invalid", f"content encoding {shown!r} is not supported; send the body as is")
    return None


class _RequestLimits:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            problem = refusal(scope["headers"], scope.get("path", "/"), scope.get("query_string", b""))
            if problem is not None:
                response = problem_response(problem)
                if problem.status == 415:
                    response.headers["Accept-Encoding"] = "identity"
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install_request_limits(app: FastAPI) -> None:
    """Install before the request-id middleware, so refusals are logged and counted like any answer."""
    app.add_middleware(_RequestLimits)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes: by its declared length before
    anything is read, and while streaming when none is declared (never read whole first)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(413, "invalid", f"body is {declared} bytes, the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, "invalid", f"body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
