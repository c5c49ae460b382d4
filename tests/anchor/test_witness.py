"""The local witness file: hash chain, tamper evidence, idempotence, concurrent appends."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from stave.anchor import CONFIRMED, Receipt, WitnessLedger, open_ledger, verify_file
from stave.anchor.witness import WITNESS_NOTE
from stave.errors import LedgerError, ProofError
from tests.anchor.helpers import make_anchor


@pytest.fixture
def ledger(tmp_path: Path) -> WitnessLedger:
    return WitnessLedger(tmp_path / "anchors" / "witness.log")


def lines(ledger: WitnessLedger) -> list[bytes]:
    return ledger.path.read_bytes().splitlines()


def rewrite_line(ledger: WitnessLedger, number: int, new: bytes) -> None:
    content = lines(ledger)
    content[number - 1] = new
    ledger.path.write_bytes(b"".join(line + b"\n" for line in content))


def test_it_says_it_is_not_a_blockchain(ledger: WitnessLedger) -> None:
    receipt = ledger.anchor(make_anchor(1))
    for text in (receipt.note, ledger.describe(), ledger.health().detail, WitnessLedger.__doc__ or ""):
        assert "not a blockchain" in text.lower()
    assert "NOT a blockchain" in WITNESS_NOTE


def test_anchor_is_confirmed_at_once_and_verifies(ledger: WitnessLedger) -> None:
    receipts = [ledger.anchor(make_anchor(n)) for n in range(1, 4)]
    for line, receipt in enumerate(receipts, start=1):
        assert receipt.kind == "witness"
        assert receipt.state == CONFIRMED
        assert receipt.confirmations == 1
        assert receipt.confirmed_at == receipt.created_at == receipt.reference["time"]
        assert receipt.reference["line"] == line
        assert receipt.ledger == f"witness://{ledger.path}"
        ledger.verify(receipt, receipt.anchor)
        ledger.verify(Receipt.from_json(receipt.to_json()), receipt.anchor)  # as carried in a bundle
        assert ledger.refresh(receipt) == receipt
    assert receipts[1].reference["prev"] == receipts[0].reference["entry_hash"]
    assert verify_file(ledger.path) == 3


def test_the_file_format(ledger: WitnessLedger) -> None:
    receipt = ledger.anchor(make_anchor(5))
    (line,) = lines(ledger)
    entry = json.loads(line)
    assert entry == {
        "v": 1,
        "seq": 1,
        "prev": "0" * 64,
        "time": receipt.reference["time"],
        "payload": make_anchor(5).payload().decode(),
        "hash": receipt.reference["entry_hash"],
    }
    assert line == json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()


def test_re_anchoring_returns_the_existing_entry(ledger: WitnessLedger) -> None:
    first = ledger.anchor(make_anchor(1))
    ledger.anchor(make_anchor(2))
    again = ledger.anchor(make_anchor(1))
    assert again == first
    assert WitnessLedger(ledger.path).anchor(make_anchor(1)) == first  # another instance, same file
    assert len(lines(ledger)) == 2


def test_verify_rejects_another_anchor_and_forged_references(ledger: WitnessLedger) -> None:
    first = ledger.anchor(make_anchor(1))
    second = ledger.anchor(make_anchor(2))
    with pytest.raises(ProofError, match="another anchor"):
        ledger.verify(first, make_anchor(2))
    # a receipt for anchor 1 that points at the line holding anchor 2
    moved = Receipt.from_dict({**first.to_dict(), "reference": {**first.reference, "line": 2}})
    with pytest.raises(ProofError, match="line 2 records another anchor"):
        ledger.verify(moved, make_anchor(1))
    forged = Receipt.from_dict({**second.to_dict(), "reference": {**second.reference, "entry_hash": "0" * 64}})
    with pytest.raises(ProofError, match="entry_hash"):
        ledger.verify(forged, make_anchor(2))
    beyond = Receipt.from_dict({**second.to_dict(), "reference": {**second.reference, "line": 9}})
    with pytest.raises(ProofError, match="has 2 entries; the receipt names line 9"):
        ledger.verify(beyond, make_anchor(2))
    with pytest.raises(ProofError, match="no valid line number"):
        ledger.verify(Receipt.from_dict({**second.to_dict(), "reference": {}}), make_anchor(2))


def test_verify_with_the_file_gone(ledger: WitnessLedger) -> None:
    receipt = ledger.anchor(make_anchor(1))
    ledger.path.unlink()
    with pytest.raises(ProofError, match="does not exist"):
        ledger.verify(receipt, make_anchor(1))


def test_a_changed_byte_is_found_with_its_line_number(ledger: WitnessLedger) -> None:
    receipts = [ledger.anchor(make_anchor(n)) for n in range(1, 5)]
    line = lines(ledger)[1]
    # tree size 2 → 3 inside the payload: still valid JSON and a valid anchor, but not what was hashed
    rewrite_line(ledger, 2, line.replace(b"/log:2:", b"/log:3:"))
    with pytest.raises(ProofError, match=r"line 2: the entry's hash does not match its content"):
        verify_file(ledger.path)
    ledger.verify(receipts[0], make_anchor(1))  # the lines before it still prove what they hold
    for receipt in receipts[1:]:
        with pytest.raises(ProofError, match="line 2"):
            ledger.verify(receipt, receipt.anchor)
    with pytest.raises(LedgerError, match=r"refusing to append to a damaged witness file.*line 2"):
        ledger.anchor(make_anchor(9))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda line: line[:-5], r"line 2: not valid JSON"),
        (lambda line: line.replace(b'"seq":2', b'"seq": 2'), r"line 2: not in canonical form"),
        (lambda line: line.replace(b'"v":1', b'"v":2'), r"line 2: bad version"),
        (lambda line: b"", r"line 2: not valid JSON"),
    ],
)
def test_other_damage_is_found_with_its_line_number(ledger: WitnessLedger, damage, message: str) -> None:
    for n in range(1, 4):
        ledger.anchor(make_anchor(n))
    rewrite_line(ledger, 2, damage(lines(ledger)[1]))
    with pytest.raises(ProofError, match=message):
        verify_file(ledger.path)


def test_a_consistently_rewritten_line_breaks_the_chain_after_it(ledger: WitnessLedger, tmp_path: Path) -> None:
    for n in range(1, 4):
        ledger.anchor(make_anchor(n))
    # Rewrite line 2 as a forger would: a valid entry of its own (its hash recomputed), holding
    # another anchor. Line 3's prev no longer matches.
    forged = WitnessLedger(tmp_path / "scratch.log")
    forged.path.write_bytes(lines(ledger)[0] + b"\n")
    forged.anchor(make_anchor(77))
    rewrite_line(ledger, 2, lines(forged)[1])
    with pytest.raises(ProofError, match=r"line 3: the chain is broken"):
        verify_file(ledger.path)


def test_removed_lines_are_found(ledger: WitnessLedger) -> None:
    for n in range(1, 4):
        ledger.anchor(make_anchor(n))
    content = lines(ledger)
    ledger.path.write_bytes(content[0] + b"\n" + content[2] + b"\n")
    with pytest.raises(ProofError, match=r"line 2: sequence number 3, expected 2"):
        verify_file(ledger.path)


def test_an_interrupted_append_is_dropped_by_the_next_one(ledger: WitnessLedger) -> None:
    ledger.anchor(make_anchor(1))
    with ledger.path.open("ab") as file:
        file.write(b'{"hash":"12')  # a crash mid-write: never fsynced, never acknowledged
    with pytest.raises(ProofError, match=r"line 2: incomplete line"):
        verify_file(ledger.path)
    receipt = ledger.anchor(make_anchor(2))
    assert receipt.reference["line"] == 2
    assert verify_file(ledger.path) == 2


def test_open_from_url_and_health(tmp_path: Path) -> None:
    ledger = open_ledger(f"witness://{tmp_path}/new/dir/w.log")
    health = ledger.health()
    assert health.ok, health.detail
    assert "0 entries" in health.detail
    ledger.anchor(make_anchor(1))
    assert "1 entries, chain intact" in ledger.health().detail


def _append_many(path: str, start: int, count: int) -> None:
    ledger = WitnessLedger(path)
    for n in range(start, start + count):
        ledger.anchor(make_anchor(n))


def test_concurrent_appends_from_two_processes_keep_one_chain(tmp_path: Path) -> None:
    path = str(tmp_path / "witness.log")
    context = multiprocessing.get_context("spawn")  # no fork of the test process's threads
    workers = [context.Process(target=_append_many, args=(path, start, 40)) for start in (1000, 2000)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    assert verify_file(path) == 80
    sizes = sorted(json.loads(line)["payload"].split(":")[3] for line in Path(path).read_bytes().splitlines())
    assert sizes == sorted(str(n) for n in [*range(1000, 1040), *range(2000, 2040)])
