"""Hedera Consensus Service (``hedera://testnet/0.0.1234?operator_id=0.0.5678&key_file=/etc/stave/hedera.key``).

An anchor is one message on an HCS topic: the anchor payload, in one chunk. The consensus
nodes order and timestamp it and fold it into the topic's *running hash* (SHA-384 over the
previous running hash, the payer, the topic, the consensus time, the sequence number and
the message's SHA-384). Submitting needs ``pip install hiero-sdk-python`` and an operator
account whose key is read from ``key_file``; refreshing and verifying need only the public
mirror node REST API (``GET /api/v1/topics/{topic}/messages/{seq}``), over httpx.

``anchor`` returns a pending receipt holding the sequence number and running hash from the
consensus node's receipt; ``refresh`` confirms it once the mirror node has the message (its
consensus timestamp is then known: Hedera has finality, one confirmation is final).
``verify`` re-reads the message and the one before it from the mirror node and checks that
the message is exactly the payload and that the running hash recomputes from the previous
one, the payer, the topic, the timestamp and the sequence number, and equals the receipt's.

Idempotence: HCS does not deduplicate messages, so a second ``anchor()`` after a lost answer
could post the payload twice. As for EVM, the ledger remembers each payload it sent for its
lifetime and returns (refreshes) that receipt; across processes keep the pending receipt
and ``refresh`` it. Two messages of one payload are two valid receipts of the same anchor.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import httpx

from stave.anchor.base import CONFIRMED, FAILED, PENDING, Anchor, Ledger, LedgerRejected, Receipt
from stave.anchor.urls import query_params
from stave.errors import ConfigError, ProofError

__all__ = [
    "HEDERA_NOTE",
    "MIRROR_NODES",
    "RUNNING_HASH_VERSION",
    "HederaLedger",
    "MirrorMessage",
    "message_transaction",
    "parse_entity_id",
    "running_hash",
    "submit_result",
]

HEDERA_NOTE: Final = "Hedera Consensus Service topic message: ordered and timestamped by the network's consensus"
MIRROR_NODES: Final = {
    "mainnet": "https://mainnet-public.mirrornode.hedera.com",
    "testnet": "https://testnet.mirrornode.hedera.com",
    "previewnet": "https://previewnet.mirrornode.hedera.com",
}
RUNNING_HASH_VERSION: Final = 3
_ENTITY = re.compile(r"(0|[1-9][0-9]{0,18})\.(0|[1-9][0-9]{0,18})\.(0|[1-9][0-9]{0,18})\Z")
_TIMESTAMP = re.compile(r"([0-9]{1,19})\.([0-9]{9})\Z")
_PARAMS: Final = {
    "operator_id": "the account (0.0.N) that pays for and signs anchors",
    "key_file": "file holding the operator's private key",
    "mirror": "mirror node REST base URL (default: the network's public one)",
    "timeout": "seconds per request (default 10)",
    "wait": "seconds anchor() waits for the mirror node (default 0)",
}

# Java serialisation framing of the running hash input: the consensus nodes build it with an
# ObjectOutputStream (writeObject(byte[]), writeLong/writeInt, writeObject(byte[])), so the
# exact bytes include that stream's header, the byte[] class descriptor, a block-data header
# and a back-reference to the descriptor. Checked against real testnet messages in the tests.
_STREAM_HEADER: Final = bytes.fromhex("aced0005")
_BYTE_ARRAY_CLASS: Final = (
    bytes.fromhex("7572")
    + struct.pack(">H", 2)
    + b"[B"
    + bytes.fromhex("acf317f8060854e0020000")
    + bytes.fromhex("7870")
)
_BYTE_ARRAY_REF: Final = bytes.fromhex("7571") + struct.pack(">I", 0x7E0000)


def running_hash(
    previous: bytes,
    *,
    payer: tuple[int, int, int],
    topic: tuple[int, int, int],
    seconds: int,
    nanos: int,
    sequence_number: int,
    message: bytes,
) -> bytes:
    """The topic running hash (version 3) after ``message``; ``previous`` is 48 zero bytes
    before the first message."""
    block = struct.pack(">qqqqqqqqiq", RUNNING_HASH_VERSION, *payer, *topic, seconds, nanos, sequence_number)
    digest = hashlib.sha384(message).digest()
    data = (
        _STREAM_HEADER
        + _BYTE_ARRAY_CLASS
        + struct.pack(">i", len(previous))
        + previous
        + bytes([0x77, len(block)])  # TC_BLOCKDATA, length (68 bytes)
        + block
        + _BYTE_ARRAY_REF
        + struct.pack(">i", len(digest))
        + digest
    )
    return hashlib.sha384(data).digest()


def parse_entity_id(text: str) -> tuple[int, int, int]:
    """``shard.realm.num`` (e.g. ``0.0.1234``) as three integers."""
    match = _ENTITY.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"expected a Hedera entity id shard.realm.num, got {text!r:.60}")
    shard, realm, num = (int(g) for g in match.groups())
    return shard, realm, num


@dataclass(frozen=True, slots=True)
class MirrorMessage:
    """One topic message as the mirror node REST API returns it (message and hash decoded)."""

    topic_id: str
    sequence_number: int
    consensus_timestamp: str
    message: bytes
    payer_account_id: str
    running_hash: bytes
    running_hash_version: int
    chunks: int = 1

    @classmethod
    def from_json(cls, value: object) -> MirrorMessage:
        """Parse ``GET /api/v1/topics/{id}/messages/{seq}``; raise ProofError on any surprise."""
        try:
            if not isinstance(value, dict):
                raise TypeError("not an object")
            chunk_info = value.get("chunk_info")
            chunks = int(chunk_info["total"]) if isinstance(chunk_info, dict) else 1
            message = cls(
                topic_id=str(value["topic_id"]),
                sequence_number=_int(value["sequence_number"]),
                consensus_timestamp=str(value["consensus_timestamp"]),
                message=base64.b64decode(value["message"], validate=True),
                payer_account_id=str(value["payer_account_id"]),
                running_hash=base64.b64decode(value["running_hash"], validate=True),
                running_hash_version=_int(value["running_hash_version"]),
                chunks=chunks,
            )
            parse_entity_id(message.topic_id)
            parse_entity_id(message.payer_account_id)
            message.timestamp()
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise ProofError(f"mirror node message: unexpected shape: {type(exc).__name__}: {exc}") from None
        return message

    def timestamp(self) -> tuple[int, int]:
        match = _TIMESTAMP.match(self.consensus_timestamp)
        if match is None:
            raise ValueError(f"consensus timestamp {self.consensus_timestamp!r:.40} is not seconds.nanoseconds")
        return int(match.group(1)), int(match.group(2))

    def expected_running_hash(self, previous: bytes) -> bytes:
        seconds, nanos = self.timestamp()
        return running_hash(
            previous,
            payer=parse_entity_id(self.payer_account_id),
            topic=parse_entity_id(self.topic_id),
            seconds=seconds,
            nanos=nanos,
            sequence_number=self.sequence_number,
            message=self.message,
        )


def _int(value: object) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {value!r:.40}")
    return value


class HederaLedger(Ledger):
    kind = "hedera"
    note = HEDERA_NOTE
    transient_errors = (OSError, TimeoutError, httpx.TransportError)

    def __init__(
        self,
        network: str,
        topic_id: str,
        *,
        operator_id: str | None = None,
        key_file: str | Path | None = None,
        mirror_url: str | None = None,
        timeout: float = 10.0,
        wait: float = 0.0,
        http: httpx.Client | None = None,
    ) -> None:
        if network not in MIRROR_NODES:
            raise ConfigError(f"Hedera network: expected one of {', '.join(MIRROR_NODES)}, got {network!r:.40}")
        try:
            parse_entity_id(topic_id)
            if operator_id is not None:
                parse_entity_id(operator_id)
        except ValueError as exc:
            raise ConfigError(f"hedera://{network}/{topic_id}: {exc}") from None
        self.network = network
        self.topic_id = topic_id
        self.operator_id = operator_id
        self.key_file = Path(key_file) if key_file is not None else None
        self.mirror_url = (mirror_url or MIRROR_NODES[network]).rstrip("/")
        self.timeout = timeout
        self.wait = wait
        self._http = http or httpx.Client(timeout=timeout)
        self._sent: dict[bytes, Receipt] = {}  # payload → receipt, for idempotent retries
        super().__init__(f"hedera://{network}/{topic_id}")

    @classmethod
    def from_url(cls, url: str) -> HederaLedger:
        """``hedera://<mainnet|testnet|previewnet>/<topic id>?operator_id=…&key_file=…&mirror=…``."""
        parts = urlsplit(url)
        topic = parts.path.strip("/")
        if parts.scheme != "hedera" or not parts.netloc or not topic:
            raise ConfigError(f"ledger URL {url.split('?')[0]!r}: expected hedera://<network>/<topic id>")
        params = query_params(url, _PARAMS)
        try:
            return cls(
                parts.netloc,
                topic,
                operator_id=params.get("operator_id"),
                key_file=unquote(params["key_file"]) if "key_file" in params else None,
                mirror_url=params.get("mirror"),
                timeout=float(params.get("timeout", "10")),
                wait=float(params.get("wait", "0")),
            )
        except ValueError as exc:
            raise ConfigError(f"ledger URL {url.split('?')[0]!r}: {exc}") from None

    def close(self) -> None:
        self._http.close()

    # --- the contract --------------------------------------------------------------------

    def _anchor(self, anchor: Anchor) -> Receipt:
        payload = anchor.payload()
        receipt = self._sent.get(payload)
        if receipt is None or receipt.state == FAILED:
            submitted = self._submit(payload)
            reference = {
                "network": self.network,
                "topic_id": self.topic_id,
                "sequence_number": submitted["sequence_number"],
                "running_hash": submitted["running_hash"],
                "running_hash_version": submitted["running_hash_version"],
                "transaction_id": submitted["transaction_id"],
                "confirmations": 0,
            }
            receipt = self._receipt(anchor, PENDING, reference, reason="submitted; waiting for the mirror node")
            self._sent[payload] = receipt
        # The message is posted: from here on an unreachable mirror node leaves the receipt
        # pending (to refresh later), never an error that would lose it.
        deadline = time.monotonic() + self.wait
        try:
            receipt = self._refresh(receipt)
            while receipt.state == PENDING and time.monotonic() < deadline:
                time.sleep(min(1.0, self.wait / 10))
                receipt = self._refresh(receipt)
        except self.transient_errors as exc:
            receipt = replace(receipt, reason=f"submitted; the mirror node is unreachable ({type(exc).__name__})")
        self._sent[payload] = receipt
        return receipt

    def _submit(self, payload: bytes) -> dict[str, Any]:
        """Post ``payload`` to the topic through a consensus node; return the receipt's fields
        (see :func:`submit_result`)."""
        sdk = _sdk(self.url)
        if self.operator_id is None or self.key_file is None:
            raise LedgerRejected(f"{self.url}: submitting needs operator_id= and key_file= in the URL")
        try:
            key_text = self.key_file.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"key_file {self.key_file}: cannot read it: {type(exc).__name__}") from None
        try:
            key = sdk.PrivateKey.from_string(key_text)
        except Exception:  # never echo the file's content
            raise ConfigError(f"key_file {self.key_file}: not a Hedera private key (hex or DER hex)") from None
        client = sdk.Client(sdk.Network(self.network))
        try:
            client.set_operator(sdk.AccountId.from_string(self.operator_id), key)
            result = message_transaction(self.topic_id, payload).execute(client, timeout=self.timeout)
            return submit_result(result, self.url)
        finally:
            client.close()

    def _refresh(self, receipt: Receipt) -> Receipt:
        ref = dict(receipt.reference)
        seq = _ref_int(ref, "sequence_number")
        message = self._message(seq)
        if message is None:
            return self._update(receipt, PENDING, ref, f"message {seq} is not on the mirror node yet")
        try:
            self._check(message, receipt.anchor, ref)
        except ProofError as exc:  # the topic holds something else at this number: final
            return self._update(receipt, FAILED, ref, str(exc))
        ref.update(
            consensus_timestamp=message.consensus_timestamp,
            payer_account_id=message.payer_account_id,
            running_hash=message.running_hash.hex(),
            running_hash_version=message.running_hash_version,
            confirmations=1,  # consensus is final on Hedera
        )
        return self._update(receipt, CONFIRMED, ref)

    def _verify(self, receipt: Receipt, anchor: Anchor) -> None:
        ref = receipt.reference
        if ref.get("network") != self.network or ref.get("topic_id") != self.topic_id:
            raise ProofError(f"{self.url}: the receipt is for hedera://{ref.get('network')}/{ref.get('topic_id')}")
        seq = _ref_int(ref, "sequence_number")
        message = self._message(seq)
        if message is None:
            raise ProofError(f"{self.url}: message {seq} is not on the mirror node")
        self._check(message, anchor, ref)
        if message.consensus_timestamp != ref.get("consensus_timestamp"):
            claimed = ref.get("consensus_timestamp")
            raise ProofError(f"{self.url}: message {seq} was timestamped {message.consensus_timestamp}, not {claimed}")
        if seq == 1:
            previous = bytes(48)
        else:
            before = self._message(seq - 1)
            if before is None:
                raise ProofError(f"{self.url}: message {seq - 1} is not on the mirror node")
            previous = before.running_hash
        if message.expected_running_hash(previous) != message.running_hash:
            raise ProofError(
                f"{self.url}: message {seq}: the running hash does not follow from message {seq - 1} and this message"
            )

    def _health(self) -> str:
        response = self._http.get(f"{self.mirror_url}/api/v1/topics/{self.topic_id}")
        response.raise_for_status()
        return f"{HEDERA_NOTE}; topic {self.topic_id} on {self.network}"

    # --- helpers -------------------------------------------------------------------------

    def _message(self, seq: int) -> MirrorMessage | None:
        response = self._http.get(f"{self.mirror_url}/api/v1/topics/{self.topic_id}/messages/{seq}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return MirrorMessage.from_json(response.json())

    def _check(self, message: MirrorMessage, anchor: Anchor, ref: dict[str, Any]) -> None:
        """The message is this anchor's payload, at this topic and number, with the running
        hash the consensus node reported when it was submitted."""
        where = f"{self.url}: message {message.sequence_number}"
        if message.topic_id != self.topic_id or message.sequence_number != ref.get("sequence_number"):
            raise ProofError(f"{where}: the mirror node answered for {message.topic_id} #{message.sequence_number}")
        if message.chunks != 1:
            raise ProofError(f"{where}: a chunk of a {message.chunks}-part message, not an anchor")
        if message.message != anchor.payload():
            raise ProofError(f"{where}: holds another message ({message.message[:80]!r})")
        if message.running_hash_version != RUNNING_HASH_VERSION:
            raise ProofError(
                f"{where}: running hash version {message.running_hash_version} (only {RUNNING_HASH_VERSION} is checked)"
            )
        if message.running_hash.hex() != ref.get("running_hash"):
            raise ProofError(f"{where}: running hash {message.running_hash.hex()[:16]}… is not the receipt's")


def _sdk(where: str) -> Any:
    try:
        import hiero_sdk_python  # type: ignore[import-untyped]
    except ImportError:
        raise LedgerRejected(f"{where}: submitting to Hedera needs its SDK: pip install hiero-sdk-python") from None
    return hiero_sdk_python


def message_transaction(topic_id: str, payload: bytes) -> Any:
    """The SDK transaction that posts ``payload`` to ``topic_id``, unsigned: one chunk, the
    payload's bytes exactly."""
    sdk = _sdk(f"hedera topic {topic_id}")
    transaction = sdk.TopicMessageSubmitTransaction(topic_id=sdk.TopicId.from_string(topic_id), message=payload)
    if transaction.get_required_chunks() != 1:  # cannot happen: payloads are under 1024 bytes
        raise LedgerRejected(f"hedera topic {topic_id}: a {len(payload)}-byte payload would need several chunks")
    return transaction


def submit_result(result: Any, where: str) -> dict[str, Any]:
    """The fields of a consensus node's receipt for a topic message that go into our receipt."""
    sdk = _sdk(where)
    if result.status != sdk.ResponseCode.SUCCESS:
        raise LedgerRejected(f"{where}: the network refused the message: {sdk.ResponseCode(result.status).name}")
    running = result.topic_running_hash or b""
    return {
        "sequence_number": int(result.topic_sequence_number),
        "running_hash": running.hex(),
        "running_hash_version": int(result._receipt_proto.topicRunningHashVersion),
        "transaction_id": None if result.transaction_id is None else str(result.transaction_id),
    }


def _ref_int(ref: dict[str, Any], name: str) -> int:
    value = ref.get(name)
    if type(value) is not int or value < 1:
        raise ProofError(f"the receipt's reference has no valid {name!r} (got {value!r:.40})")
    return value
