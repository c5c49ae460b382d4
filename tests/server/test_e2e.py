"""End to end over real HTTP against a real ``stave serve`` process on embedded defaults."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stave.auth import sign_request
from stave.client import StaveClient
from stave.event import admit
from stave.log.bundle import verify_bundle
from tests.server.process import StaveServer
from tests.store.events import event

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaveServer]:
    one = StaveServer(tmp_path_factory.mktemp("stave-serve")).start()
    yield one
    one.stop()


@pytest.fixture
def client(server: StaveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


@pytest.fixture(scope="module")
def writer(server: StaveServer) -> Iterator[StaveClient]:
    """Holds an app credential (proof of work, once) and signs write requests."""
    with StaveClient(server.url) as one:
        one.credential()
        yield one


def post(writer: StaveClient, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return writer.signed_request("POST", path, body, headers.get("content-type", ""))


def test_submit_read_list_and_prove(client: httpx.Client, writer: StaveClient) -> None:
    data = (EXAMPLES / "00_create_release_bundle.white_album.json").read_bytes()
    first = post(writer, "/events", data, JSON)
    assert first.status_code == 201, first.text
    body = first.json()
    assert len(body["stored"]) == 2
    again = post(writer, "/events", data, JSON)
    assert again.status_code == 200
    assert again.json()["seq"] == body["seq"]
    assert again.json()["duplicate"] is True

    got = client.get(f"/events/{body['id']}")
    assert got.status_code == 200
    assert admit(got.content).id == body["id"]
    assert got.headers["etag"] == f'"{body["id"]}"'
    assert "immutable" in got.headers["cache-control"]
    assert client.get(f"/events/{body['id']}", headers={"If-None-Match": f'"{body["id"]}"'}).status_code == 304

    listed = client.get("/events", params={"type": "CREATE_RELEASE_BUNDLE"}).json()
    assert body["id"] in [item["id"] for item in listed["events"]]

    deadline = time.monotonic() + 10
    while (proof := client.get(f"/events/{body['id']}/proof")).status_code == 202:
        assert "retry-after" in proof.headers
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert proof.status_code == 200
    vkey = client.get("/log/vkey").text.strip()
    steps = verify_bundle(proof.json(), vkey)
    assert steps[3].name == "inclusion"


def test_batch_ingest_json_lines_and_arrays(client: httpx.Client, writer: StaveClient) -> None:
    lines = [event(900_000 + i).canonical_bytes() for i in range(20)]
    response = post(writer, "/events:batch", b"\n".join(lines) + b"\n", {"content-type": "application/x-ndjson"})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["ok"] for r in results] == [True] * 20
    seqs = [r["seq"] for r in results]
    assert len(set(seqs)) == 20
    as_array = b"[" + b",".join(lines[:3]) + b"," + event(900_100).canonical_bytes() + b"]"
    mixed = post(writer, "/events:batch", as_array, JSON).json()["results"]
    assert [r["duplicate"] for r in mixed] == [True, True, True, False]
    bad = lines[0].replace(b'"yes"', b'"no"')
    partial = post(
        writer,
        "/events:batch",
        bad + b"\n" + event(900_101).canonical_bytes(),
        {"content-type": "application/x-ndjson"},
    )
    assert partial.status_code == 207
    assert partial.json()["results"][0]["reason"].startswith("invalid:")
    assert partial.json()["results"][1]["ok"]


@pytest.mark.parametrize(
    ("body", "headers", "status", "fragment"),
    [
        (b'{"a":1,"a":2}', JSON, 400, "duplicate"),
        (b'{"v":1', JSON, 400, "syntax"),
        (b'{"v": NaN}', JSON, 400, "NaN"),
        (b'{"x": 9007199254740993}', JSON, 400, "integer"),
        (b'{"x": "\\ud800"}', JSON, 400, "surrogate"),
        (b"[" * 100 + b"]" * 100, JSON, 400, "deeper"),
        (b'{"v":1,"type":"VOTE"}', JSON, 422, "author_pubkey"),
        (b"{}", {"content-type": "text/plain"}, 415, "content type"),
        (b"x" * (1 << 20 + 1), JSON, 413, "limit"),
    ],
)
def test_bad_input_is_refused_clearly_and_leaves_nothing(
    client: httpx.Client, writer: StaveClient, body: bytes, headers: dict[str, str], status: int, fragment: str
) -> None:
    before = client.get("/events", params={"limit": 1000}).json()["events"]
    response = post(writer, "/events", body, headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["reason"] == "invalid"
    assert fragment.lower() in problem["detail"].lower()
    assert "Traceback" not in response.text
    assert client.get("/events", params={"limit": 1000}).json()["events"] == before


def test_tampered_event_and_unknown_parent_are_unprocessable(client: httpx.Client, writer: StaveClient) -> None:
    vote = json.loads((EXAMPLES / "08_vote.json").read_text())
    vote["body"]["vote"] = "no"
    tampered = post(writer, "/events", json.dumps(vote).encode(), JSON)
    assert tampered.status_code == 422
    assert "signature does not match" in tampered.json()["detail"]
    reply = (EXAMPLES / "11_discuss.reply.json").read_bytes()  # its parent was never submitted here
    orphan = post(writer, "/events", reply, JSON)
    assert orphan.status_code == 422
    assert "$.parents" in orphan.json()["detail"]


def test_path_tricks_in_ids(client: httpx.Client) -> None:
    for bad in ["..%2F..%2Fetc%2Fpasswd", "AB" * 32, "zz" * 32, "ab" * 31]:
        response = client.get(f"/events/{bad}")
        assert response.status_code in (400, 404), bad
        assert response.headers["content-type"].startswith("application/problem+json")
    assert client.get(f"/events/{'ab' * 32}").status_code == 404


def test_tiles_are_served_for_existing_tooling(client: httpx.Client, writer: StaveClient) -> None:
    checkpoint = client.get("/log/checkpoint").text
    size = int(checkpoint.splitlines()[1])
    assert size >= 1
    width = size % 256 or 256
    tile = client.get(f"/log/tile/0/000{'.p/' + str(width) if width != 256 else ''}")
    assert tile.status_code == 200
    assert len(tile.content) == 32 * width
    entries = client.get(f"/log/tile/entries/000{'.p/' + str(width) if width != 256 else ''}")
    assert entries.status_code == 200
    assert client.get("/log/tile/0/x001/000").status_code in (400, 404)
    assert client.get("/log/tile/../../etc").status_code in (400, 404)


def test_media_round_trip(client: httpx.Client, writer: StaveClient) -> None:
    payload = os.urandom(3 << 20)
    put = writer.signed_request("PUT", "/media", payload, "application/octet-stream")
    assert put.status_code == 201, put.text
    sha = put.json()["sha256"]
    assert sha == hashlib.sha256(payload).hexdigest()
    got = client.get(f"/media/{sha}")
    assert got.status_code == 200
    assert got.content == payload


def test_operations_endpoints(client: httpx.Client) -> None:
    info = client.get("/info").json()
    assert info["limits"]["max_event_bytes"] == 1 << 20
    assert "VOTE" in info["accepted_types"]
    assert "NOT a blockchain" in info["anchoring"][0]
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json()["store"]["durable_up"] == 2
    metrics = client.get("/metrics").text
    assert "stave_http_requests_total" in metrics
    assert "stave_log_size" in metrics
    schema = client.get("/openapi.json").json()
    assert "/events" in schema["paths"]
    rid = client.get("/info", headers={"X-Request-ID": "relay-1234abcd"})
    assert rid.headers["x-request-id"] == "relay-1234abcd"


def test_python_client_and_cli(server: StaveServer, tmp_path: Path) -> None:
    from tests.unit.test_cli import stave

    with StaveClient(server.url, request_id="client-test-0001") as client:
        submitted = client.submit(event(910_000))
        assert submitted.seq is not None
        assert client.get(submitted.id).id == submitted.id
        batch = client.submit_batch([event(910_001), event(910_002), event(910_000)])
        assert [b.duplicate for b in batch] == [False, False, True]
        bundle = client.proof(submitted.id, wait=10)
        verify_bundle(bundle, client.vkey())
        seen = [entry["id"] for entry in client.tail(after_seq=submitted.seq - 1, poll=0.1, stop_after=0.5)]
        assert seen[:3] == [submitted.id, batch[0].id, batch[1].id]

    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(event(910_100 + i).canonical_bytes() + b"\n" for i in range(5)))
    out = stave("submit", "--server", server.url, str(path))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.decode().splitlines()
    assert len(lines) == 5
    got = stave("get", "--server", server.url, lines[0].split()[1])
    assert admit(got.stdout.strip()).id == lines[0].split()[1]
    tailed = stave("tail", "--server", server.url, "--after", lines[0].split()[0], "--for", "0.5")
    assert [json.loads(line)["id"] for line in tailed.stdout.decode().splitlines()][:4] == [
        line.split()[1] for line in lines[1:]
    ]


def test_the_server_anchors_checkpoints_on_its_own(tmp_path: Path) -> None:
    """`stave serve` runs the checkpoint and anchoring loops: a bundle soon carries a receipt."""
    server = StaveServer(tmp_path / "anchoring", env={"STAVE_ANCHOR_INTERVAL": "0.5"}).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client, StaveClient(server.url) as writer:
            created = post(writer, "/events", event(920_000).canonical_bytes(), JSON).json()
            deadline = time.monotonic() + 20
            while True:
                response = client.get(f"/events/{created['id']}/proof")
                if response.status_code == 200 and response.json()["anchors"]:
                    break
                assert time.monotonic() < deadline, response.text
                time.sleep(0.3)
            bundle = response.json()
            steps = verify_bundle(bundle, client.get("/log/vkey").text.strip())
            assert any(step.name.endswith("receipt") for step in steps)
            assert bundle["anchors"][0]["receipt"]["kind"] == "witness"
    finally:
        server.stop()


def test_a_killed_server_loses_no_acknowledged_event(tmp_path: Path) -> None:
    server = StaveServer(tmp_path / "crash").start()
    acknowledged: dict[str, int] = {}
    with StaveClient(server.url) as writer:
        for number in range(30):
            response = post(writer, "/events", event(930_000 + number).canonical_bytes(), JSON)
            assert response.status_code == 201
            acknowledged[response.json()["id"]] = response.json()["seq"]
    server.kill()  # SIGKILL: no shutdown, no flush
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for event_id in acknowledged:
                got = client.get(f"/events/{event_id}")
                assert got.status_code == 200
                assert admit(got.content).id == event_id
            listed = client.get("/events", params={"limit": 1000}).json()["events"]
            assert {item["id"]: item["seq"] for item in listed} == acknowledged
    finally:
        server.stop()


def test_writes_need_a_credential_and_a_fresh_signature(client: httpx.Client, writer: StaveClient) -> None:
    body = event(940_000).canonical_bytes()
    anonymous = client.post("/events", content=body, headers=JSON)
    assert anonymous.status_code == 401
    assert anonymous.json()["reason"] == "auth-required"
    headers = sign_request(writer._key, writer.credential(), "POST", "/events", body, time.time())
    first = client.post("/events", content=body, headers={**headers, **JSON})
    assert first.status_code == 201
    replayed = client.post("/events", content=body, headers={**headers, **JSON})
    assert replayed.status_code == 401
    assert "nonce already used" in replayed.json()["detail"]
    other = event(940_001).canonical_bytes()  # a signature over one body does not cover another
    signed_for_body = sign_request(writer._key, writer.credential(), "POST", "/events", body, time.time())
    swapped = client.post("/events", content=other, headers={**signed_for_body, **JSON})
    assert swapped.status_code == 401
    stale = sign_request(writer._key, writer.credential(), "POST", "/events", other, time.time() - 3600)
    assert client.post("/events", content=other, headers={**stale, **JSON}).status_code == 401
    forged = writer.credential()[:-4] + ("AAAA" if not writer.credential().endswith("AAAA") else "BBBB")
    forged_headers = sign_request(writer._key, writer.credential(), "POST", "/events", other, time.time())
    forged_headers["Authorization"] = f"Stave {forged}"
    assert client.post("/events", content=other, headers={**forged_headers, **JSON}).status_code == 401
    thief_key = os.urandom(32)  # the token without its holder's key is useless
    stolen = sign_request(thief_key, writer.credential(), "POST", "/events", other, time.time())
    assert client.post("/events", content=other, headers={**stolen, **JSON}).status_code == 401


def test_a_solved_challenge_is_single_use(client: httpx.Client) -> None:
    from stave.auth import Challenge, solve

    holder = StaveClient(str(client.base_url))
    challenge = Challenge.from_json(client.post("/auth/challenge").json())
    counter = solve(challenge, holder.public_key)
    public_key = base64.urlsafe_b64encode(holder.public_key).decode().rstrip("=")
    body = {"challenge": challenge.to_json(), "public_key": public_key, "counter": counter}
    assert client.post("/auth/credential", json=body).status_code == 201
    again = client.post("/auth/credential", json=body)
    assert again.status_code == 401
    assert again.json()["reason"] == "pow"
    wrong = dict(body, counter=counter + 1)
    assert client.post("/auth/credential", json=wrong).status_code in (401,)
    holder.close()


def test_a_flood_is_rate_limited_with_retry_after_and_raises_the_price(tmp_path: Path) -> None:
    server = StaveServer(
        tmp_path / "flood",
        env={"STAVE_AUTH_RATE_PER_ADDRESS": "5", "STAVE_AUTH_BURST": "10", "STAVE_AUTH_DIFFICULTY": "8"},
    ).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            first = client.post("/auth/challenge")
            assert first.status_code == 200
            assert first.json()["difficulty"] == 8
            statuses = [client.post("/auth/challenge").status_code for _ in range(30)]
            assert statuses[:9] == [200] * 9
            limited = client.post("/auth/challenge")
            assert limited.status_code == 429
            assert limited.json()["reason"] == "rate-limited"
            retry_after = int(limited.headers["retry-after"])
            assert retry_after >= 1
            # Repeated abuse raises this address's proof-of-work price once it may ask again.
            time.sleep(retry_after)
            deadline = time.monotonic() + 10
            while (after := client.post("/auth/challenge")).status_code == 429 and time.monotonic() < deadline:
                time.sleep(0.5)
            assert after.status_code == 200
            assert after.json()["difficulty"] > 8
    finally:
        server.stop()
