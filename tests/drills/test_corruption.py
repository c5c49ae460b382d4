"""Corruption drill: flip bytes in stored copies (local files, S3 objects) and in the log's stored
node hashes (``log_nodes.hash``); reads never return a wrong event, and ``stave store scrub`` and
``stave log verify`` report every injected fault.

The server stores on two local directories and SeaweedFS (``min_redundancy = 2``). After a load:

1. **Detection** (server stopped): one byte flipped in K copies (each a different event, on a
   random backend) and in M stored tree nodes. ``stave store scrub`` must count exactly K
   corrupt copies, on the backends they were injected on, and repair them; ``stave log verify``
   must name exactly the M nodes. A second scrub is clean; the node hashes are restored from the
   copy taken before the flips (stave keeps no second copy of its tree) and the log verifies.
2. **Reads** (server running): faults injected again, and for two events on *every* backend.
   Every ``GET /events/{id}`` is either exactly the submitted bytes or, for the two with no good
   copy left, a 503 saying so: never a wrong event. Proof bundles that would use a corrupt node
   fail ``verify_bundle``; none verifies. Then scrub names the two as unrecoverable; once their
   bytes are restored on one backend (a restore from backup), scrub repairs every copy and every
   invariant holds again.
"""

from __future__ import annotations

import random
import sqlite3
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from stave.errors import StaveError
from stave.log.bundle import verify_bundle
from stave.log.sequencer import _node_id
from tests.drills.toolkit import (
    DRILL_ENV,
    Load,
    check_offline,
    check_reads,
    drill_server,
    local_objects,
    log_verify,
    record,
    s3_objects,
    s3_url,
    scrub,
    signed_events,
    wait_for_checkpoint,
)
from tests.servers import SeaweedServer

pytestmark = [pytest.mark.s3]

SEED = 20261206


class Backends:
    """The three durable backends of the drill, with a way to flip and restore bytes in each."""

    def __init__(self, tmp_path: Path, s3: SeaweedServer) -> None:
        self.local = {"a": tmp_path / "a", "b": tmp_path / "b"}
        self.s3 = s3
        self.bucket = f"drill-corrupt-{uuid.uuid4().hex[:8]}"
        self.names = ["a", "b", "s3"]
        import boto3

        self.client = boto3.client("s3", **s3.boto3_kwargs)
        self._s3_keys: dict[str, str] = {}
        self._files: dict[str, dict[str, Path]] = {}

    def file(self, name: str, event_id: str) -> Path:
        if event_id not in self._files.get(name, {}):
            self._files[name] = local_objects(self.local[name])
        return self._files[name][event_id]

    def s3_key(self, event_id: str) -> str:
        if event_id not in self._s3_keys:
            self._s3_keys = s3_objects(self.s3, self.bucket)
        return self._s3_keys[event_id]

    @property
    def durable(self) -> str:
        return " ".join([*(f"file://{path}" for path in self.local.values()), s3_url(self.s3, self.bucket)])

    def scrub_name(self, name: str) -> str:
        return f"file:{self.local[name]}" if name in self.local else f"s3:{self.bucket}/events"

    def read(self, name: str, event_id: str) -> bytes:
        if name in self.local:
            return self.file(name, event_id).read_bytes()
        body: bytes = self.client.get_object(Bucket=self.bucket, Key=self.s3_key(event_id))["Body"].read()
        return body

    def write(self, name: str, event_id: str, data: bytes) -> None:
        if name in self.local:
            self.file(name, event_id).write_bytes(data)
        else:
            self.client.put_object(Bucket=self.bucket, Key=self.s3_key(event_id), Body=data)

    def flip(self, name: str, event_id: str, rng: random.Random) -> None:
        data = bytearray(self.read(name, event_id))
        data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
        self.write(name, event_id, bytes(data))


def flip_nodes(database: Path, count: int, rng: random.Random) -> dict[int, bytes]:
    """Flip one byte in ``count`` stored node hashes; return the original hash of each (by node key)."""
    with sqlite3.connect(database) as connection:
        keys = [row[0] for row in connection.execute("SELECT node FROM log_nodes")]
        originals: dict[int, bytes] = {}
        for key in rng.sample(keys, count):
            (digest,) = connection.execute("SELECT hash FROM log_nodes WHERE node = ?", (key,)).fetchone()
            originals[key] = bytes(digest)
            flipped = bytearray(digest)
            flipped[rng.randrange(len(flipped))] ^= rng.randrange(1, 256)
            connection.execute("UPDATE log_nodes SET hash = ? WHERE node = ?", (bytes(flipped), key))
    return originals


def restore_nodes(database: Path, originals: dict[int, bytes]) -> None:
    with sqlite3.connect(database) as connection:
        for key, digest in originals.items():
            connection.execute("UPDATE log_nodes SET hash = ? WHERE node = ?", (digest, key))


def corruption_drill(
    tmp_path: Path, name: str, s3: SeaweedServer, count: int, copy_faults: int, node_faults: int
) -> None:
    rng = random.Random(SEED)
    backends = Backends(tmp_path, s3)
    env = {"STAVE_STORE_DURABLE": backends.durable, "STAVE_STORE_MIN_REDUNDANCY": "2"}
    server = drill_server(tmp_path / "data", env).start()
    database = tmp_path / "data" / "stave.db"
    figures: dict[str, Any] = {}
    try:
        outcome = Load(server.url, signed_events(4_000_000, count), clients=32, seconds=60).run()
        acknowledged = outcome.acknowledged
        assert len(acknowledged) == count, outcome.figures()
        wait_for_checkpoint(server.url, count)
        server.stop()
        ids = sorted(acknowledged)

        # 1. Detection: every injected fault is found, on the right backend, and repaired.
        injected = {(event_id, rng.choice(backends.names)) for event_id in rng.sample(ids, copy_faults)}
        for event_id, backend in injected:
            backends.flip(backend, event_id, rng)
        nodes = flip_nodes(database, node_faults, rng)
        code, bad_nodes, output = log_verify(server.data_dir, {**env})
        assert code == 1, output
        assert sorted(bad_nodes) == sorted(_node_id(key) for key in nodes), output
        found = scrub(server.data_dir, env)
        per_backend = Counter(backend for _, backend in injected)
        for backend in backends.names:
            counts = found.backends[backends.scrub_name(backend)]
            assert counts.corrupt == per_backend[backend], found.output
            assert counts.repaired == per_backend[backend], found.output
            assert counts.missing == counts.unavailable == counts.orphaned == 0, found.output
        assert found.total("corrupt") == len(injected), found.output
        assert not found.unrecoverable, found.output
        restore_nodes(database, nodes)  # checked clean at the end, with the second round's faults undone too
        figures["detection"] = {
            "copy_faults_injected": len(injected),
            "copy_faults_detected_by_scrub": found.total("corrupt"),
            "copy_faults_repaired": found.total("repaired"),
            "node_faults_injected": len(nodes),
            "node_faults_detected_by_log_verify": len(bad_nodes),
        }

        # 2. Reads: never a wrong event, whatever is corrupt.
        lost_everywhere = rng.sample(ids, 2)
        for event_id in lost_everywhere:
            for backend in backends.names:
                backends.flip(backend, event_id, rng)
        single = {(event_id, rng.choice(backends.names)) for event_id in rng.sample(ids, copy_faults)}
        single = {(event_id, backend) for event_id, backend in single if event_id not in lost_everywhere}
        for event_id, backend in single:
            backends.flip(backend, event_id, rng)
        nodes = flip_nodes(database, node_faults, rng)
        server.start()
        reads = check_reads(server.url, {event_id: outcome.sent[event_id] for event_id in ids})
        assert reads == {200: len(ids) - 2, 503: 2}, reads
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for event_id in lost_everywhere:
                answer = http.get(f"/events/{event_id}")
                assert answer.status_code == 503, answer.text
                assert "no verified copy" in answer.json()["detail"], answer.text
                assert int(answer.headers["retry-after"]) >= 1
            proofs = prove_all(http, ids)
        assert proofs.total() == len(ids), proofs
        assert proofs["verified"] < len(ids), "no proof used a corrupt node: the drill did not test proofs"
        server.stop()
        damaged = scrub(server.data_dir, env)
        assert sorted(damaged.unrecoverable) == sorted(lost_everywhere), damaged.output
        for event_id in lost_everywhere:  # restored from a backup, onto one backend
            backends.write("a", event_id, outcome.sent[event_id])
        restore_nodes(database, nodes)
        healed = scrub(server.data_dir, env)
        assert not healed.unrecoverable, healed.output
        assert healed.total("missing") == healed.total("unavailable") == 0, healed.output
        figures["reads"] = {
            "copy_faults_injected": len(single) + 3 * len(lost_everywhere),
            "events_with_no_good_copy": len(lost_everywhere),
            "reads_served_verified": reads[200],
            "reads_refused_503": reads[503],
            "wrong_events_served": 0,
            "node_faults_injected": len(nodes),
            "proofs_verified": proofs["verified"],
            "proofs_rejected_by_verify_bundle": proofs["rejected_by_verify_bundle"],
            "proofs_refused_by_server": proofs["refused_by_server"],
            "unrecoverable_reported_by_scrub": len(damaged.unrecoverable),
        }

        # Afterwards the store and the log are whole again (the reads above checked every event).
        checked = check_offline(server.data_dir, {**DRILL_ENV, **env})
    finally:
        server.stop()
    figures = {**outcome.figures(), "lost": 0, "final_scrub_before_repair": checked.scrub_first, **figures}
    print(f"\n{name}: {figures}")
    record(name, figures)


def prove_all(http: httpx.Client, ids: list[str]) -> Counter[str]:
    """Fetch and verify every proof bundle: each verifies, or is refused by the server or rejected by verify_bundle."""
    vkey = http.get("/log/vkey").text.strip()
    outcomes: Counter[str] = Counter()
    for event_id in ids:
        response = http.get(f"/events/{event_id}/proof")
        if response.status_code != 200:
            assert response.status_code < 500 or response.status_code == 503, response.text
            outcomes["refused_by_server"] += 1
            continue
        try:
            verify_bundle(response.json(), vkey)
        except StaveError:
            outcomes["rejected_by_verify_bundle"] += 1
        else:
            outcomes["verified"] += 1
    return outcomes


def test_corruption_is_never_served_and_always_found(tmp_path: Path, s3_server: SeaweedServer) -> None:
    corruption_drill(tmp_path, "corruption-short", s3_server, count=200, copy_faults=12, node_faults=5)


@pytest.mark.drill
@pytest.mark.timeout(1800)
def test_corruption_drill(tmp_path: Path, s3_server: SeaweedServer) -> None:
    corruption_drill(tmp_path, "corruption", s3_server, count=3_000, copy_faults=150, node_faults=40)
