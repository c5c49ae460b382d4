"""Errors as RFC 9457 problem+json, mapped in one place.

Every error answer carries ``type``, ``title``, ``status``, ``detail`` (what was wrong and
where) and ``reason``, a machine-readable prefix like the ``OK`` messages of Nostr relays
(``invalid:``, ``duplicate:``, ``pow:``, ``rate-limited:``, ``restricted:``,
``auth-required:``, ``not-found:``, ``unavailable:``, ``error:``). No stack trace reaches a client.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match, Route

from stave.errors import (
    BackendUnavailable,
    BlobNotFound,
    IntegrityError,
    LedgerError,
    ProofError,
    StaveError,
    StorageError,
    VerificationError,
)

__all__ = ["Problem", "install_problem_handlers", "problem_response"]

_log = logging.getLogger(__name__)


class Problem(Exception):
    """An error answer: status, reason prefix and a detail naming what and where."""

    def __init__(self, status: int, reason: str, detail: str, *, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after


_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Too large",
    415: "Unsupported media type",
    422: "Unprocessable event",
    429: "Too many requests",
    431: "Request header fields too large",
    500: "Internal error",
    503: "Unavailable",
}


def problem_response(problem: Problem) -> JSONResponse:
    headers = {"Content-Type": "application/problem+json"}
    if problem.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(problem.retry_after)))
    return JSONResponse(
        {
            "type": f"https://stave.dev/problems/{problem.reason}",
            "title": _TITLES.get(problem.status, "Error"),
            "status": problem.status,
            "detail": f"{problem.reason}: {problem.detail}",
            "reason": problem.reason,
        },
        status_code=problem.status,
        headers=headers,
    )


def _from_exception(exc: Exception) -> Problem:
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, BackendUnavailable):
        return Problem(503, "unavailable", str(exc), retry_after=exc.retry_after or 5)
    if isinstance(exc, BlobNotFound):
        return Problem(404, "not-found", str(exc))
    if isinstance(exc, IntegrityError):
        return Problem(503, "unavailable", f"no verified copy can be served now: {exc}", retry_after=30)
    if isinstance(exc, ProofError):
        return Problem(422, "invalid", str(exc))
    if isinstance(exc, VerificationError):
        return Problem(422, "invalid", str(exc))
    if isinstance(exc, (StorageError, LedgerError)):
        return Problem(503, "unavailable", str(exc), retry_after=5)
    if isinstance(exc, StaveError):
        return Problem(500, "error", str(exc))
    return Problem(500, "error", "an internal error occurred; it has been logged")


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods
    return sorted(methods)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(StaveError)
    async def _stave(request: Request, exc: StaveError) -> JSONResponse:
        return problem_response(_from_exception(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        where = "; ".join(
            f"{'.'.join(str(part) for part in error.get('loc', ()))}: {error.get('msg', 'invalid')}"
            for error in exc.errors()
        )
        return problem_response(Problem(400, "invalid", where or "invalid request"))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        reason = {404: "not-found", 405: "invalid"}.get(exc.status_code, "invalid")
        response = problem_response(Problem(exc.status_code, reason, str(exc.detail)))
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:  # every method of the path (RFC 9110 §15.5.6), not only the first route's
            response.headers["Allow"] = ", ".join(_allowed_methods(request))
        return response

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        _log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(_from_exception(exc))
