"""HederaLedger without a Hedera network: the running hash, the mirror node answers, the flow.

No Hedera network is reachable from CI. The running hash is checked against three real
testnet messages (topic 0.0.4603900, as printed in Hedera's tutorial "Query messages with
the mirror node"); the mirror node answers for our own anchors are recorded by hand in the
shape of the public REST API docs (``GET /api/v1/topics/{id}/messages/{seq}``), their running
hashes chained on from those real messages. The consensus node is simulated by overriding
``_submit``. ``test_live_testnet_round_trip`` runs against a real network when the
``STAVE_HEDERA_*`` variables are set.
"""

from __future__ import annotations

import base64
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from stave.anchor import CONFIRMED, FAILED, PENDING, Anchor, LedgerRejected, LedgerUnavailable, Receipt, open_ledger
from stave.anchor.hedera import (
    MIRROR_NODES,
    HederaLedger,
    MirrorMessage,
    message_transaction,
    parse_entity_id,
    running_hash,
    submit_result,
)
from stave.errors import ConfigError, ProofError
from tests.anchor.helpers import make_anchor

TOPIC = "0.0.4603900"
PAYER = "0.0.2617920"
# Real testnet messages: "Message 1", "Message 2", "Message 3".
REAL_MESSAGES: list[dict[str, Any]] = [
    {
        "consensus_timestamp": "1683553059.977315003",
        "message": "TWVzc2FnZSAx",
        "payer_account_id": PAYER,
        "running_hash": "vKnW8bYSjhYtHtMNOJWrkfyv77kKc4EREDycKE2L37aU0SYlx+g6HB9ah7CTFSxl",
        "running_hash_version": 3,
        "sequence_number": 1,
        "topic_id": TOPIC,
    },
    {
        "consensus_timestamp": "1683553060.092158003",
        "message": "TWVzc2FnZSAy",
        "payer_account_id": PAYER,
        "running_hash": "JM8LpmRwUVc+wiwzRHBgcCv8uJkbfan8BV2QPC0hBMgXA9KIvy8TwOoXsukgmeC+",
        "running_hash_version": 3,
        "sequence_number": 2,
        "topic_id": TOPIC,
    },
    {
        "consensus_timestamp": "1683553060.328178003",
        "message": "TWVzc2FnZSAz",
        "payer_account_id": PAYER,
        "running_hash": "OL6EUxAayPsRiuhwflX5heRgIGEWmHcJU7bS2qBPeJNoOiMQmaY0H6G/pXJ7wGQz",
        "running_hash_version": 3,
        "sequence_number": 3,
        "topic_id": TOPIC,
    },
]


def test_running_hash_matches_real_testnet_messages() -> None:
    previous = bytes(48)  # before a topic's first message
    for raw in REAL_MESSAGES:
        message = MirrorMessage.from_json(raw)
        assert message.expected_running_hash(previous) == message.running_hash
        previous = message.running_hash
    assert MirrorMessage.from_json(REAL_MESSAGES[0]).message == b"Message 1"


def test_running_hash_covers_every_input() -> None:
    base: dict[str, Any] = {
        "payer": (0, 0, 2617920),
        "topic": (0, 0, 4603900),
        "seconds": 1683553059,
        "nanos": 977315003,
        "sequence_number": 1,
        "message": b"Message 1",
    }
    expected = base64.b64decode(REAL_MESSAGES[0]["running_hash"])
    assert running_hash(bytes(48), **base) == expected
    changes = {"payer": (0, 0, 2617921), "topic": (0, 1, 4603900), "seconds": 1683553058, "nanos": 977315004}
    changes |= {"sequence_number": 2, "message": b"Message 2"}
    for name, value in changes.items():
        assert running_hash(bytes(48), **{**base, name: value}) != expected, name
    assert running_hash(b"\x01" + bytes(47), **base) != expected


def test_entity_ids() -> None:
    assert parse_entity_id("0.0.4603900") == (0, 0, 4603900)
    for bad in ("4603900", "0.0.01", "0.0.x", "0.0.1-abcde", ""):
        with pytest.raises(ValueError, match="entity id"):
            parse_entity_id(bad)


@pytest.mark.parametrize(
    "change",
    [
        {"message": "not base64!"},
        {"running_hash": None},
        {"sequence_number": "1"},
        {"consensus_timestamp": "1683553059.97"},
        {"payer_account_id": "nobody"},
    ],
)
def test_unexpected_mirror_answers_are_proof_errors(change: dict[str, Any]) -> None:
    with pytest.raises(ProofError, match="mirror node message: unexpected shape"):
        MirrorMessage.from_json({**REAL_MESSAGES[0], **change})


# --- the ledger, against a recorded mirror node ---------------------------------------------


def mirror_entry(seq: int, payload: bytes, previous_hash: str, *, timestamp: str) -> dict[str, Any]:
    """What the mirror node would answer for our message ``seq`` (the running hash computed)."""
    seconds, nanos = (int(part) for part in timestamp.split("."))
    digest = running_hash(
        base64.b64decode(previous_hash),
        payer=parse_entity_id(PAYER),
        topic=parse_entity_id(TOPIC),
        seconds=seconds,
        nanos=nanos,
        sequence_number=seq,
        message=payload,
    )
    return {
        "chunk_info": {
            "initial_transaction_id": {
                "account_id": PAYER,
                "nonce": 0,
                "scheduled": False,
                "transaction_valid_start": f"{seconds - 5}.000000000",
            },
            "number": 1,
            "total": 1,
        },
        "consensus_timestamp": timestamp,
        "message": base64.b64encode(payload).decode(),
        "payer_account_id": PAYER,
        "running_hash": base64.b64encode(digest).decode(),
        "running_hash_version": 3,
        "sequence_number": seq,
        "topic_id": TOPIC,
    }


class Mirror:
    """A mirror node REST API serving the recorded topic; ``published`` hides messages not yet there."""

    def __init__(self, anchors: list[Anchor]) -> None:
        self.messages = {m["sequence_number"]: dict(m) for m in REAL_MESSAGES}
        for seq, anchor in enumerate(anchors, start=4):
            previous = self.messages[seq - 1]["running_hash"]
            self.messages[seq] = mirror_entry(seq, anchor.payload(), previous, timestamp=f"168355307{seq}.000000123")
        self.published = max(self.messages)
        self.requests: list[str] = []
        self.fail: Exception | None = None

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url.path)
        if self.fail is not None:
            raise self.fail
        prefix = f"/api/v1/topics/{TOPIC}/messages/"
        if request.url.path.startswith(prefix):
            seq = int(request.url.path.removeprefix(prefix))
            if seq in self.messages and seq <= self.published:
                return httpx.Response(200, json=self.messages[seq])
            return httpx.Response(404, json={"_status": {"messages": [{"message": "Not found"}]}})
        if request.url.path == f"/api/v1/topics/{TOPIC}":
            return httpx.Response(200, json={"topic_id": TOPIC, "deleted": False})
        return httpx.Response(404)


class SimulatedHedera(HederaLedger):
    """Submission answered as a consensus node would (its receipt's sequence number and running
    hash), taken from the recorded mirror; everything else is the real driver."""

    def __init__(self, mirror: Mirror) -> None:
        super().__init__("testnet", TOPIC, http=httpx.Client(transport=httpx.MockTransport(mirror.handler)))
        self.mirror = mirror
        self.submitted: list[bytes] = []

    def _submit(self, payload: bytes) -> dict[str, Any]:
        self.submitted.append(payload)
        seq = next(s for s, m in self.mirror.messages.items() if base64.b64decode(m["message"]) == payload)
        return {
            "sequence_number": seq,
            "running_hash": base64.b64decode(self.mirror.messages[seq]["running_hash"]).hex(),
            "running_hash_version": 3,
            "transaction_id": f"{PAYER}@1683553070.000000000",
        }


@pytest.fixture
def mirror() -> Mirror:
    return Mirror([make_anchor(1), make_anchor(2)])


@pytest.fixture
def ledger(mirror: Mirror) -> SimulatedHedera:
    return SimulatedHedera(mirror)


def test_anchor_pending_then_confirmed_then_verified(mirror: Mirror, ledger: SimulatedHedera) -> None:
    mirror.published = 3  # the mirror node lags the consensus nodes by a few seconds
    receipt = ledger.anchor(make_anchor(1))
    assert receipt.state == PENDING
    assert receipt.reason == "message 4 is not on the mirror node yet"
    assert receipt.ledger == f"hedera://testnet/{TOPIC}"
    assert receipt.reference["sequence_number"] == 4
    assert receipt.reference["transaction_id"] == f"{PAYER}@1683553070.000000000"
    assert mirror.requests[-1] == f"/api/v1/topics/{TOPIC}/messages/4"
    assert ledger.anchor(make_anchor(1)) == receipt  # a retry: no second message
    assert ledger.submitted == [make_anchor(1).payload()]

    mirror.published = 5
    confirmed = ledger.refresh(receipt)
    assert confirmed.state == CONFIRMED
    assert confirmed.confirmations == 1
    assert confirmed.reference["consensus_timestamp"] == "1683553074.000000123"
    assert confirmed.reference["payer_account_id"] == PAYER
    assert confirmed.reference["running_hash_version"] == 3
    assert ledger.refresh(confirmed) == confirmed

    ledger.verify(confirmed, make_anchor(1))
    ledger.verify(Receipt.from_json(confirmed.to_json()), make_anchor(1))
    assert mirror.requests[-2:] == [f"/api/v1/topics/{TOPIC}/messages/{n}" for n in (4, 3)]


def test_verify_rejects_what_the_mirror_does_not_show(mirror: Mirror, ledger: SimulatedHedera) -> None:
    receipt = ledger.anchor(make_anchor(2))
    assert receipt.state == CONFIRMED
    ledger.verify(receipt, make_anchor(2))
    with pytest.raises(ProofError, match="another anchor"):
        ledger.verify(receipt, make_anchor(1))

    def tampered(seq: int, **change: Any) -> Callable[[], None]:
        original = dict(mirror.messages[seq])

        def restore() -> None:
            mirror.messages[seq] = original

        mirror.messages[seq] = {**original, **change}
        return restore

    cases: list[tuple[int, dict[str, Any], str]] = [
        (5, {"message": base64.b64encode(b"something else").decode()}, "holds another message"),
        (5, {"running_hash": REAL_MESSAGES[0]["running_hash"]}, "is not the receipt's"),
        (5, {"consensus_timestamp": "1683553099.000000000"}, "was timestamped 1683553099.000000000"),
        (4, {"running_hash": REAL_MESSAGES[0]["running_hash"]}, "does not follow from message 4"),
        (5, {"running_hash_version": 2}, "running hash version 2"),
        (5, {"chunk_info": {"number": 1, "total": 2}}, "a chunk of a 2-part message"),
        (5, {"sequence_number": 6}, "answered for"),
    ]
    for seq, change, message in cases:
        restore = tampered(seq, **change)
        with pytest.raises(ProofError, match=message):
            ledger.verify(receipt, make_anchor(2))
        restore()
    ledger.verify(receipt, make_anchor(2))

    mirror.published = 4
    with pytest.raises(ProofError, match="message 5 is not on the mirror node"):
        ledger.verify(receipt, make_anchor(2))
    mirror.published = 5

    other_topic = Receipt.from_dict({**receipt.to_dict(), "reference": {**receipt.reference, "topic_id": "0.0.1"}})
    with pytest.raises(ProofError, match=r"the receipt is for hedera://testnet/0\.0\.1\b"):
        ledger.verify(other_topic, make_anchor(2))
    no_seq = Receipt.from_dict({**receipt.to_dict(), "reference": {**receipt.reference, "sequence_number": 0}})
    with pytest.raises(ProofError, match="no valid 'sequence_number'"):
        ledger.verify(no_seq, make_anchor(2))


def test_a_sequence_number_holding_another_message_fails_the_receipt(ledger: SimulatedHedera) -> None:
    receipt = ledger.anchor(make_anchor(1))
    wrong = Receipt.from_dict(
        {**receipt.to_dict(), "state": PENDING, "reference": {**receipt.reference, "sequence_number": 5}}
    )
    failed = ledger.refresh(wrong)
    assert failed.state == FAILED
    assert "holds another message" in (failed.reason or "")


def test_an_unreachable_mirror_after_submitting_leaves_the_receipt_pending(
    mirror: Mirror, ledger: SimulatedHedera
) -> None:
    mirror.fail = httpx.ConnectError("connection refused")
    receipt = ledger.anchor(make_anchor(1))  # posted: the receipt must not be lost to an error
    assert receipt.state == PENDING
    assert "mirror node is unreachable" in (receipt.reason or "")
    mirror.fail = None
    assert ledger.refresh(receipt).state == CONFIRMED
    assert ledger.submitted == [make_anchor(1).payload()]


def test_an_unreachable_mirror_is_a_ledger_error(mirror: Mirror, ledger: SimulatedHedera) -> None:
    receipt = ledger.anchor(make_anchor(1))
    mirror.fail = httpx.ConnectError("connection refused")
    with pytest.raises(LedgerUnavailable, match="verify: cannot reach the ledger: ConnectError"):
        ledger.verify(receipt, make_anchor(1))
    assert not ledger.health().ok
    mirror.fail = None
    assert ledger.health().ok


def test_submitting_needs_an_operator_and_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = open_ledger(f"hedera://testnet/{TOPIC}")
    assert isinstance(ledger, HederaLedger)
    assert ledger.mirror_url == MIRROR_NODES["testnet"]
    with pytest.raises(LedgerRejected, match="needs operator_id= and key_file="):
        ledger.anchor(make_anchor(1))
    monkeypatch.setitem(sys.modules, "hiero_sdk_python", None)  # as if it were not installed
    with pytest.raises(LedgerRejected, match="pip install hiero-sdk-python"):
        ledger.anchor(make_anchor(1))


def test_the_submitted_message_is_the_payload_in_one_chunk() -> None:
    pytest.importorskip("hiero_sdk_python")
    payload = Anchor("x" * 255, (1 << 63) - 1, bytes(32), bytes(32)).payload()  # the longest
    body = message_transaction("0.0.4603900", payload)._build_proto_body()
    assert body.message == payload
    assert (body.topicID.shardNum, body.topicID.realmNum, body.topicID.topicNum) == (0, 0, 4603900)


def test_the_consensus_node_receipt_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("hiero_sdk_python")
    from hiero_sdk_python.hapi.services import transaction_receipt_pb2
    from hiero_sdk_python.transaction.transaction_receipt import TransactionReceipt

    running = base64.b64decode(REAL_MESSAGES[2]["running_hash"])
    proto = transaction_receipt_pb2.TransactionReceipt(
        status=22, topicSequenceNumber=3, topicRunningHash=running, topicRunningHashVersion=3
    )
    fields = submit_result(TransactionReceipt(proto), "here")
    assert fields == {
        "sequence_number": 3,
        "running_hash": running.hex(),
        "running_hash_version": 3,
        "transaction_id": None,
    }
    refused = transaction_receipt_pb2.TransactionReceipt(status=150)  # INVALID_TOPIC_ID
    with pytest.raises(LedgerRejected, match="here: the network refused the message: INVALID_TOPIC_ID"):
        submit_result(TransactionReceipt(refused), "here")


def test_a_bad_key_file_is_not_echoed(tmp_path: Path) -> None:
    pytest.importorskip("hiero_sdk_python")
    key = tmp_path / "hedera.key"
    key.write_text("SECRETWORD")
    ledger = open_ledger(f"hedera://testnet/{TOPIC}?operator_id=0.0.5&key_file={key}")
    with pytest.raises(ConfigError, match="not a Hedera private key") as info:
        ledger.anchor(make_anchor(1))
    assert "SECRETWORD" not in str(info.value)


def test_url_parameters(tmp_path: Path) -> None:
    ledger = open_ledger(
        f"hedera://mainnet/0.0.7?operator_id=0.0.5&key_file={tmp_path}/k&mirror=http://127.0.0.1:5551/"
    )
    assert isinstance(ledger, HederaLedger)
    assert (ledger.network, ledger.topic_id, ledger.operator_id) == ("mainnet", "0.0.7", "0.0.5")
    assert ledger.key_file == tmp_path / "k"
    assert ledger.mirror_url == "http://127.0.0.1:5551"
    assert ledger.url == "hedera://mainnet/0.0.7"
    assert "Hedera Consensus Service" in ledger.describe()


LIVE = ("STAVE_HEDERA_OPERATOR_ID", "STAVE_HEDERA_KEY_FILE", "STAVE_HEDERA_TOPIC_ID")


@pytest.mark.skipif(
    not all(os.environ.get(name) for name in LIVE),
    reason="no Hedera network is reachable from CI; set STAVE_HEDERA_OPERATOR_ID, STAVE_HEDERA_KEY_FILE, "
    "STAVE_HEDERA_TOPIC_ID (and optionally STAVE_HEDERA_NETWORK, default testnet) to run it",
)
def test_live_testnet_round_trip() -> None:
    network = os.environ.get("STAVE_HEDERA_NETWORK", "testnet")
    url = (
        f"hedera://{network}/{os.environ['STAVE_HEDERA_TOPIC_ID']}?operator_id={os.environ['STAVE_HEDERA_OPERATOR_ID']}"
        f"&key_file={os.environ['STAVE_HEDERA_KEY_FILE']}&wait=30"
    )
    ledger = open_ledger(url)
    anchor = Anchor("stave.test/live", int.from_bytes(os.urandom(4)), os.urandom(32), os.urandom(32))
    receipt = ledger.anchor(anchor)
    assert receipt.state == CONFIRMED, receipt.reason
    ledger.verify(receipt, anchor)
    with pytest.raises(ProofError):
        ledger.verify(receipt, make_anchor(1))
