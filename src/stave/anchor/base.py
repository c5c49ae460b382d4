"""The anchoring contract: what is anchored, the receipt that proves it, and the ledger interface.

An :class:`Anchor` is a checkpoint of the log (origin, tree size, root hash, and the SHA-256 of
the signed checkpoint note). Its :meth:`Anchor.payload` is the one byte string every ledger
records. A ledger driver implements private ``_anchor``/``_refresh``/``_verify`` (and optionally
``_health``); the public methods, which every caller uses, check that a receipt belongs to the
ledger and records the anchor it is checked against, and map each SDK's exceptions onto
stave's (``LedgerUnavailable`` when retrying may help, ``LedgerError`` otherwise). A receipt
that does not verify raises ``ProofError``: verification fails closed, never returns False.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Final, Literal, TypeVar, cast, get_args

import orjson

from stave.errors import LedgerError, ProofError, StaveError

__all__ = [
    "CONFIRMED",
    "FAILED",
    "PAYLOAD_PREFIX",
    "PENDING",
    "Anchor",
    "Kind",
    "Ledger",
    "LedgerHealth",
    "LedgerRejected",
    "LedgerUnavailable",
    "Receipt",
    "State",
    "now_ms",
]

T = TypeVar("T")

Kind = Literal["witness", "evm", "hedera"]
State = Literal["pending", "confirmed", "failed"]
PENDING: Final = "pending"
CONFIRMED: Final = "confirmed"
FAILED: Final = "failed"

#: Version 1 of the payload. A new layout gets a new prefix, never a reinterpretation of this one.
PAYLOAD_PREFIX: Final = b"stave-anchor:v1:"
# Origins are printable ASCII without spaces (C2SP checkpoints: a schema-less URL) and short
# enough that a payload fits one Hedera message chunk (1024 bytes) with room to spare.
_ORIGIN = re.compile(r"[\x21-\x7e]{1,255}\Z")
_HEX32 = re.compile(r"[0-9a-f]{64}\Z")
_DECIMAL = re.compile(r"(0|[1-9][0-9]{0,18})\Z")
_MAX_SIZE: Final = (1 << 63) - 1  # the log's sizes are SQL BIGINTs
RECEIPT_VERSION: Final = 1


class LedgerUnavailable(LedgerError):
    """The ledger cannot be reached now (connection refused, timeout); retrying may succeed."""


class LedgerRejected(LedgerError):
    """The ledger refused the anchor (no funds, bad key, nonce taken): retrying as is will not help."""


def now_ms() -> int:
    """Unix time in milliseconds, the unit of every stave timestamp."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Anchor:
    """A checkpoint of the log, as anchored: ``root_hash`` and ``checkpoint_digest`` are 32 bytes.

    ``checkpoint_digest`` is the SHA-256 of the signed checkpoint note text, so a receipt also
    pins the exact signed note (and its signatures), not only the tree head.
    """

    origin: str
    tree_size: int
    root_hash: bytes
    checkpoint_digest: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not _ORIGIN.match(self.origin):
            raise ValueError(f"anchor origin: 1-255 printable ASCII characters without spaces, got {self.origin!r:.80}")
        if type(self.tree_size) is not int or not 0 <= self.tree_size <= _MAX_SIZE:
            raise ValueError(f"anchor tree_size: an integer in [0, 2^63), got {self.tree_size!r:.40}")
        for name in ("root_hash", "checkpoint_digest"):
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != 32:
                raise ValueError(f"anchor {name}: 32 bytes, got {value!r:.80}")

    def payload(self) -> bytes:
        """``stave-anchor:v1:<origin>:<tree_size>:<root hex>:<checkpoint digest hex>``, ASCII.

        Unambiguous: the last three fields are a canonical decimal and two 64-character
        lowercase hex strings, none of which can hold ``:``, so splitting at the last three
        colons recovers every field even when the origin contains colons (``host:port/log``);
        :meth:`from_payload` accepts only this exact canonical form, so two different anchors
        never share a payload. It is text so that it reads in a block explorer as it is.
        """
        text = f"{self.origin}:{self.tree_size}:{self.root_hash.hex()}:{self.checkpoint_digest.hex()}"
        return PAYLOAD_PREFIX + text.encode("ascii")

    @classmethod
    def from_payload(cls, payload: bytes) -> Anchor:
        """Parse a payload read from a ledger; raise ProofError unless it is exactly canonical."""
        if not isinstance(payload, bytes) or not payload.startswith(PAYLOAD_PREFIX):
            raise ProofError(f"anchor payload: expected the prefix {PAYLOAD_PREFIX!r}, got {payload[:40]!r}")
        try:
            text = payload[len(PAYLOAD_PREFIX) :].decode("ascii")
        except UnicodeDecodeError:
            raise ProofError("anchor payload: not ASCII") from None
        parts = text.rsplit(":", 3)
        if len(parts) != 4 or not _DECIMAL.match(parts[1]) or not all(_HEX32.match(p) for p in parts[2:]):
            raise ProofError(f"anchor payload: expected <origin>:<size>:<64 hex>:<64 hex>, got {text!r:.200}")
        try:
            anchor = cls(parts[0], int(parts[1]), bytes.fromhex(parts[2]), bytes.fromhex(parts[3]))
        except ValueError as exc:
            raise ProofError(f"anchor payload: {exc}") from None
        if anchor.payload() != payload:  # belt and braces: only the canonical form parses
            raise ProofError("anchor payload: not in canonical form")
        return anchor

    def differences(self, other: Anchor) -> list[str]:
        """The names of the fields that differ, for messages."""
        return [
            name
            for name in ("origin", "tree_size", "root_hash", "checkpoint_digest")
            if getattr(self, name) != getattr(other, name)
        ]


_RECEIPT_FIELDS: Final = (
    "v",
    "ledger",
    "kind",
    "state",
    "origin",
    "tree_size",
    "root_hash",
    "checkpoint_digest",
    "reference",
    "created_at",
    "confirmed_at",
    "note",
    "reason",
)


@dataclass(frozen=True, slots=True)
class Receipt:
    """Evidence that a ledger recorded an anchor; JSON in proof bundles and the ``anchors`` table.

    ``ledger`` is the driver URL without secrets; ``reference`` the driver's locator and
    evidence (EVM: chain id, tx hash, block number/hash/timestamp, sender, confirmations;
    witness: path, line, entry hash; Hedera: topic id, sequence number, consensus timestamp,
    running hash). ``created_at``/``confirmed_at`` are Unix milliseconds of this machine's
    clock (the ledger's own time is in ``reference``). ``note`` says what kind of evidence this
    is, ``reason`` why a receipt is pending or failed. ``extra`` keeps fields a newer stave
    wrote, so a receipt passing through an older one is not stripped.
    """

    ledger: str
    kind: Kind
    state: State
    anchor: Anchor
    reference: dict[str, Any]
    created_at: int
    confirmed_at: int | None = None
    note: str = ""
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def confirmations(self) -> int:
        value = self.reference.get("confirmations", 0)
        return value if type(value) is int else 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)  # known fields win over a stray extra of the same name
        out.update(
            v=RECEIPT_VERSION,
            ledger=self.ledger,
            kind=self.kind,
            state=self.state,
            origin=self.anchor.origin,
            tree_size=self.anchor.tree_size,
            root_hash=self.anchor.root_hash.hex(),
            checkpoint_digest=self.anchor.checkpoint_digest.hex(),
            reference=self.reference,
            created_at=self.created_at,
            confirmed_at=self.confirmed_at,
            note=self.note,
            reason=self.reason,
        )
        return out

    def to_json(self) -> bytes:
        """Compact JSON with sorted keys: the same receipt always gives the same bytes."""
        return orjson.dumps(self.to_dict(), option=orjson.OPT_SORT_KEYS)

    @classmethod
    def from_json(cls, data: bytes | str) -> Receipt:
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ProofError(f"receipt: not JSON: {exc}") from None
        return cls.from_dict(value)

    @classmethod
    def from_dict(cls, value: object) -> Receipt:
        """Check every known field's type; raise ProofError naming the first bad one."""
        if not isinstance(value, dict):
            raise ProofError(f"receipt: expected a JSON object, got {type(value).__name__}")
        if value.get("v") != RECEIPT_VERSION:
            raise ProofError(f"receipt: version {value.get('v')!r} is not supported (expected {RECEIPT_VERSION})")

        def get(name: str, kind: type[T] | tuple[type, ...], optional: bool = False) -> T:
            item = value.get(name)
            if item is None and optional:
                return cast(T, None)
            # bool is an int in Python, never in a receipt
            if not isinstance(item, kind) or (isinstance(item, bool) and kind is not bool):
                raise ProofError(f"receipt: field {name!r}: expected {_type_name(kind)}, got {item!r:.80}")
            return cast(T, item)

        kind = get("kind", str)
        state = get("state", str)
        if kind not in get_args(Kind):
            raise ProofError(f"receipt: field 'kind': expected one of {get_args(Kind)}, got {kind!r:.40}")
        if state not in get_args(State):
            raise ProofError(f"receipt: field 'state': expected one of {get_args(State)}, got {state!r:.40}")
        try:
            anchor = Anchor(
                get("origin", str),
                get("tree_size", int),
                _unhex(get("root_hash", str)),
                _unhex(get("checkpoint_digest", str)),
            )
        except ValueError as exc:
            raise ProofError(f"receipt: {exc}") from None
        return cls(
            ledger=get("ledger", str),
            kind=cast(Kind, kind),
            state=cast(State, state),
            anchor=anchor,
            reference=dict(get("reference", dict)),
            created_at=get("created_at", int),
            confirmed_at=get("confirmed_at", int, optional=True),
            note=get("note", str, optional=True) or "",
            reason=get("reason", str, optional=True),
            extra={k: v for k, v in value.items() if k not in _RECEIPT_FIELDS},
        )


def _unhex(text: str) -> bytes:
    if not _HEX32.match(text):
        raise ValueError(f"expected 64 lowercase hex characters, got {text!r:.80}")
    return bytes.fromhex(text)


def _type_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", dict: "an object", bool: "a boolean"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


@dataclass(frozen=True, slots=True)
class LedgerHealth:
    ledger: str
    ok: bool
    latency_ms: float
    detail: str = ""


class Ledger(ABC):
    """A place that records anchors. Subclasses implement the ``_`` methods only.

    ``url`` is the driver URL without secrets: it goes into every receipt. ``anchor`` may
    return a pending receipt; ``refresh`` upgrades it (idempotently) as the ledger confirms it,
    as OpenTimestamps upgrades its proofs; ``verify`` re-reads the ledger and raises unless the
    receipt records exactly the given anchor, confirmed by this ledger's own policy. A receipt
    may be verified through another endpoint of the same ledger than the one that wrote it
    (another RPC node of the chain, a moved witness file): drivers check the ledger's identity
    (chain id, network and topic) and the recorded entry, not the URL.
    """

    kind: ClassVar[Kind]
    #: what kind of evidence this ledger gives, for people: put in every receipt's ``note``
    note: ClassVar[str] = ""
    #: SDK exceptions that mean "try again later" (connection refused, timeouts)
    transient_errors: ClassVar[tuple[type[BaseException], ...]] = (OSError, TimeoutError)

    def __init__(self, url: str) -> None:
        self.url = url

    # --- public contract -----------------------------------------------------------------

    def anchor(self, anchor: Anchor) -> Receipt:
        """Submit ``anchor``; return its receipt, which may be pending."""
        receipt = self._call("anchor", lambda: self._anchor(anchor))
        assert receipt.anchor == anchor, receipt
        assert receipt.kind == self.kind, receipt
        return receipt

    def refresh(self, receipt: Receipt) -> Receipt:
        """Re-read the ledger and return the receipt's current state (pending → confirmed, or back
        to pending after a reorg). Failed receipts are final and returned unchanged."""
        self._check_kind(receipt)
        if receipt.state == FAILED:
            return receipt
        return self._call("refresh", lambda: self._refresh(receipt))

    def verify(self, receipt: Receipt, anchor: Anchor) -> None:
        """Return None if the ledger records exactly ``anchor`` as ``receipt`` says; raise otherwise.

        ProofError: the receipt is pending/failed, for another anchor, or the ledger says
        otherwise. LedgerError: the ledger could not be read, so nothing was proven.
        """
        self._check_kind(receipt)
        if receipt.anchor != anchor:
            fields = ", ".join(receipt.anchor.differences(anchor))
            raise ProofError(f"{self.url}: the receipt is for another anchor (differs in {fields})")
        if receipt.state != CONFIRMED:
            why = f": {receipt.reason}" if receipt.reason else ""
            raise ProofError(f"{self.url}: the receipt is {receipt.state}, not confirmed{why}")
        self._call("verify", lambda: self._verify(receipt, anchor))

    def health(self) -> LedgerHealth:
        start = time.perf_counter()
        try:
            detail = self._health()
            ok = True
        except Exception as exc:
            detail, ok = f"{type(exc).__name__}: {exc}", False
        return LedgerHealth(self.url, ok, (time.perf_counter() - start) * 1000, detail)

    def describe(self) -> str:
        """One line for people: which ledger, and what its receipts are worth."""
        return f"{self.url} ({self.kind}): {self.note}"

    def close(self) -> None:  # noqa: B027 - a no-op default; drivers with connections override it
        """Release connections; the default has none."""

    # --- what drivers implement ----------------------------------------------------------

    @abstractmethod
    def _anchor(self, anchor: Anchor) -> Receipt: ...

    @abstractmethod
    def _refresh(self, receipt: Receipt) -> Receipt: ...

    @abstractmethod
    def _verify(self, receipt: Receipt, anchor: Anchor) -> None:
        """Raise ProofError unless the ledger records ``anchor`` as ``receipt`` says."""

    def _health(self) -> str:
        """Raise if the ledger cannot serve; return a short detail."""
        return "ok"

    # --- helpers ---------------------------------------------------------------------------

    def _receipt(self, anchor: Anchor, state: State, reference: dict[str, Any], **kwargs: Any) -> Receipt:
        return Receipt(self.url, self.kind, state, anchor, reference, now_ms(), note=self.note, **kwargs)

    @staticmethod
    def _update(receipt: Receipt, state: State, reference: dict[str, Any], reason: str | None = None) -> Receipt:
        """The receipt in its new state; ``confirmed_at`` is kept while it stays confirmed, so
        refreshing a confirmed receipt twice gives equal receipts."""
        if state != CONFIRMED:
            confirmed_at = None
        elif receipt.state == CONFIRMED and receipt.confirmed_at is not None:
            confirmed_at = receipt.confirmed_at
        else:
            confirmed_at = now_ms()
        return replace(receipt, state=state, reference=reference, confirmed_at=confirmed_at, reason=reason)

    def _check_kind(self, receipt: Receipt) -> None:
        if receipt.kind != self.kind:
            raise ProofError(
                f"{self.url}: a {receipt.kind} receipt ({receipt.ledger}) cannot be checked by a {self.kind} ledger"
            )

    def _call(self, action: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except StaveError:
            raise
        except self.transient_errors as exc:
            raise LedgerUnavailable(
                f"{self.url}: {action}: cannot reach the ledger: {type(exc).__name__}: {exc}"
            ) from exc
        except Exception as exc:
            raise LedgerError(f"{self.url}: {action}: {type(exc).__name__}: {exc}") from exc

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
