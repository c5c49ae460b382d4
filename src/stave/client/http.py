"""``StaveClient``: a small synchronous client over httpx, for scripts, the CLI and tests.

Errors from the server (RFC 9457 problem+json) become :class:`ServerError` with the status,
the machine-readable reason (``invalid``, ``rate-limited``, …), the detail and Retry-After.
Reads of events are verified here too (strict JSON, schema, id, signature): a client does not
have to trust the server it reads from.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from stave.auth import Challenge, sign_request, solve
from stave.errors import StaveError
from stave.event import Event, admit

__all__ = ["ServerError", "StaveClient", "Submitted"]


class ServerError(StaveError):
    def __init__(self, status: int, reason: str, detail: str, retry_after: float | None = None) -> None:
        self.status = status
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after
        super().__init__(f"{status} {detail}")


@dataclass(frozen=True, slots=True)
class Submitted:
    id: str
    seq: int | None
    duplicate: bool
    error: str | None = None


class StaveClient:
    """A client of one server. Writes obtain an ``app`` credential by proof of work, once, and
    sign every request with ``key`` (an Ed25519 seed; a new one per client by default)."""

    def __init__(
        self,
        url: str = "http://127.0.0.1:8080",
        *,
        timeout: float = 30.0,
        request_id: str | None = None,
        key: bytes | None = None,
        token: str | None = None,
    ) -> None:
        headers = {"X-Request-ID": request_id} if request_id else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers)
        self._key = key if key is not None else secrets.token_bytes(32)
        self._token = token

    @property
    def public_key(self) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(self._key).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def credential(self) -> str:
        """An app credential: solve the server's proof-of-work challenge and exchange it."""
        if self._token is None:
            challenge = Challenge.from_json(self._check(self._http.post("/auth/challenge")).json())
            counter = solve(challenge, self.public_key)
            body = {
                "challenge": challenge.to_json(),
                "public_key": base64.urlsafe_b64encode(self.public_key).decode().rstrip("="),
                "counter": counter,
            }
            self._token = str(self._check(self._http.post("/auth/credential", json=body)).json()["token"])
        return self._token

    def signed_request(self, method: str, path: str, body: bytes, content_type: str) -> httpx.Response:
        for attempt in range(2):
            headers = sign_request(self._key, self.credential(), method, path, body, time.time())
            headers["content-type"] = content_type
            response = self._http.request(method, path, content=body, headers=headers)
            if response.status_code == 401 and attempt == 0:  # expired or revoked: get a new one once
                self._token = None
                continue
            return response
        raise AssertionError("unreachable")

    def __enter__(self) -> StaveClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.status_code < 400:
            return response
        try:
            problem = response.json()
            reason, detail = str(problem.get("reason", "error")), str(problem.get("detail", response.text))
        except ValueError:
            reason, detail = "error", response.text[:500]
        retry = response.headers.get("retry-after")
        raise ServerError(response.status_code, reason, detail, float(retry) if retry and retry.isdigit() else None)

    # --- writing ----------------------------------------------------------------------------

    def submit(self, event: Event | bytes) -> Submitted:
        data = event.canonical_bytes() if isinstance(event, Event) else event
        body = self._check(self.signed_request("POST", "/events", data, "application/json")).json()
        return Submitted(body["id"], body["seq"], body["duplicate"])

    def submit_batch(self, events: Sequence[Event | bytes]) -> list[Submitted]:
        lines = [e.canonical_bytes() if isinstance(e, Event) else e for e in events]
        response = self._check(
            self.signed_request("POST", "/events:batch", b"\n".join(lines) + b"\n", "application/x-ndjson")
        )
        out = []
        for item in response.json()["results"]:
            if item["ok"]:
                out.append(Submitted(item["id"], item["seq"], item["duplicate"]))
            else:
                out.append(Submitted(item.get("id", ""), None, False, item.get("reason")))
        return out

    # --- reading ----------------------------------------------------------------------------

    def get(self, event_id: str) -> Event:
        """The event, verified on this side too, and checked to be the one asked for."""
        response = self._check(self._http.get(f"/events/{event_id}"))
        return admit(response.content, expected_id=event_id)

    def entries(self, *, after_seq: int = -1, limit: int = 100, event_type: str | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"after_seq": after_seq, "limit": limit}
        if event_type:
            params["type"] = event_type
        events: list[dict[str, Any]] = self._check(self._http.get("/events", params=params)).json()["events"]
        return events

    def tail(
        self, *, after_seq: int = -1, poll: float = 1.0, stop_after: float | None = None
    ) -> Iterator[dict[str, Any]]:
        """Follow the log: every entry after ``after_seq``, in order, as it arrives."""
        deadline = None if stop_after is None else time.monotonic() + stop_after
        while deadline is None or time.monotonic() < deadline:
            batch = self.entries(after_seq=after_seq, limit=1000)
            yield from batch
            if batch:
                after_seq = batch[-1]["seq"]
            else:
                time.sleep(poll)

    def proof(self, event_id: str, *, wait: float = 30.0) -> dict[str, Any]:
        """The proof bundle, waiting (up to ``wait`` seconds) for a checkpoint to cover the event."""
        deadline = time.monotonic() + wait
        while True:
            response = self._http.get(f"/events/{event_id}/proof")
            if response.status_code != 202 or time.monotonic() > deadline:
                bundle: dict[str, Any] = orjson.loads(self._check(response).content)
                return bundle
            time.sleep(float(response.headers.get("retry-after", "1")))

    def put_media(self, data: bytes) -> str:
        """Upload a media blob; returns its SHA-256."""
        return str(self._check(self.signed_request("PUT", "/media", data, "application/octet-stream")).json()["sha256"])

    def checkpoint(self) -> str:
        return self._check(self._http.get("/log/checkpoint")).text

    def vkey(self) -> str:
        return self._check(self._http.get("/log/vkey")).text.strip()

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = self._check(self._http.get("/info")).json()
        return info

    def health(self) -> dict[str, Any]:
        response = self._http.get("/health")
        health: dict[str, Any] = response.json()
        return health


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
