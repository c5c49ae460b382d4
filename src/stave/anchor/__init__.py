"""Anchoring checkpoint roots on ledgers, so anyone can prove a root existed before a given time.

One small interface (:class:`Ledger`: ``anchor``, ``refresh``, ``verify``, ``health``), one
driver per ledger, opened from URLs (:func:`open_ledger`): a local witness file (the embedded
default, and not a blockchain), an EVM chain over JSON-RPC, and the Hedera Consensus
Service. A :class:`Receipt` is JSON that travels in proof bundles and is upgraded in place
from pending to confirmed by ``refresh``.

The EVM and Hedera drivers are imported on first use (``stave.anchor.evm`` needs ``web3``).
"""

from stave.anchor.base import (
    CONFIRMED,
    FAILED,
    PAYLOAD_PREFIX,
    PENDING,
    Anchor,
    Ledger,
    LedgerHealth,
    LedgerRejected,
    LedgerUnavailable,
    Receipt,
)
from stave.anchor.urls import open_ledger
from stave.anchor.witness import WitnessLedger, verify_file

__all__ = [
    "CONFIRMED",
    "FAILED",
    "PAYLOAD_PREFIX",
    "PENDING",
    "Anchor",
    "Ledger",
    "LedgerHealth",
    "LedgerRejected",
    "LedgerUnavailable",
    "Receipt",
    "WitnessLedger",
    "open_ledger",
    "verify_file",
]
