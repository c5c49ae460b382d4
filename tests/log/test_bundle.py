"""Proof bundles: built from a real log, store and witness ledger; every mutation is refused."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stave.anchor import WitnessLedger
from stave.db import open_database
from stave.errors import IntegrityError, ProofError
from stave.log.anchoring import Anchoring
from stave.log.bundle import verify_bundle
from stave.log.note import Signer
from stave.log.sequencer import Log
from stave.log.service import LogService, load_or_create_signer
from stave.store import ReplicatedStore, StoreIndex
from stave.store.local import LocalStore
from tests.store.events import event

SIGNER = Signer(name="bundle.test/log", private_key=hashlib.sha256(b"bundle test key").digest())


@pytest.fixture
def service(tmp_path: Path) -> Iterator[LogService]:
    database = open_database(f"sqlite:///{tmp_path}/stave.db")
    store = ReplicatedStore(
        [LocalStore(tmp_path / "a", name="a"), LocalStore(tmp_path / "b", name="b")], StoreIndex(database)
    )
    log = Log(database, SIGNER)
    ledger = WitnessLedger(tmp_path / "witness.log")
    one = LogService(log, store, Anchoring(log, [ledger]))
    yield one
    one.close()


def _anchored_bundle(service: LogService) -> dict[str, Any]:
    added = service.add([event(i) for i in range(5)])
    assert [a.seq for a in added] == list(range(5))
    service.anchoring.run_once()  # anchors the checkpoint of size 5
    service.add([event(i) for i in range(5, 9)])
    service.anchoring.run_once()  # and of size 9
    return service.bundle(event(3).id)


def test_a_bundle_verifies_offline_and_against_the_ledger(service: LogService, tmp_path: Path) -> None:
    bundle = _anchored_bundle(service)
    assert bundle["inclusion_proof"]["log_index"] == 3
    assert bundle["inclusion_proof"]["tree_size"] == 9
    assert len(bundle["anchors"]) == 1  # the anchor of size 9 covers it (size 5 is older than the proof)
    steps = verify_bundle(json.loads(json.dumps(bundle)), service.log.vkey())
    assert [s.name for s in steps][:4] == ["event", "leaf", "checkpoint", "inclusion"]
    ledger = WitnessLedger(tmp_path / "witness.log")
    steps = verify_bundle(bundle, service.log.vkey(), check_anchor=ledger.verify)
    assert steps[-1].name == "anchor 0: ledger"


def test_an_earlier_checkpoint_is_covered_by_a_later_anchor_through_consistency(service: LogService) -> None:
    service.add([event(i) for i in range(3)])
    early = service.bundle(event(1).id)
    assert early["anchors"] == []  # nothing anchored yet
    service.add([event(i) for i in range(3, 10)])
    service.anchoring.run_once()
    # A bundle made from the small checkpoint, upgraded with the later anchor:
    anchored = service.anchoring.receipts_from(3)[0]
    receipt, checkpoint = anchored
    consistency = service.log.consistency_proof(3, checkpoint.size)
    early["anchors"] = [
        {
            "receipt": receipt.to_dict(),
            "checkpoint": checkpoint.note,
            "consistency_proof": {
                "old_size": 3,
                "new_size": checkpoint.size,
                "hashes": [base64.b64encode(h).decode() for h in consistency],
            },
        }
    ]
    early["inclusion_proof"]["checkpoint"] = service.log.checkpoint_at(3).note  # type: ignore[union-attr]
    verify_bundle(early, service.log.vkey())


def _flip(text: str) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[0] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


MUTATIONS = {
    "event-body": ("(1)", lambda b: b["event"]["body"].update(comment="edited")),
    "event-sig-dropped": ("(1)", lambda b: b["event"].pop("sig")),
    "proof-hash-bit": (
        "(4)",
        lambda b: b["inclusion_proof"]["hashes"].__setitem__(0, _flip(b["inclusion_proof"]["hashes"][0])),
    ),
    "proof-truncated": ("(4)", lambda b: b["inclusion_proof"]["hashes"].pop()),
    "proof-trailing-garbage": (
        "(4)",
        lambda b: b["inclusion_proof"]["hashes"].append(b["inclusion_proof"]["hashes"][0]),
    ),
    "wrong-index": ("(4)", lambda b: b["inclusion_proof"].update(log_index=2)),
    "root-swapped": ("(3)", lambda b: b["inclusion_proof"].update(root_hash=_flip(b["inclusion_proof"]["root_hash"]))),
    "checkpoint-forged": (
        "(3)",
        lambda b: b["inclusion_proof"].update(checkpoint=b["inclusion_proof"]["checkpoint"].replace("\n9\n", "\n8\n")),
    ),
    "anchor-consistency-bit": (
        "(6)",
        lambda b: b["anchors"][0]["consistency_proof"].update(
            hashes=[_flip(b["anchors"][0]["consistency_proof"]["hashes"][0])]
        ),
    ),
    "receipt-other-checkpoint": ("(7)", lambda b: b["anchors"][0]["receipt"].update(tree_size=5)),
    "not-a-bundle": ("(0)", lambda b: b.update(v=2)),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_every_mutation_is_refused_naming_its_step(service: LogService, name: str) -> None:
    bundle = _anchored_bundle(service)
    if name == "anchor-consistency-bit":
        service.add([event(i) for i in range(9, 12)])
        service.anchoring.run_once()
        bundle = service.bundle(event(3).id)
        bundle["inclusion_proof"] = service.bundle(event(3).id)["inclusion_proof"]
        small = service.log.checkpoint_at(9)
        assert small is not None
        bundle["inclusion_proof"].update(
            tree_size=9,
            root_hash=small.root_b64,
            checkpoint=small.note,
            hashes=[base64.b64encode(h).decode() for h in service.log.inclusion_proof(3, 9)],
        )
        receipt, anchored = service.anchoring.receipts_from(12)[0]
        bundle["anchors"] = [
            {
                "receipt": receipt.to_dict(),
                "checkpoint": anchored.note,
                "consistency_proof": {
                    "old_size": 9,
                    "new_size": 12,
                    "hashes": [base64.b64encode(h).decode() for h in service.log.consistency_proof(9, 12)],
                },
            }
        ]
        verify_bundle(copy.deepcopy(bundle), service.log.vkey())  # the unmutated one is fine
    step, mutate = MUTATIONS[name]
    mutate(bundle)
    with pytest.raises(ProofError) as info:
        verify_bundle(bundle, service.log.vkey())
    assert str(info.value).startswith(step), str(info.value)


def test_another_logs_key_is_refused(service: LogService) -> None:
    bundle = _anchored_bundle(service)
    other = Signer(name="bundle.test/log", private_key=hashlib.sha256(b"another key").digest())
    with pytest.raises(ProofError, match=r"^\(3\)"):
        verify_bundle(bundle, other.verifier_key())


def test_no_checkpoint_covering_the_event_yet(service: LogService) -> None:
    service.add([event(1)], checkpoint=False)
    with pytest.raises(ProofError, match="no published checkpoint covers"):
        service.bundle(event(1).id)


def test_signer_key_file_is_made_once_0600_and_tied_to_its_origin(tmp_path: Path) -> None:
    path = tmp_path / "log" / "signer.key"
    first = load_or_create_signer(path, "a.example/log")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert load_or_create_signer(path, "a.example/log").verifier_key() == first.verifier_key()
    with pytest.raises(Exception, match="cannot change"):
        load_or_create_signer(path, "b.example/log")


def test_a_damaged_stored_node_is_a_server_fault_not_a_bad_bundle(service: LogService) -> None:
    """The service checks what it serves against the signed root: a flipped node hash in the
    database is refused as an integrity fault (a 503 over HTTP), never handed out as a proof."""
    _anchored_bundle(service)
    from sqlalchemy import update

    from stave.db.schema import log_nodes

    with service.log.database.write() as connection:
        for (key,) in connection.exec_driver_sql("SELECT node FROM log_nodes").all():
            connection.execute(update(log_nodes).where(log_nodes.c.node == key).values(hash=b"\xff" * 32))
    service.log._frontier = None  # the sequencer's cache of the frontier does not see the edit
    with pytest.raises(IntegrityError, match="stave log verify"):
        service.bundle(event(3).id)
