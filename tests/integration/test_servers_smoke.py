"""Smoke tests of tests/servers: each real server does a real round trip, restarts where it
was, and leaves nothing behind. Install the servers first: scripts/install-servers.sh."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import botocore.exceptions
import pytest

from tests.servers import (
    AnvilServer,
    IpfsServer,
    PostgresServer,
    RedisServer,
    SeaweedServer,
    Server,
    descendants,
    parse_cid,
    port_is_free,
    port_listening,
    process_alive,
    start_time,
)


@pytest.mark.redis
def test_redis_round_trip(redis_server: RedisServer) -> None:
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    value = bytes(range(256))  # binary-safe
    assert redis_server.command("SET", "stave:key", value) == "OK"
    assert redis_server.command("GET", "stave:key") == value
    assert redis_server.command("INCR", "stave:counter") == 1
    assert redis_server.command("RPUSH", "stave:list", "a", "b") == 2
    assert redis_server.command("LRANGE", "stave:list", 0, -1) == [b"a", b"b"]


@pytest.mark.postgres
def test_postgres_round_trip(postgres_server: PostgresServer) -> None:
    assert postgres_server.dsn == f"postgresql://postgres@127.0.0.1:{postgres_server.port}/postgres"
    assert postgres_server.psql("SHOW server_version_num").startswith("15")
    postgres_server.psql(
        "CREATE TABLE smoke_events (id bigint PRIMARY KEY, body jsonb NOT NULL);"
        """INSERT INTO smoke_events VALUES (1, '{"a": 1}'), (2, '{"a": 2}');"""
    )
    assert postgres_server.psql("SELECT sum((body->>'a')::int) FROM smoke_events") == "3"
    with pytest.raises(Exception, match="duplicate key"):
        postgres_server.psql("INSERT INTO smoke_events VALUES (1, '{}')")


@contextlib.contextmanager
def _s3_client(server: SeaweedServer, **overrides: str) -> Iterator[Any]:
    boto3 = pytest.importorskip("boto3", reason="boto3 is installed by scripts/install-servers.sh s3")
    client = boto3.client("s3", **{**server.boto3_kwargs, **overrides})
    try:
        yield client
    finally:
        client.close()  # else its pooled sockets reach the GC: a ResourceWarning, an error here


@pytest.mark.s3
def test_s3_round_trip(s3_server: SeaweedServer) -> None:
    wrong_secret = {"aws_secret_access_key": "not-the-secret"}
    with _s3_client(s3_server) as s3, _s3_client(s3_server, **wrong_secret) as wrong:
        from botocore.exceptions import ClientError

        s3.create_bucket(Bucket="smoke-round-trip")
        s3.put_object(Bucket="smoke-round-trip", Key="events/1", Body=b"first", IfNoneMatch="*")
        # Create-only writes are enforced: a second If-None-Match: * write of the key fails.
        with pytest.raises(ClientError) as failed:
            s3.put_object(Bucket="smoke-round-trip", Key="events/1", Body=b"second", IfNoneMatch="*")
        assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
        assert s3.get_object(Bucket="smoke-round-trip", Key="events/1")["Body"].read() == b"first"
        listed = s3.list_objects_v2(Bucket="smoke-round-trip")["Contents"]
        assert [o["Key"] for o in listed] == ["events/1"]
        # Wrong credentials and anonymous requests are refused.
        with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
            wrong.list_buckets()
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(f"{s3_server.endpoint_url}/smoke-round-trip/events/1", timeout=5)  # noqa: S310
    anonymous.value.close()
    assert anonymous.value.code == 403


@pytest.mark.ipfs
def test_ipfs_round_trip(ipfs_server: IpfsServer) -> None:
    data = b"stave smoke block " + os.urandom(16)
    # format=raw for js-ipfs, cid-codec=raw for Kubo: a CIDv1 raw block either way.
    put = json.loads(ipfs_server.api("block/put", data, format="raw", cid_codec="raw", mhtype="sha2-256", pin="true"))
    version, codec, multihash = parse_cid(put["Key"])
    assert (version, codec) == (1, 0x55)
    assert multihash == bytes([0x12, 0x20]) + hashlib.sha256(data).digest()
    assert ipfs_server.api("block/get", arg=put["Key"]) == data
    pinned = json.loads(ipfs_server.api("pin/ls", arg=put["Key"]))["Keys"]
    assert [parse_cid(k) for k in pinned] == [parse_cid(put["Key"])]  # js-ipfs answers in base58


@pytest.mark.evm
def test_evm_round_trip(evm_server: AnvilServer) -> None:
    assert int(evm_server.rpc("eth_chainId"), 16) == evm_server.chain_id == 31337
    assert int(evm_server.rpc("eth_blockNumber"), 16) == 0
    sender, receiver = evm_server.accounts[:2]
    before = int(evm_server.rpc("eth_getBalance", receiver, "latest"), 16)
    tx = evm_server.rpc("eth_sendTransaction", {"from": sender, "to": receiver, "value": hex(10**18)})
    receipt = evm_server.wait_for_receipt(tx)
    assert receipt["status"] == "0x1"
    assert int(evm_server.rpc("eth_blockNumber"), 16) == 1
    assert int(evm_server.rpc("eth_getBalance", receiver, "latest"), 16) == before + 10**18


@pytest.mark.redis
def test_redis_stop_and_start_on_the_same_port(fresh_redis_server: RedisServer) -> None:
    server = fresh_redis_server
    port, url = server.port, server.url
    server.command("SET", "k", "v")
    server.stop()
    assert not server.running
    assert port_is_free(port)
    with pytest.raises(ConnectionRefusedError):
        server.command("PING")
    server.start()
    assert (server.port, server.url) == (port, url)
    assert server.command("PING") == "PONG"
    assert server.command("GET", "k") is None  # not persistent: a restart empties it


@pytest.mark.redis
def test_persistent_redis_keeps_data_across_a_crash() -> None:
    with RedisServer(persistent=True) as server:
        server.command("SET", "k", "v")
        server.kill()
        server.start()
        assert server.command("GET", "k") == b"v"


@pytest.mark.s3
def test_s3_stop_and_start_on_the_same_port(fresh_s3_server: SeaweedServer) -> None:
    server = fresh_s3_server
    endpoint = server.endpoint_url
    with _s3_client(server) as s3:
        s3.create_bucket(Bucket="smoke-restart")
        s3.put_object(Bucket="smoke-restart", Key="k", Body=b"kept")
        server.stop()
        assert all(port_is_free(p) for p in server.all_ports())
        server.start()
        assert server.endpoint_url == endpoint
        # SeaweedFS answers 500 for a moment after a restart while its parts reconnect: retry.
        deadline = time.monotonic() + 20
        while True:
            try:
                kept = s3.get_object(Bucket="smoke-restart", Key="k")["Body"].read()  # same client, same data
                break
            except botocore.exceptions.ClientError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        assert kept == b"kept"


@pytest.mark.parametrize(
    "server_class",
    [
        pytest.param(RedisServer, marks=pytest.mark.redis, id="redis"),
        pytest.param(PostgresServer, marks=pytest.mark.postgres, id="postgres"),
        pytest.param(SeaweedServer, marks=pytest.mark.s3, id="s3"),
        pytest.param(IpfsServer, marks=pytest.mark.ipfs, id="ipfs"),
        pytest.param(AnvilServer, marks=pytest.mark.evm, id="evm"),
    ],
)
def test_leaving_the_context_leaves_nothing_behind(server_class: type[Server]) -> None:
    if (reason := server_class.unsupported_reason()) is not None:
        pytest.skip(reason)
    with server_class() as server:
        ports = server.all_ports()
        assert ports
        assert all(port_listening(p) for p in ports)
        leader = server.pid
        assert leader is not None
        processes = [(leader, start_time(leader)), *descendants(leader)]
        tmp_dir = server.tmp_dir
    assert not server.running
    assert all(port_is_free(p) for p in ports)
    assert not [pid for pid, started in processes if process_alive(pid, started)], "processes left running"
    assert not tmp_dir.exists()
