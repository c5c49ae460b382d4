"""A real relay process in front of a real server that accepts writes only from relays."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stave.client import ServerError, StaveClient
from tests.server.process import StaveServer
from tests.servers._process import free_ports
from tests.store.events import event
from tests.unit.test_cli import stave


@pytest.fixture
def relayed(tmp_path: Path) -> Iterator[tuple[StaveServer, str]]:
    server = StaveServer(tmp_path / "server", env={"STAVE_AUTH_RELAYS_ONLY": "true"}).start()
    issued = stave(
        "--data-dir",
        str(server.data_dir),
        "credential",
        "issue",
        "--kind",
        "relay",
        "--key-file",
        str(tmp_path / "relay.key"),
        "--out",
        str(tmp_path / "relay.credential"),
    )
    assert issued.returncode == 0, issued.stderr
    port = free_ports(1)[0]
    log = tmp_path / "relay.log"
    with open(log, "ab") as output:
        relay = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stave.cli",
                "--data-dir",
                str(tmp_path / "relay-data"),
                "relay",
                "--upstream",
                server.url,
                "--credential-file",
                str(tmp_path / "relay.credential"),
                "--key-file",
                str(tmp_path / "relay.key"),
                "--port",
                str(port),
            ],
            stdout=output,
            stderr=output,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/info", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert relay.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    yield server, url
    os.killpg(relay.pid, signal.SIGTERM)
    relay.wait(timeout=15)
    server.stop()


def _admin(server: StaveServer, tmp_path: Path) -> StaveClient:
    from stave.cli.auth_cmds import load_holder_key

    key_file = tmp_path / "admin.key"
    issued = stave(
        "--data-dir", str(server.data_dir), "credential", "issue", "--kind", "admin", "--key-file", str(key_file)
    )
    assert issued.returncode == 0, issued.stderr
    return StaveClient(server.url, key=load_holder_key(key_file), token=issued.stdout.decode().strip())


def _approve(server: StaveServer, tmp_path: Path) -> None:
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from stave.cli.auth_cmds import load_holder_key

    admin = _admin(server, tmp_path)
    seed = load_holder_key(tmp_path / "relay.key")
    raw = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    relay_key = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    body = json.dumps({"public_key": relay_key, "name": "test relay"}).encode()
    assert admin.signed_request("POST", "/admin/relays", body, "application/json").status_code == 201
    assert (
        admin.signed_request("POST", f"/admin/relays/{relay_key}/approve", b"", "application/json").status_code == 200
    )
    admin.close()


def test_apps_write_through_an_approved_relay_only(relayed: tuple[StaveServer, str], tmp_path: Path) -> None:
    server, relay_url = relayed
    with StaveClient(relay_url) as early:  # registered nowhere yet: the server refuses the relay
        with pytest.raises(ServerError) as refused:
            early.submit(event(950_100))
        assert refused.value.status == 403
    _approve(server, tmp_path)
    time.sleep(5.5)  # the server caches approved relays for 5 s
    with StaveClient(relay_url, request_id="relay-e2e-0001") as via_relay:
        submitted = via_relay.submit(event(950_000))
        assert submitted.seq is not None
        assert via_relay.get(submitted.id).id == submitted.id  # reads pass through the relay
        batch = via_relay.submit_batch([event(950_001), event(950_002)])
        assert all(item.seq is not None for item in batch)
    with StaveClient(server.url) as direct:  # an app credential straight from the server is not enough
        with pytest.raises(ServerError) as info:
            direct.submit(event(950_003))
        assert info.value.status == 403
        assert info.value.reason == "restricted"
    assert "relay-e2e-0001" in (server.data_dir / "server.log").read_text()  # the request id passed through


def test_the_relay_refuses_unauthenticated_apps(relayed: tuple[StaveServer, str]) -> None:
    _, relay_url = relayed
    response = httpx.post(
        f"{relay_url}/events", content=event(950_010).canonical_bytes(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 401
    assert response.json()["reason"] == "auth-required"


def test_the_relay_reads_strictly_and_within_limits(relayed: tuple[StaveServer, str]) -> None:
    """The relay is a boundary too: the servers' strict JSON, body, header and coding limits hold there."""
    _, relay_url = relayed
    with httpx.Client(base_url=relay_url, timeout=30) as client:
        duplicate = b'{"counter": 1, "counter": 2, "challenge": {}, "public_key": "x"}'
        refused = client.post("/auth/credential", content=duplicate, headers={"content-type": "application/json"})
        assert refused.status_code == 400
        assert "duplicate" in refused.json()["detail"]
        huge = client.post("/auth/credential", content=b"{" + b" " * 5000 + b"}")
        assert huge.status_code == 413
        # A declared 65 MiB body is refused before any of it is read (httpx will not send a lying header).
        host, port = relay_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as raw:
            raw.sendall(
                b"POST /events HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {65 << 20}\r\n\r\n".encode()
            )
            assert raw.recv(4096).startswith(b"HTTP/1.1 413 ")
        gzip = client.post(
            "/events",
            content=event(950_011).canonical_bytes(),
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )
        assert gzip.status_code == 415
        headers = client.get("/info", headers={"x-padding": "p" * (40 << 10)})
        assert headers.status_code == 431


def test_admin_routes(relayed: tuple[StaveServer, str], tmp_path: Path) -> None:
    server, _ = relayed
    admin = _admin(server, tmp_path)
    config = {"fields": ["release_name", "tracks"], "default_format": "LP"}
    first = admin.signed_request("PUT", "/admin/labels/apple", json.dumps(config).encode(), "application/json")
    assert first.status_code == 201
    assert first.json()["version"] == 1
    config["default_format"] = "CD"
    assert (
        admin.signed_request("PUT", "/admin/labels/apple", json.dumps(config).encode(), "application/json").json()[
            "version"
        ]
        == 2
    )
    current = httpx.get(f"{server.url}/labels/apple").json()  # capture apps fetch it without admin rights
    assert (current["version"], current["config"]["default_format"]) == (2, "CD")
    assert admin.signed_request("GET", "/admin/labels", b"", "").json()["labels"][0]["label"] == "apple"
    assert admin.signed_request("GET", "/admin/store", b"", "").json()["ok"]
    assert "anchors" in admin.signed_request("GET", "/admin/anchors", b"", "").json()
    admin.close()
    with StaveClient(server.url) as app_client:  # an app credential is not an admin one
        response = app_client.signed_request("PUT", "/admin/labels/apple", b"{}", "application/json")
        assert response.status_code == 403
    assert httpx.get(f"{server.url}/admin/relays").status_code == 401
