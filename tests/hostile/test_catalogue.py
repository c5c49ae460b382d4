"""Every hostile request of the catalogue, over real HTTP against one real ``stave serve``.

For each entry: the status, the problem+json shape (``application/problem+json``, the RFC 9457
members, ``detail`` starting with the ``reason`` prefix, nothing of Python's internals), the
detail fragment, and no trace: the log's size and entries, the store index, the files in the
store directories and ``GET /events`` are the same after the request as before, and the server
logged no error for it. A valid control event before and after the catalogue shows that the
trace check sees a stored event.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from stave.auth import Issuer, Kind, sign_request
from stave.server.access import load_secret
from tests.hostile.catalogue import (
    AUTH_FORMS,
    CATALOGUE,
    CONTROL,
    JSON,
    SERVER_ENV,
    Hostile,
    control_event,
    markdown_table,
    names,
)
from tests.server.process import StaveServer
from tests.store.events import event

_TABLES = ("blobs", "blob_copies", "log_entries", "log_nodes", "log_state", "label_configs", "relays")
# What must never reach a client: a traceback, source paths, Python's names for its internals.
_INTERNALS = re.compile(r"Traceback|File \"|\.py\b|site-packages|Exception\b|Error\(|<[a-z_.]+ object at 0x")


@dataclass
class Trace:
    """Everything a stored event or a log entry would change."""

    tables: dict[str, list[tuple[Any, ...]]]
    files: dict[str, int]
    listed: list[str]
    log_size: int

    def diff(self, other: Trace) -> list[str]:
        changed = [f"table {name}" for name in _TABLES if self.tables[name] != other.tables[name]]
        if self.files != other.files:
            changed.append(f"store files {sorted(set(self.files) ^ set(other.files))[:4]}")
        if self.listed != other.listed:
            changed.append("GET /events")
        if self.log_size != other.log_size:
            changed.append(f"log size {self.log_size} -> {other.log_size}")
        return changed


class Harness:
    """The server, its issuer key (to make credentials of every kind) and the trace readers."""

    def __init__(self, server: StaveServer) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=60)
        self.issuer = Issuer(load_secret(server.data_dir / "auth" / "issuer.key"))
        self.log_offset = 0
        self._revoked: tuple[bytes, str] | None = None

    # --- credentials ------------------------------------------------------------------------------

    def holder(self) -> tuple[bytes, bytes]:
        secret = os.urandom(32)
        public = Ed25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return secret, public

    def credential(self, kind: Kind, *, at: float | None = None) -> tuple[bytes, str]:
        secret, public = self.holder()
        return secret, self.issuer.issue(kind, public, time.time() if at is None else at).token

    def revoked_relay(self) -> tuple[bytes, str]:
        """A relay credential whose relay an admin registered and then revoked (over HTTP, once)."""
        if self._revoked is None:
            secret, public = self.holder()
            key = base64.urlsafe_b64encode(public).decode().rstrip("=")
            token = self.issuer.issue(Kind.RELAY, public, time.time()).token
            body = json.dumps({"public_key": key, "name": "revoked by the catalogue"}).encode()
            assert self.admin("POST", "/admin/relays", body).status_code == 201
            assert self.admin("POST", f"/admin/relays/{key}/revoke", b"").status_code == 200
            self._revoked = (secret, token)
        return self._revoked

    def admin(self, method: str, target: str, body: bytes) -> httpx.Response:
        secret, token = self.credential(Kind.ADMIN)
        headers = {**sign_request(secret, token, method, target, body, time.time()), **JSON}
        return self.http.request(method, target, content=body, headers=headers)

    def submit_control(self, body: bytes) -> None:
        """Submit a valid new event and check that the trace sees it: the check can fail."""
        before = self.trace()
        secret, token = self.credential(Kind.APP)
        headers = {**sign_request(secret, token, "POST", "/events", body, time.time()), **JSON}
        response = self.http.post("/events", content=body, headers=headers)
        assert response.status_code == 201, response.text
        changed = before.diff(self.trace())
        assert {"table blobs", "table blob_copies", "table log_entries", "GET /events"} <= set(changed), changed
        assert [item for item in changed if item.startswith(("store files", "log size"))], changed
        self.new_log_lines()

    def post_json(self, path: str, body: object) -> tuple[int, object]:
        response = self.http.post(path, json=body) if body is not None else self.http.post(path)
        return response.status_code, response.json()

    # --- traces -------------------------------------------------------------------------------------

    def trace(self) -> Trace:
        """The trace once it holds still: the store writes its index rows just after it answers."""
        previous = self._read_trace()
        for _ in range(40):
            time.sleep(0.05)
            current = self._read_trace()
            if not previous.diff(current):
                return current
            previous = current
        raise AssertionError("the store and log kept changing for 2 s")

    def _read_trace(self) -> Trace:
        uri = f"file:{self.server.data_dir / 'stave.db'}?mode=ro"
        with sqlite3.connect(uri, uri=True) as db:
            tables = {name: sorted(db.execute(f"SELECT * FROM {name}")) for name in _TABLES}  # noqa: S608
        db.close()
        store = self.server.data_dir / "store"
        files = {str(path.relative_to(store)): path.stat().st_size for path in store.rglob("*") if path.is_file()}
        listed = [item["id"] for item in self.http.get("/events", params={"limit": 1000}).json()["events"]]
        detail = self.http.get("/health").json()["database"]["detail"]
        return Trace(tables, files, listed, int(detail.removeprefix("log size ")))

    def new_log_lines(self) -> list[dict[str, Any]]:
        data = self.server.log_path.read_bytes()
        lines, self.log_offset = data[self.log_offset :], len(data)
        return [json.loads(line) for line in lines.splitlines() if line.startswith(b"{")]


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    server = StaveServer(tmp_path_factory.mktemp("hostile"), env=SERVER_ENV).start()
    one = Harness(server)
    try:
        one.submit_control(control_event().canonical_bytes())  # some entries resend it as a duplicate
        yield one
    finally:
        one.http.close()
        server.stop()


def _signed_headers(harness: Harness, entry: Hostile, body: bytes) -> list[dict[str, str]]:
    """The auth headers of each send of ``entry`` (see ``AUTH_FORMS``)."""
    now = time.time()
    method, target, auth = entry.method, entry.target, entry.auth

    def sign(secret: bytes, token: str, *, over: bytes = body, to: str = target, at: float = now) -> dict[str, str]:
        return sign_request(secret, token, method, to, over, at)

    if auth == "none":
        return [{}] * entry.sends
    if auth in ("app", "relay", "admin"):
        return [sign(*harness.credential(Kind(auth)))]
    if auth == "expired":
        return [sign(*harness.credential(Kind.APP, at=now - 13 * 3600))]
    if auth == "not-yet-valid":
        return [sign(*harness.credential(Kind.APP, at=now + 3600))]
    if auth == "other-issuer":
        secret, public = harness.holder()
        return [sign(secret, Issuer.generate().issue(Kind.ADMIN, public, now).token)]
    if auth == "tampered":
        secret, token = harness.credential(Kind.APP)
        prefix, payload, signature = token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        claims["kind"] = "admin"
        edited = base64.urlsafe_b64encode(json.dumps(claims, sort_keys=True, separators=(",", ":")).encode())
        headers = sign(secret, token)
        headers["Authorization"] = f"Stave {prefix}.{edited.decode().rstrip('=')}.{signature}"
        return [headers]
    if auth == "revoked":
        return [sign(*harness.revoked_relay())]
    if auth == "stolen":
        _, token = harness.credential(Kind.APP)
        thief, _ = harness.holder()
        return [sign(thief, token)]
    if auth == "other-body":
        return [sign(*harness.credential(Kind.APP), over=body + b" ")]
    if auth == "other-path":
        return [sign(*harness.credential(Kind.APP), to=target + ":batch")]
    if auth == "stale":
        return [sign(*harness.credential(Kind.APP), at=now - 3600)]
    if auth == "garbled-signature":
        headers = sign(*harness.credential(Kind.APP))
        headers["Stave-Signature"] = headers["Stave-Signature"].replace(",", ";")
        return [headers]
    if auth == "bearer":
        headers = sign(*harness.credential(Kind.APP))
        headers["Authorization"] = headers["Authorization"].replace("Stave ", "Bearer ", 1)
        return [headers]
    if auth == "replay":
        return [sign(*harness.credential(Kind.APP))] * entry.sends
    if auth == "flood":
        secret, token = harness.credential(Kind.APP)
        return [sign(secret, token) for _ in range(entry.sends)]
    raise AssertionError(f"unknown auth form {auth!r}")


def _send(harness: Harness, entry: Hostile, body: bytes, auth: dict[str, str]) -> httpx.Response:
    headers = {**entry.headers, **auth}
    content: Any = body
    if headers.pop("transfer-encoding", None) == "chunked":  # httpx streams an iterator in chunks
        content = iter([body[i : i + 65536] for i in range(0, len(body), 65536)])
    request = harness.http.build_request(entry.method, entry.target, content=content, headers=headers)
    if entry.method == "GET" and not body:
        request.headers.pop("content-length", None)
    return harness.http.send(request)


def _check_problem(entry: Hostile, response: httpx.Response) -> None:
    assert response.headers["content-type"] == "application/problem+json", response.headers
    problem = response.json()
    assert set(problem) == {"type", "title", "status", "detail", "reason"}, problem
    assert problem["status"] == entry.status
    assert problem["reason"] == entry.reason
    assert problem["type"] == f"https://stave.dev/problems/{entry.reason}"
    assert problem["detail"].startswith(f"{entry.reason}: ")
    assert entry.detail.lower() in problem["detail"].lower(), problem["detail"]


def _check_per_event(entry: Hostile, response: httpx.Response) -> None:
    """A batch answered per event: the bad ones refused with the reason, the rest already stored."""
    assert response.headers["content-type"] == "application/json"
    results = response.json()["results"]
    refused = [result for result in results if not result["ok"]]
    assert refused, results
    for result in refused:
        assert result["reason"].startswith(f"{entry.reason}: ")
        assert entry.detail.lower() in result["reason"].lower(), result
    assert all(result["duplicate"] for result in results if result["ok"]), results


@pytest.mark.parametrize("entry", CATALOGUE, ids=names())
def test_hostile_request(harness: Harness, entry: Hostile) -> None:
    body = entry.body(harness) if callable(entry.body) else entry.body
    sends = _signed_headers(harness, entry, body)  # may prepare (a relay revoked): before the trace
    before = harness.trace()
    harness.new_log_lines()
    responses = [_send(harness, entry, body, auth) for auth in sends]
    for earlier in responses[:-1]:
        assert 400 <= earlier.status_code < 500, earlier.text
    response = responses[-1]
    assert response.status_code == entry.status, response.text[:500]
    assert not _INTERNALS.search(response.text), response.text[:500]
    if entry.status == 207:
        _check_per_event(entry, response)
    else:
        _check_problem(entry, response)
    if entry.status == 429:
        assert int(response.headers["retry-after"]) >= 1
    after = harness.trace()
    assert before.diff(after) == [], f"{entry.name} left a trace"
    logged = harness.new_log_lines()
    assert logged, "the server logs every request"
    assert not [line for line in logged if line.get("level") not in ("info", "debug")], logged


def test_the_trace_check_still_sees_a_new_event(harness: Harness) -> None:
    """After the catalogue, one valid event still changes every part of the trace."""
    harness.submit_control(event(CONTROL + 1).canonical_bytes())


def test_catalogue_is_well_formed() -> None:
    assert len(set(names())) == len(CATALOGUE), "names are unique (they are test ids and table rows)"
    for entry in CATALOGUE:
        assert entry.auth in AUTH_FORMS, entry.name
        assert 400 <= entry.status < 500 or entry.status == 207, entry.name
        assert entry.reason in ("invalid", "not-found", "pow", "rate-limited", "restricted", "auth-required")
        assert entry.target.startswith("/")


def test_the_table_in_the_docs_is_the_catalogue() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "hostile-input.md").read_text()
    assert markdown_table() in doc, "docs/hostile-input.md: regenerate the table (see markdown_table)"
