"""The anchor payload, receipts as JSON, the Ledger base class's checks and the URL registry."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stave.anchor import (
    CONFIRMED,
    PAYLOAD_PREFIX,
    PENDING,
    Anchor,
    Ledger,
    LedgerUnavailable,
    Receipt,
    WitnessLedger,
    open_ledger,
)
from stave.errors import ConfigError, LedgerError, ProofError
from tests.anchor.helpers import make_anchor

ROOT = bytes(range(32))
DIGEST = bytes(range(32, 64))

# --- the payload ----------------------------------------------------------------------------


def test_payload_is_the_documented_ascii() -> None:
    anchor = Anchor("stave.example/log", 42, ROOT, DIGEST)
    assert anchor.payload() == (
        b"stave-anchor:v1:stave.example/log:42:" + ROOT.hex().encode() + b":" + DIGEST.hex().encode()
    )
    assert anchor.payload().startswith(PAYLOAD_PREFIX)
    assert Anchor.from_payload(anchor.payload()) == anchor


def test_an_origin_with_colons_parses_back() -> None:
    anchor = Anchor("log.example:8443/a:b", 7, ROOT, DIGEST)
    assert Anchor.from_payload(anchor.payload()) == anchor


origins = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40)
anchors = st.builds(
    Anchor,
    origin=origins,
    tree_size=st.integers(0, (1 << 63) - 1),
    root_hash=st.binary(min_size=32, max_size=32),
    checkpoint_digest=st.binary(min_size=32, max_size=32),
)


@given(anchors)
def test_every_payload_parses_back_to_its_anchor(anchor: Anchor) -> None:
    # parse(payload(a)) == a for all a means payload is injective: no two anchors share one
    assert Anchor.from_payload(anchor.payload()) == anchor


@given(anchors, anchors)
def test_different_anchors_never_share_a_payload(a: Anchor, b: Anchor) -> None:
    assert (a == b) == (a.payload() == b.payload())


@pytest.mark.parametrize(
    "payload",
    [
        b"stave-anchor:v2:o:1:" + b"00" * 32 + b":" + b"00" * 32,  # another version
        b"stave-anchor:v1:o:01:" + b"00" * 32 + b":" + b"00" * 32,  # leading zero
        b"stave-anchor:v1:o:1:" + b"AA" * 32 + b":" + b"00" * 32,  # upper-case hex
        b"stave-anchor:v1:o:1:" + b"00" * 31 + b":" + b"00" * 32,  # short hash
        b"stave-anchor:v1:o:1:" + b"00" * 32 + b":" + b"00" * 32 + b"\n",  # trailing byte
        b"stave-anchor:v1::1:" + b"00" * 32 + b":" + b"00" * 32,  # empty origin
        b"stave-anchor:v1:o o:1:" + b"00" * 32 + b":" + b"00" * 32,  # space in origin
        b"stave-anchor:v1:o:-1:" + b"00" * 32 + b":" + b"00" * 32,  # negative size
        b"stave-anchor:v1:o:9223372036854775808:" + b"00" * 32 + b":" + b"00" * 32,  # 2^63
        "stave-anchor:v1:ö:1:".encode() + b"00" * 32 + b":" + b"00" * 32,  # not ASCII
    ],
)
def test_non_canonical_payloads_are_rejected(payload: bytes) -> None:
    with pytest.raises(ProofError):
        Anchor.from_payload(payload)


@pytest.mark.parametrize(
    "fields",
    [
        {"origin": ""},
        {"origin": "has space"},
        {"origin": "x" * 256},
        {"tree_size": -1},
        {"tree_size": True},
        {"root_hash": b"\x00" * 31},
        {"checkpoint_digest": "00" * 32},
    ],
)
def test_invalid_anchors_are_refused(fields: dict[str, Any]) -> None:
    values: dict[str, Any] = {"origin": "o", "tree_size": 1, "root_hash": ROOT, "checkpoint_digest": DIGEST, **fields}
    with pytest.raises(ValueError, match="anchor"):
        Anchor(**values)


def test_the_longest_payload_fits_one_hedera_chunk() -> None:
    assert len(Anchor("x" * 255, (1 << 63) - 1, ROOT, DIGEST).payload()) <= 1024


# --- receipts -------------------------------------------------------------------------------


def receipt(**changes: Any) -> Receipt:
    base = Receipt(
        ledger="evm+http://127.0.0.1:8545",
        kind="evm",
        state=PENDING,
        anchor=make_anchor(3),
        reference={"chain_id": 31337, "tx_hash": "0x" + "ab" * 32, "confirmations": 0},
        created_at=1_767_225_600_000,
    )
    return dataclasses.replace(base, **changes)


def test_receipt_json_round_trip() -> None:
    original = receipt(state=CONFIRMED, confirmed_at=1_767_225_601_000, note="n", reason="r")
    data = original.to_json()
    assert Receipt.from_json(data) == original
    assert Receipt.from_json(data.decode()) == original
    assert Receipt.from_json(data).to_json() == data  # the same bytes again: sorted keys, compact
    value = json.loads(data)
    assert value["v"] == 1
    assert value["root_hash"] == make_anchor(3).root_hash.hex()
    assert value["tree_size"] == 3


def test_unknown_fields_travel_with_the_receipt() -> None:
    value = json.loads(receipt().to_json())
    value["bundle_note"] = {"added": "by a newer stave"}
    value["reference"]["l2_batch"] = 12
    parsed = Receipt.from_json(json.dumps(value))
    assert parsed.extra == {"bundle_note": {"added": "by a newer stave"}}
    assert parsed.reference["l2_batch"] == 12
    assert json.loads(parsed.to_json()) == value


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"v": 2}, "version 2"),
        ({"kind": "bitcoin"}, "'kind'"),
        ({"state": "done"}, "'state'"),
        ({"tree_size": True}, "'tree_size'"),
        ({"tree_size": "3"}, "'tree_size'"),
        ({"root_hash": "AB" * 32}, "64 lowercase hex"),
        ({"reference": []}, "'reference'"),
        ({"created_at": None}, "'created_at'"),
        ({"origin": "a b"}, "origin"),
    ],
)
def test_malformed_receipts_are_rejected(change: dict[str, Any], message: str) -> None:
    value = {**json.loads(receipt().to_json()), **change}
    with pytest.raises(ProofError, match=message):
        Receipt.from_json(json.dumps(value))


def test_a_receipt_must_be_a_json_object() -> None:
    with pytest.raises(ProofError, match="not JSON"):
        Receipt.from_json(b"{")
    with pytest.raises(ProofError, match="JSON object"):
        Receipt.from_json(b"[]")


# --- the base class -------------------------------------------------------------------------


class FakeLedger(Ledger):
    kind = "evm"
    note = "a fake"

    def __init__(self, error: BaseException | None = None) -> None:
        super().__init__("evm+http://fake")
        self.error = error
        self.verified = 0

    def _anchor(self, anchor: Anchor) -> Receipt:
        if self.error:
            raise self.error
        return self._receipt(anchor, CONFIRMED, {"confirmations": 1}, confirmed_at=1)

    def _refresh(self, receipt: Receipt) -> Receipt:
        return self._update(receipt, CONFIRMED, receipt.reference)

    def _verify(self, receipt: Receipt, anchor: Anchor) -> None:
        if self.error:
            raise self.error
        self.verified += 1


def test_verify_checks_the_anchor_and_state_before_asking_the_driver() -> None:
    ledger = FakeLedger()
    confirmed = ledger.anchor(make_anchor(1))
    ledger.verify(confirmed, make_anchor(1))
    assert ledger.verified == 1
    with pytest.raises(ProofError, match=r"another anchor \(differs in tree_size, root_hash, checkpoint_digest\)"):
        ledger.verify(confirmed, make_anchor(2))
    with pytest.raises(ProofError, match="differs in origin"):
        ledger.verify(confirmed, make_anchor(1, origin="other/log"))
    pending = dataclasses.replace(confirmed, state=PENDING, reason="2 of 12 confirmations")
    with pytest.raises(ProofError, match="pending, not confirmed: 2 of 12 confirmations"):
        ledger.verify(pending, make_anchor(1))
    witness = dataclasses.replace(confirmed, kind="witness")
    with pytest.raises(ProofError, match="witness receipt"):
        ledger.verify(witness, make_anchor(1))
    assert ledger.verified == 1


def test_refresh_keeps_confirmed_at_and_leaves_failed_receipts_alone() -> None:
    ledger = FakeLedger()
    first = ledger.anchor(make_anchor(1))
    assert ledger.refresh(first) == first
    failed = dataclasses.replace(first, state="failed", reason="nonce taken")
    assert ledger.refresh(failed) is failed


@pytest.mark.parametrize(
    ("error", "kind", "message"),
    [
        (ConnectionRefusedError("refused"), LedgerUnavailable, "cannot reach the ledger: ConnectionRefusedError"),
        (TimeoutError("slow"), LedgerUnavailable, "cannot reach the ledger"),
        (RuntimeError("sdk bug"), LedgerError, "anchor: RuntimeError: sdk bug"),
    ],
)
def test_sdk_errors_are_mapped_at_the_boundary(error: BaseException, kind: type[Exception], message: str) -> None:
    with pytest.raises(kind, match=message):
        FakeLedger(error).anchor(make_anchor(1))


def test_verify_fails_closed_when_the_ledger_cannot_be_read() -> None:
    ledger = FakeLedger()
    confirmed = ledger.anchor(make_anchor(1))
    ledger.error = ConnectionRefusedError("refused")
    with pytest.raises(LedgerUnavailable):
        ledger.verify(confirmed, make_anchor(1))


def test_health_and_describe() -> None:
    assert FakeLedger().health().ok
    assert FakeLedger().describe() == "evm+http://fake (evm): a fake"


# --- URLs -----------------------------------------------------------------------------------


def test_open_witness_ledger(tmp_path: Path) -> None:
    ledger = open_ledger(f"witness://{tmp_path}/w.log")
    assert isinstance(ledger, WitnessLedger)
    assert ledger.path == tmp_path / "w.log"
    assert ledger.url == f"witness://{tmp_path}/w.log"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("bitcoin://x", "unknown scheme 'bitcoin'"),
        ("witness://host/x.log", "witness:///absolute/path"),
        ("witness:relative.log", "witness:///absolute/path"),
        ("witness:///x.log?fsync=0", "unknown parameter 'fsync'"),
        ("evm+http://127.0.0.1:8545?private_key=abc", "secrets never go in a URL"),
        ("evm+http://127.0.0.1:8545?key=abc", "secrets never go in a URL"),
        ("evm+http://127.0.0.1:8545?confirmation=3", "unknown parameter 'confirmation'"),
        ("evm+http://127.0.0.1:8545?confirmations=0", "at least 1"),
        ("evm+http://127.0.0.1:8545?confirmations=x", "invalid literal"),
        ("evm+http://127.0.0.1:8545?chain_id=1&chain_id=2", "given twice"),
        ("evm+http://127.0.0.1:8545?sender=0x12", "sender"),
        ("hedera://devnet/0.0.1", "network"),
        ("hedera://testnet/1234", "entity id"),
        ("hedera://testnet/0.0.1?operator_key=302e", "secrets never go in a URL"),
    ],
)
def test_bad_urls_are_config_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        open_ledger(url)


def test_messages_never_show_the_query_or_user_info() -> None:
    with pytest.raises(ConfigError) as info:
        open_ledger("evm+https://user:pw@rpc.example/v3/KEY123?private_key=deadbeef")
    assert "deadbeef" not in str(info.value)
    assert "pw" not in str(info.value)
