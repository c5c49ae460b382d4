"""The anchoring loop: the latest checkpoint on every configured ledger, receipts kept and upgraded.

Each round anchors the latest signed checkpoint on every ledger that does not hold it yet
(more than one ledger at once is normal: no single anchor service is a point of failure), and
refreshes every pending receipt (pending → confirmed with N confirmations, in place, as
OpenTimestamps upgrades its proofs). A ledger that fails is logged loudly and retried next
round for the same checkpoint, idempotently (a row per ledger and size); it never blocks
ingest, which does not wait for anchoring. An event is covered by any anchor of a checkpoint
at least as large as the one its inclusion proof uses, through a consistency proof.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from stave.anchor import PENDING, Ledger, Receipt
from stave.anchor.base import now_ms
from stave.db.schema import anchors
from stave.errors import LedgerError
from stave.log.bundle import anchor_of
from stave.log.sequencer import Log, SignedCheckpoint

__all__ = ["AnchorOutcome", "Anchoring"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AnchorOutcome:
    ledger: str
    size: int
    state: str  # pending | confirmed | failed | error
    detail: str


class Anchoring:
    def __init__(self, log: Log, ledgers: Sequence[Ledger]) -> None:
        self.log = log
        self.ledgers = list(ledgers)

    def run_once(self) -> list[AnchorOutcome]:
        """Anchor the latest checkpoint everywhere and refresh pending receipts; never raises for a ledger."""
        checkpoint = self.log.latest_checkpoint()
        outcomes: list[AnchorOutcome] = []
        for ledger in self.ledgers:
            if checkpoint is not None and self._row(ledger.url, checkpoint.size) is None:
                outcomes.append(self._anchor(ledger, checkpoint))
            for size, receipt in self._pending(ledger.url):
                outcomes.append(self._refresh(ledger, size, receipt))
        return outcomes

    def _anchor(self, ledger: Ledger, checkpoint: SignedCheckpoint) -> AnchorOutcome:
        anchor = anchor_of(checkpoint.note, self.log.origin, checkpoint.size, checkpoint.root)
        try:
            receipt = ledger.anchor(anchor)
        except LedgerError as exc:
            _log.error("anchoring checkpoint %d on %s failed: %s", checkpoint.size, ledger.url, exc)
            self._save(ledger.url, checkpoint.size, None, error=str(exc))
            return AnchorOutcome(ledger.url, checkpoint.size, "error", str(exc))
        self._save(ledger.url, checkpoint.size, receipt)
        return AnchorOutcome(ledger.url, checkpoint.size, receipt.state, receipt.reason or ledger.note)

    def _refresh(self, ledger: Ledger, size: int, receipt: Receipt | None) -> AnchorOutcome:
        if receipt is None:  # an earlier attempt failed before a receipt: try the anchor again
            checkpoint = self.log.checkpoint_at(size)
            if checkpoint is None:
                return AnchorOutcome(ledger.url, size, "error", "its checkpoint is gone")
            return self._anchor(ledger, checkpoint)
        try:
            upgraded = ledger.refresh(receipt)
        except LedgerError as exc:
            _log.error("refreshing the anchor of %d on %s failed: %s", size, ledger.url, exc)
            self._save(ledger.url, size, receipt, error=str(exc))
            return AnchorOutcome(ledger.url, size, "error", str(exc))
        self._save(ledger.url, size, upgraded)
        return AnchorOutcome(ledger.url, size, upgraded.state, upgraded.reason or "")

    def receipts_from(self, size: int) -> list[tuple[Receipt, SignedCheckpoint]]:
        """Receipts (pending or confirmed) of checkpoints at least ``size`` large, smallest first."""
        out: list[tuple[Receipt, SignedCheckpoint]] = []
        with self.log.database.engine.connect() as connection:
            rows = connection.execute(
                select(anchors.c.size, anchors.c.receipt)
                .where(anchors.c.size >= size, anchors.c.receipt.is_not(None), anchors.c.state != "failed")
                .order_by(anchors.c.size, anchors.c.ledger)
            ).all()
        for anchored_size, receipt_json in rows:
            checkpoint = self.log.checkpoint_at(int(anchored_size))
            if checkpoint is not None:
                out.append((Receipt.from_json(receipt_json), checkpoint))
        return out

    def status(self) -> list[tuple[str, int, str, int, str | None]]:
        """(ledger, size, state, attempts, last error) of every anchor row, newest first."""
        with self.log.database.engine.connect() as connection:
            rows = connection.execute(
                select(anchors.c.ledger, anchors.c.size, anchors.c.state, anchors.c.attempts, anchors.c.last_error)
                .order_by(anchors.c.size.desc(), anchors.c.ledger)
                .limit(100)
            ).all()
        return [(ledger, int(size), state, int(attempts), error) for ledger, size, state, attempts, error in rows]

    # --- persistence ----------------------------------------------------------------------------

    def _row(self, ledger: str, size: int) -> tuple[str, str | None] | None:
        with self.log.database.engine.connect() as connection:
            row = connection.execute(
                select(anchors.c.state, anchors.c.receipt).where(anchors.c.ledger == ledger, anchors.c.size == size)
            ).first()
        return None if row is None else (row[0], row[1])

    def _pending(self, ledger: str) -> list[tuple[int, Receipt | None]]:
        with self.log.database.engine.connect() as connection:
            rows = connection.execute(
                select(anchors.c.size, anchors.c.receipt).where(
                    anchors.c.ledger == ledger, anchors.c.state.in_([PENDING, "error"])
                )
            ).all()
        return [(int(size), Receipt.from_json(text) if text else None) for size, text in rows]

    def _save(self, ledger: str, size: int, receipt: Receipt | None, *, error: str | None = None) -> None:
        state = "error" if receipt is None else receipt.state
        now = now_ms()
        insert = self.log.database.insert(anchors)
        text = None if receipt is None else receipt.to_json().decode()
        row = {
            "ledger": ledger,
            "size": size,
            "state": state,
            "receipt": text,
            "attempts": 1,
            "last_error": error,
            "created_at": now,
            "updated_at": now,
        }
        update: dict[str, Any] = {
            "state": state,
            "last_error": error,
            "updated_at": now,
            "attempts": anchors.c.attempts + 1,
        }
        if text is not None:
            update["receipt"] = text
        with self.log.database.write() as connection:
            connection.execute(insert.on_conflict_do_update(index_elements=["ledger", "size"], set_=update), row)
