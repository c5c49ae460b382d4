"""The log as the rest of stave uses it: store then sequence, checkpoints, bundles, anchoring.

:class:`LogService` joins the replicated store (the event bytes), the :class:`~stave.log.sequencer.Log`
(positions and proofs) and the anchoring ledgers. It is what ``stave log``, ``stave proof``,
``stave anchor`` and the server call.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from stave.errors import BlobNotFound, IntegrityError, ProofError, StaveError
from stave.event import Event
from stave.log import merkle
from stave.log.anchoring import Anchoring
from stave.log.bundle import BUNDLE_VERSION, encode_hashes
from stave.log.note import Signer
from stave.log.sequencer import Log, event_leaf
from stave.store import QuorumError, ReplicatedStore

__all__ = ["Added", "LogService", "load_or_create_signer"]


def load_or_create_signer(path: Path, origin: str) -> Signer:
    """The log's Ed25519 key, in the Go note format (``PRIVATE+KEY+<origin>+…``), mode 0600.

    Made on first use. Every process serving one log must use the same key file.
    """
    if path.exists():
        try:
            signer = Signer.from_private_key_text(path.read_text(encoding="ascii").strip())
        except (OSError, UnicodeDecodeError, StaveError) as exc:
            raise StaveError(f"log key file {path}: {exc}") from None
        if signer.name != origin:
            raise StaveError(
                f"log key file {path} is for origin {signer.name!r}, but log.origin is {origin!r}: "
                "a log's origin cannot change; use another data directory or key file"
            )
        return signer
    signer = Signer.generate(origin)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(signer.private_key_text() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(temp, path)  # create-only: when two processes start at once, the first key wins
    except FileExistsError:
        return load_or_create_signer(path, origin)
    finally:
        temp.unlink()
    return signer


@dataclass(frozen=True, slots=True)
class Added:
    event_id: str
    seq: int | None
    new: bool
    stored: list[str]
    error: str | None = None


class LogService:
    def __init__(self, log: Log, store: ReplicatedStore, anchoring: Anchoring) -> None:
        self.log = log
        self.store = store
        self.anchoring = anchoring

    def add(self, events: Sequence[Event], *, checkpoint: bool = True) -> list[Added]:
        """Store each event at quorum, then sequence the stored ones, then publish a checkpoint.

        An event is sequenced only once its bytes are acknowledged by the store, so every
        position in the log can be served. An event already in the log keeps its position.
        """
        known = self.log.lookup_many([event.id for event in events])
        fresh = [event for event in events if event.id not in known]
        stored = dict(zip([e.id for e in fresh], self.store.put_events(fresh), strict=True))
        sequenced = self.log.append([e for e in fresh if not isinstance(stored[e.id], QuorumError)])
        positions = {item.event_id: item for item in sequenced}
        out: list[Added] = []
        for event in events:
            if event.id in known:
                out.append(Added(event.id, known[event.id], False, []))
                continue
            result = stored[event.id]
            if isinstance(result, QuorumError):
                out.append(Added(event.id, None, False, result.confirmed, str(result)))
            else:
                item = positions[event.id]
                out.append(Added(event.id, item.seq, item.new, result.stored))
        if checkpoint and sequenced:
            self.log.publish_checkpoint()
        return out

    def bundle(self, event_id: str) -> dict[str, Any]:
        """The proof bundle of a sequenced event (see :mod:`stave.log.bundle`)."""
        seq = self.log.lookup(event_id)
        if seq is None:
            raise BlobNotFound(f"event {event_id} is not in the log")
        checkpoint = self.log.latest_checkpoint()
        if checkpoint is None or checkpoint.size <= seq:
            raise ProofError(f"no published checkpoint covers log index {seq} yet: publish one or wait")
        event = orjson.loads(self.store.get_event(event_id))
        proof = self.log.inclusion_proof(seq, checkpoint.size)
        # Served proofs are checked first against the signed roots (O(log n) hashes): a damaged
        # stored node must be a clear server-side fault, not a bundle every client rejects.
        with _served_proof(f"inclusion of log index {seq} in the checkpoint of size {checkpoint.size}"):
            merkle.verify_inclusion(event_leaf(event_id), seq, checkpoint.size, proof, checkpoint.root)
        anchors = []
        for receipt, anchored in self.anchoring.receipts_from(checkpoint.size):
            consistency = self.log.consistency_proof(checkpoint.size, anchored.size)
            with _served_proof(f"consistency of the checkpoints of sizes {checkpoint.size} and {anchored.size}"):
                merkle.verify_consistency(checkpoint.size, anchored.size, checkpoint.root, anchored.root, consistency)
            anchors.append(
                {
                    "receipt": receipt.to_dict(),
                    "checkpoint": anchored.note,
                    "consistency_proof": {
                        "old_size": checkpoint.size,
                        "new_size": anchored.size,
                        "hashes": encode_hashes(consistency),
                    },
                }
            )
        return {
            "v": BUNDLE_VERSION,
            "event": event,
            "inclusion_proof": {
                "log_index": seq,
                "tree_size": checkpoint.size,
                "root_hash": checkpoint.root_b64,
                "hashes": encode_hashes(proof),
                "checkpoint": checkpoint.note,
            },
            "anchors": anchors,
        }

    def close(self) -> None:
        self.store.close()
        for ledger in self.anchoring.ledgers:
            ledger.close()


@contextlib.contextmanager
def _served_proof(what: str) -> Iterator[None]:
    try:
        yield
    except ProofError as exc:
        raise IntegrityError(
            f"the log's stored tree nodes do not prove the {what} ({exc}): run `stave log verify`"
        ) from exc
