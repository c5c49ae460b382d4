"""An EVM chain over JSON-RPC (``evm+http://127.0.0.1:8545?key_file=/etc/stave/evm.key&confirmations=12``).

An anchor is a plain transaction **to the sender's own address**, value 0, with the anchor
payload as its ``data``: no contract to deploy or trust, the cheapest kind of transaction
(21 000 gas plus 16 per data byte), nothing burnt but the fee, and the payload reads as text
in any block explorer. EIP-1559 fees where the chain has a base fee, legacy gas prices
otherwise. The signing key is read from ``key_file`` (hex, with or without ``0x``), never
from the URL or the command line; a ledger without a key can still refresh and verify.

Parameters: ``key_file``; ``confirmations`` (blocks, the tx's own included, before a receipt
counts as confirmed; default 12); ``chain_id`` (checked against the node on every call;
recommended); ``sender`` (the address receipts must come from, for verifiers without the
key); ``timeout`` (seconds per RPC call, default 10); ``wait`` (seconds ``anchor`` waits for
the transaction to be mined, default 0: return it pending).

Idempotence: a signed transaction is deterministic (RFC 6979 signatures, a fixed nonce), and
the pending receipt carries it (``raw_tx``). ``refresh`` re-broadcasts that same transaction
when the node has lost it (dropped from the mempool, or reorged out), so retrying can never
mine the anchor twice through one receipt. The ledger also remembers, for its lifetime, the
receipt of each payload it sent, so a retried ``anchor()`` in the same process refreshes the
first transaction instead of sending a second. Across processes, keep the pending receipt and
``refresh`` it: a second ``anchor()`` there sends a second transaction (with the next nonce).
Two confirmed transactions of one payload are two valid receipts of the same anchor; only
the fee is wasted.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Final, cast
from urllib.parse import unquote, urlsplit

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ProviderConnectionError, RequestTimedOut, TooManyRequests, TransactionNotFound, Web3RPCError
from web3.types import TxParams

from stave.anchor.base import CONFIRMED, FAILED, PENDING, Anchor, Ledger, LedgerRejected, Receipt, State
from stave.anchor.urls import query_params
from stave.errors import ConfigError, ProofError

__all__ = ["EVM_NOTE", "EvmLedger"]

EVM_NOTE: Final = "EVM chain transaction: the payload is the data of a self-addressed transaction"
_PARAMS: Final = {
    "key_file": "file holding the hex private key that signs anchors",
    "confirmations": "blocks before a receipt is confirmed (default 12)",
    "chain_id": "the chain id the node must serve",
    "sender": "the address anchors must come from",
    "timeout": "seconds per RPC call (default 10)",
    "wait": "seconds anchor() waits for inclusion (default 0)",
}
_KEY = re.compile(r"(0x)?([0-9a-fA-F]{64})\Z")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}\Z")


def _hex(value: bytes) -> str:
    return HexBytes(value).to_0x_hex()  # web3 >= 7: HexBytes.hex() has no 0x prefix


class EvmLedger(Ledger):
    kind = "evm"
    note = EVM_NOTE
    transient_errors = (OSError, TimeoutError, ProviderConnectionError, RequestTimedOut, TooManyRequests)

    def __init__(
        self,
        rpc_url: str,
        *,
        key_file: str | Path | None = None,
        confirmations: int = 12,
        chain_id: int | None = None,
        sender: str | None = None,
        timeout: float = 10.0,
        wait: float = 0.0,
        public_url: str | None = None,
    ) -> None:
        if confirmations < 1:
            raise ConfigError(f"confirmations must be at least 1, got {confirmations}")
        self.rpc_url = rpc_url
        self.confirmations = confirmations
        self.chain_id = chain_id
        self.timeout = timeout
        self.wait = wait
        self._account: LocalAccount | None = _read_key(Path(key_file)) if key_file is not None else None
        if sender is not None and not _ADDRESS.match(sender):
            raise ConfigError(f"sender: expected a 0x-prefixed 20-byte hex address, got {sender!r:.60}")
        if self._account is not None and sender is not None and sender.lower() != self._account.address.lower():
            raise ConfigError(f"sender {sender} is not the address of the key in {key_file} ({self._account.address})")
        self.sender = (
            self._account.address
            if self._account is not None
            else (Web3.to_checksum_address(sender) if sender else None)
        )
        provider = Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None)
        self._w3 = Web3(provider)
        self._sent: dict[bytes, Receipt] = {}  # payload → receipt, for idempotent retries
        super().__init__(public_url or _public_url(rpc_url, chain_id))

    @classmethod
    def from_url(cls, url: str) -> EvmLedger:
        """``evm+http(s)://host:port/path?key_file=…&confirmations=…&chain_id=…&sender=…``."""
        parts = urlsplit(url)
        if parts.scheme not in ("evm+http", "evm+https") or not parts.hostname:
            raise ConfigError(f"ledger URL {_public_url(url, None)!r}: expected evm+http(s)://host[:port][/path]")
        params = query_params(url, _PARAMS)
        rpc_url = parts._replace(scheme=parts.scheme.removeprefix("evm+"), query="", fragment="").geturl()
        try:
            return cls(
                rpc_url,
                key_file=unquote(params["key_file"]) if "key_file" in params else None,
                confirmations=int(params.get("confirmations", "12")),
                chain_id=int(params["chain_id"]) if "chain_id" in params else None,
                sender=params.get("sender"),
                timeout=float(params.get("timeout", "10")),
                wait=float(params.get("wait", "0")),
            )
        except ValueError as exc:
            raise ConfigError(f"ledger URL {_public_url(url, None)!r}: {exc}") from None

    @property
    def address(self) -> str | None:
        """The address that signs anchors (None without a key)."""
        return self._account.address if self._account is not None else None

    # --- anchor --------------------------------------------------------------------------

    def _anchor(self, anchor: Anchor) -> Receipt:
        payload = anchor.payload()
        known = self._sent.get(payload)
        if known is not None:  # a retry in this process: follow the transaction already sent
            receipt = self._refresh(known)
            if receipt.state != FAILED:
                self._sent[payload] = receipt
                return self._wait(receipt)
        account = self._require_key()
        chain_id = self._node_chain_id()
        w3 = self._w3
        nonce = w3.eth.get_transaction_count(account.address, "pending")
        tx: dict[str, Any] = {"chainId": chain_id, "nonce": nonce, "to": account.address, "value": 0, "data": payload}
        tx["gas"] = w3.eth.estimate_gas(cast(TxParams, {**tx, "from": account.address}))
        base_fee = w3.eth.get_block("latest").get("baseFeePerGas")
        if base_fee is not None:
            tip = w3.eth.max_priority_fee
            tx.update(type=2, maxPriorityFeePerGas=tip, maxFeePerGas=2 * base_fee + tip)
        else:
            tx["gasPrice"] = w3.eth.gas_price
        signed = account.sign_transaction(tx)
        reference = {
            "chain_id": chain_id,
            "tx_hash": _hex(signed.hash),
            "from": account.address,
            "to": account.address,
            "nonce": nonce,
            "raw_tx": _hex(signed.raw_transaction),
            "confirmations": 0,
            "required_confirmations": self.confirmations,
        }
        receipt = self._receipt(anchor, PENDING, reference, reason="sent; waiting to be mined")
        # Remembered before sending: if the answer is lost, a retry re-broadcasts this very
        # transaction rather than signing a second one.
        self._sent[payload] = receipt
        try:
            w3.eth.send_raw_transaction(signed.raw_transaction)
        except Web3RPCError as exc:
            if "already known" not in str(exc).lower():
                del self._sent[payload]
                raise LedgerRejected(
                    f"{self.url}: the node refused the anchor transaction: {_rpc_message(exc)}"
                ) from None
        return self._wait(receipt)

    def _wait(self, receipt: Receipt) -> Receipt:
        """Poll for inclusion for up to ``wait`` seconds. The transaction is sent: from here on a
        lost connection returns the pending receipt (to refresh later), never an error."""
        deadline = time.monotonic() + self.wait
        try:
            while receipt.state == PENDING and time.monotonic() < deadline:
                time.sleep(min(0.5, self.wait / 10))
                receipt = self._refresh(receipt)
        except self.transient_errors as exc:
            receipt = replace(receipt, reason=f"sent; the node stopped answering ({type(exc).__name__}): refresh later")
        self._sent[receipt.anchor.payload()] = receipt
        return receipt

    # --- refresh -------------------------------------------------------------------------

    def _refresh(self, receipt: Receipt) -> Receipt:
        ref = dict(receipt.reference)
        tx_hash = _field(ref, "tx_hash", str)
        self._check_chain(_field(ref, "chain_id", int))
        mined = self._mined(tx_hash)
        previous_block = (ref.get("block_number"), ref.get("block_hash"))
        if mined is None:
            for name in ("block_number", "block_hash", "block_timestamp"):
                ref.pop(name, None)
            ref["confirmations"] = 0
            if previous_block[0] is not None:
                lost = f"reorg: the transaction is no longer in block {previous_block[0]} ({previous_block[1]})"
            else:
                lost = "not mined yet"
            state, why = self._rebroadcast(ref, tx_hash)
            return self._update(receipt, state, ref, f"{lost}; {why}")
        if mined.get("status") != 1:
            ref.update(block_number=mined["blockNumber"], block_hash=_hex(mined["blockHash"]))
            return self._update(
                receipt, FAILED, ref, f"the transaction failed (status 0) in block {mined['blockNumber']}"
            )
        number, block_hash = int(mined["blockNumber"]), _hex(mined["blockHash"])
        block = self._w3.eth.get_block(number)
        if _hex(block["hash"]) != block_hash:  # the node is mid-reorg: ask again later
            return self._update(receipt, PENDING, ref, f"block {number} is being reorganised; refresh again")
        confirmations = self._w3.eth.block_number - number + 1
        ref.update(
            block_number=number,
            block_hash=block_hash,
            block_timestamp=int(block["timestamp"]),
            confirmations=confirmations,
            required_confirmations=self.confirmations,
        )
        reason = None
        if previous_block[1] is not None and previous_block[1] != block_hash:
            reason = f"reorg: moved from block {previous_block[0]} ({previous_block[1]}) to block {number}"
        if confirmations < self.confirmations:
            waiting = f"{confirmations} of {self.confirmations} confirmations"
            return self._update(receipt, PENDING, ref, f"{reason}; {waiting}" if reason else waiting)
        if receipt.state == CONFIRMED and reason is not None:
            receipt = self._update(receipt, PENDING, ref)  # re-confirmed in a new block: a new confirmed_at
        return self._update(receipt, CONFIRMED, ref, reason)

    def _mined(self, tx_hash: str) -> dict[str, Any] | None:
        try:
            return dict(self._w3.eth.get_transaction_receipt(HexStr(tx_hash)))
        except TransactionNotFound:
            return None

    def _rebroadcast(self, ref: dict[str, Any], tx_hash: str) -> tuple[State, str]:
        """The state of a transaction that is in no block: in the mempool, lost, or superseded."""
        try:
            self._w3.eth.get_transaction(HexStr(tx_hash))
            return PENDING, "in the node's mempool"
        except TransactionNotFound:
            pass
        nonce, sender = _field(ref, "nonce", int), _field(ref, "from", str)
        if self._w3.eth.get_transaction_count(Web3.to_checksum_address(sender), "latest") > nonce:
            if self._mined(tx_hash) is not None:  # mined between our two questions
                return PENDING, "just mined; refresh again"
            return (
                FAILED,
                f"nonce {nonce} of {sender} was used by another transaction: this one can never be mined; anchor again",
            )
        raw = ref.get("raw_tx")
        # Only ever re-broadcast the receipt's own transaction, whatever else a receipt carries.
        if not isinstance(raw, str) or _hex(Web3.keccak(hexstr=HexStr(raw))).lower() != tx_hash.lower():
            return PENDING, "unknown to the node, and the receipt holds no signed transaction to re-broadcast"
        try:
            self._w3.eth.send_raw_transaction(HexStr(raw))
        except Web3RPCError as exc:
            if "already known" in str(exc).lower():
                return PENDING, "in the node's mempool"
            return PENDING, f"re-broadcast refused: {_rpc_message(exc)}"
        return PENDING, "unknown to the node: re-broadcast the signed transaction"

    # --- verify --------------------------------------------------------------------------

    def _verify(self, receipt: Receipt, anchor: Anchor) -> None:
        ref = receipt.reference
        chain_id, tx_hash = _field(ref, "chain_id", int), _field(ref, "tx_hash", str)
        sender, number = _field(ref, "from", str), _field(ref, "block_number", int)
        block_hash = _field(ref, "block_hash", str)
        self._check_chain(chain_id, proof=True)
        where = f"{self.url}: transaction {tx_hash} on chain {chain_id}"
        try:
            tx = self._w3.eth.get_transaction(HexStr(tx_hash))
        except TransactionNotFound:
            raise ProofError(f"{where}: not found on the chain") from None
        if _hex(tx["hash"]).lower() != tx_hash.lower():
            raise ProofError(f"{where}: the node returned another transaction")
        if bytes(tx["input"]) != anchor.payload():
            raise ProofError(f"{where}: its data is not this anchor's payload ({bytes(tx['input'])[:80]!r})")
        actual_from = str(tx["from"])
        if actual_from.lower() != sender.lower():
            raise ProofError(f"{where}: sent by {actual_from}, the receipt says {sender}")
        if self.sender is not None and actual_from.lower() != self.sender.lower():
            raise ProofError(f"{where}: sent by {actual_from}, not by this ledger's anchoring address {self.sender}")
        if str(tx.get("to", "")).lower() != actual_from.lower():
            raise ProofError(f"{where}: not a self-addressed anchor transaction (to {tx.get('to')})")
        if "chainId" in tx and int(tx["chainId"]) != chain_id:
            raise ProofError(f"{where}: signed for chain {tx['chainId']}")
        mined = self._mined(tx_hash)
        if mined is None or mined.get("status") != 1:
            raise ProofError(f"{where}: not mined successfully")
        if int(mined["blockNumber"]) != number or _hex(mined["blockHash"]).lower() != block_hash.lower():
            actual = f"{mined['blockNumber']} ({_hex(mined['blockHash'])})"
            raise ProofError(f"{where}: in block {actual}, the receipt says {number} ({block_hash})")
        block = self._w3.eth.get_block(number)
        if _hex(block["hash"]).lower() != block_hash.lower():
            raise ProofError(f"{where}: block {number} is no longer {block_hash} (reorganised)")
        if "block_timestamp" in ref and ref["block_timestamp"] != int(block["timestamp"]):
            raise ProofError(f"{where}: block time {block['timestamp']}, the receipt says {ref['block_timestamp']}")
        confirmations = self._w3.eth.block_number - number + 1
        if confirmations < self.confirmations:
            raise ProofError(f"{where}: {confirmations} confirmations, {self.confirmations} required")

    # --- helpers -------------------------------------------------------------------------

    def _health(self) -> str:
        chain_id = self._node_chain_id()
        detail = f"chain {chain_id}, block {self._w3.eth.block_number}"
        if self._account is not None:
            balance = self._w3.eth.get_balance(self._account.address)
            detail += f", {self._account.address} holds {Web3.from_wei(balance, 'ether')} ETH"
        return detail

    def _require_key(self) -> LocalAccount:
        if self._account is None:
            raise LedgerRejected(f"{self.url}: anchoring needs a signing key: add key_file=/path/to/key to the URL")
        return self._account

    def _node_chain_id(self) -> int:
        chain_id = int(self._w3.eth.chain_id)
        if self.chain_id is not None and chain_id != self.chain_id:
            raise LedgerRejected(f"{self.url}: the node serves chain {chain_id}, the URL says chain_id={self.chain_id}")
        return chain_id

    def _check_chain(self, receipt_chain: int, *, proof: bool = False) -> None:
        node_chain = self._node_chain_id()
        if receipt_chain != node_chain:
            message = f"{self.url}: the receipt is for chain {receipt_chain}, the node serves chain {node_chain}"
            raise ProofError(message) if proof else LedgerRejected(message)


def _read_key(path: Path) -> LocalAccount:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"key_file {path}: cannot read it: {type(exc).__name__}") from None
    match = _KEY.match(text)
    if match is None:  # never echo the file: it may hold a key in another format
        raise ConfigError(
            f"key_file {path}: expected 64 hex characters (a secp256k1 private key), optionally 0x-prefixed"
        )
    account: LocalAccount = Account.from_key("0x" + match.group(2))
    return account


def _public_url(rpc_url: str, chain_id: int | None) -> str:
    """The URL for receipts and messages: no user info, no query, and the path hidden (RPC
    providers put API keys there: https://mainnet.example/v3/<key>)."""
    parts = urlsplit(rpc_url)
    scheme = parts.scheme if parts.scheme.startswith("evm+") else f"evm+{parts.scheme}"
    host = parts.netloc.rpartition("@")[2]
    path = "/***" if parts.path not in ("", "/") else ""
    query = f"?chain_id={chain_id}" if chain_id is not None else ""
    return f"{scheme}://{host}{path}{query}"


def _field(ref: dict[str, Any], name: str, kind: type) -> Any:
    value = ref.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ProofError(f"the receipt's reference has no valid {name!r} (got {value!r:.80})")
    return value


def _rpc_message(exc: Web3RPCError) -> str:
    message = exc.rpc_response.get("error", {}).get("message") if exc.rpc_response else None
    return str(message or exc)
