"""The SQL log: sequencing exactly once, proofs that verify, checkpoints, tiles, and verify()."""

from __future__ import annotations

import base64
import hashlib
import threading
import uuid
from pathlib import Path

import pytest

from stave.db import open_database
from stave.db.schema import log_nodes
from stave.errors import ProofError
from stave.log import merkle, tiles
from stave.log.note import Signer, open_checkpoint
from stave.log.sequencer import Log, event_leaf
from tests.store.events import event

SIGNER = Signer(name="test.stave/log", private_key=hashlib.sha256(b"log test key").digest())


def make_log(tmp_path: Path) -> Log:
    return Log(open_database(f"sqlite:///{tmp_path}/stave.db"), SIGNER)


def test_sequence_numbers_are_given_once_in_order(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    first = log.append([event(i) for i in range(5)])
    assert [(s.seq, s.new) for s in first] == [(i, True) for i in range(5)]
    again = log.append([event(3), event(5), event(5), event(0)])
    assert [(s.seq, s.new) for s in again] == [(3, False), (5, True), (5, True), (0, False)]
    assert log.size() == 6
    assert log.lookup(event(5).id) == 5
    assert [e.event_id for e in log.entries(after_seq=2, limit=2)] == [event(3).id, event(4).id]
    assert log.entries(event_type="LIKE") == []


def test_root_equals_the_rfc_reference_after_every_batch(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    leaves: list[bytes] = []
    for batch in ([0], [1, 2], [3, 4, 5, 6, 7, 8], [9], list(range(10, 37))):
        log.append([event(i) for i in batch])
        leaves += [event_leaf(event(i).id) for i in batch]
        assert log.root() == merkle.reference_root(leaves)
        assert log.root_at(len(leaves)) == merkle.reference_root(leaves)
    for size in (1, 7, 16, 33):
        assert log.root_at(size) == merkle.reference_root(leaves[:size])


def test_inclusion_and_consistency_proofs_verify(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    log.append([event(i) for i in range(40)])
    for size in (1, 2, 17, 40):
        root = log.root_at(size)
        for index in range(size):
            proof = log.inclusion_proof(index, size)
            merkle.verify_inclusion(event_leaf(event(index).id), index, size, proof, root)
    for old, new in [(0, 40), (1, 40), (7, 8), (13, 40), (40, 40)]:
        merkle.verify_consistency(
            old, new, log.root_at(old) if old else merkle.EMPTY_ROOT, log.root_at(new), log.consistency_proof(old, new)
        )
    with pytest.raises(ProofError, match="beyond"):
        log.inclusion_proof(0, 41)
    with pytest.raises(ProofError):
        log.inclusion_proof(40, 40)


def test_checkpoints_are_signed_notes_over_the_tree(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    empty = log.publish_checkpoint()
    assert (empty.size, empty.root) == (0, merkle.EMPTY_ROOT)
    log.append([event(i) for i in range(3)])
    checkpoint = log.publish_checkpoint()
    assert log.publish_checkpoint() == checkpoint  # nothing new: the same checkpoint
    opened = open_checkpoint(checkpoint.note, [SIGNER.verifier()], "test.stave/log")
    assert (opened.size, opened.root_hash) == (3, log.root())
    assert checkpoint.note.splitlines()[:3] == ["test.stave/log", "3", base64.b64encode(log.root()).decode()]
    assert log.vkey().startswith("test.stave/log+")
    assert [c.size for c in log.checkpoints()] == [0, 3]


def test_tiles_and_entry_bundles(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    log.append([event(i) for i in range(300)])
    full = log.tile(0, 0, None)
    assert len(full) == 256 * 32
    assert full[:32] == event_leaf(event(0).id)
    partial = log.tile(0, 1, 44)
    assert len(partial) == 44 * 32
    assert log.tile(1, 0, 1) == log.tile(1, 0, 1)
    bundle = tiles.decode_entry_bundle(log.entry_bundle(1, 44))
    assert bundle[0] == bytes.fromhex(event(256).id)
    with pytest.raises(ProofError):
        log.tile(0, 1, None)  # not complete yet
    with pytest.raises(ProofError):
        log.entry_bundle(1, 45)


def test_verify_finds_corrupted_nodes_and_missing_ones(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    log.append([event(i) for i in range(20)])
    log.publish_checkpoint()
    assert log.verify().ok
    with log.database.write() as connection:
        connection.execute(log_nodes.update().where(log_nodes.c.node == (1 << 48) | 3).values(hash=b"\x00" * 32))
        connection.execute(log_nodes.delete().where(log_nodes.c.node == 7))
    report = log.verify()
    assert not report.ok
    assert report.bad_nodes == [(1, 3)]
    assert report.missing_nodes == [(0, 7)]


def test_concurrent_appenders_never_share_a_number(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/stave.db"
    logs = [Log(open_database(url), SIGNER) for _ in range(4)]

    def work(worker: int) -> None:
        for batch in range(10):
            logs[worker].append([event(1000 + worker * 100 + batch * 5 + i) for i in range(5)])

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log = logs[0]
    assert log.size() == 200
    seqs = sorted(log.lookup_many([event(1000 + w * 100 + i).id for w in range(4) for i in range(50)]).values())
    assert seqs == list(range(200))
    assert log.verify().ok


@pytest.mark.postgres
def test_the_same_log_on_postgresql(postgres_server) -> None:
    name = f"stave_{uuid.uuid4().hex[:12]}"
    admin = open_database(postgres_server.dsn, migrate=False)
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.close()
    url = postgres_server.dsn.rsplit("/", 1)[0] + f"/{name}"
    logs = [Log(open_database(url), SIGNER) for _ in range(3)]

    def work(worker: int) -> None:
        for batch in range(5):
            logs[worker].append([event(5000 + worker * 100 + batch * 4 + i) for i in range(4)])

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log = logs[0]
    assert log.size() == 60
    assert sorted(
        log.lookup_many([event(5000 + w * 100 + i).id for w in range(3) for i in range(20)]).values()
    ) == list(range(60))
    checkpoint = log.publish_checkpoint()
    merkle.verify_inclusion(
        event_leaf(log.entries(after_seq=9, limit=1)[0].event_id), 10, 60, log.inclusion_proof(10, 60), checkpoint.root
    )
    assert log.verify().ok
    for one in logs:
        one.database.close()
