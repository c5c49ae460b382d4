"""EvmLedger against a real anvil dev chain: anchor, confirmations, reorgs, verification, failures."""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from stave.anchor import CONFIRMED, FAILED, PENDING, LedgerRejected, LedgerUnavailable, Receipt, open_ledger
from stave.anchor.evm import EvmLedger
from stave.errors import ConfigError, ProofError
from tests.anchor.helpers import make_anchor
from tests.servers.anvil import DEV_PRIVATE_KEY, AnvilServer
from tests.servers.fixtures import evm_server, fresh_evm_server  # noqa: F401 (fixtures, by name)

pytestmark = pytest.mark.evm

# anvil's second dev account ("test test ... junk" mnemonic, m/44'/60'/0'/0/1): public knowledge
OTHER_DEV_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


def account(server: AnvilServer, index: int = 0) -> str:
    """A dev account in checksum form (anvil lists them in lower case)."""
    return Web3.to_checksum_address(server.accounts[index])


def write_key(directory: Path, key: str, name: str = "evm.key") -> Path:
    path = directory / name
    path.write_text(key + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def key_file(tmp_path: Path, evm_server: AnvilServer) -> Path:  # noqa: F811
    assert Account.from_key(DEV_PRIVATE_KEY).address == account(evm_server)
    return write_key(tmp_path, DEV_PRIVATE_KEY)


def ledger_for(server: AnvilServer, key_file: Path | None = None, **params: object) -> EvmLedger:
    query = {"chain_id": server.chain_id, "timeout": 5, **params}
    if key_file is not None:
        query["key_file"] = key_file
    url = f"evm+{server.url}?" + "&".join(f"{k}={v}" for k, v in query.items())
    ledger = open_ledger(url)
    assert isinstance(ledger, EvmLedger)
    return ledger


def mine(server: AnvilServer, blocks: int) -> None:
    server.rpc("anvil_mine", hex(blocks))


def settled(ledger: EvmLedger, receipt: Receipt) -> Receipt:
    """Refresh until anvil has mined the transaction (it does a few ms after it is sent)."""
    for _ in range(200):
        receipt = ledger.refresh(receipt)
        if receipt.reference.get("block_number") is not None:
            return receipt
        time.sleep(0.01)
    raise AssertionError(f"not mined: {receipt}")


def test_anchor_confirm_and_verify(evm_server: AnvilServer, key_file: Path) -> None:  # noqa: F811
    ledger = ledger_for(evm_server, key_file, confirmations=3)
    anchor = make_anchor(1)
    receipt = ledger.anchor(anchor)
    assert receipt.state == PENDING
    assert receipt.kind == "evm"
    assert receipt.ledger == f"evm+{evm_server.url}?chain_id=31337"
    assert str(key_file) not in receipt.to_json().decode()
    ref = receipt.reference
    assert ref["chain_id"] == 31337
    assert ref["from"] == ref["to"] == account(evm_server)
    assert ref["tx_hash"].startswith("0x")
    assert len(ref["tx_hash"]) == 66

    receipt = settled(ledger, receipt)
    assert receipt.state == PENDING
    assert receipt.confirmations == 1
    assert receipt.reason == "1 of 3 confirmations"
    with pytest.raises(ProofError, match="pending, not confirmed: 1 of 3 confirmations"):
        ledger.verify(receipt, anchor)

    mine(evm_server, 2)
    confirmed = ledger.refresh(receipt)
    assert confirmed.state == CONFIRMED
    assert confirmed.confirmations == 3
    assert confirmed.confirmed_at is not None
    assert confirmed.reason is None
    block = evm_server.rpc("eth_getBlockByNumber", hex(confirmed.reference["block_number"]), False)
    assert confirmed.reference["block_hash"] == block["hash"]
    assert confirmed.reference["block_timestamp"] == int(block["timestamp"], 16)
    assert ledger.refresh(confirmed) == confirmed  # idempotent while the chain stands still

    tx = evm_server.rpc("eth_getTransactionByHash", ref["tx_hash"])
    assert bytes.fromhex(tx["input"][2:]) == anchor.payload()

    ledger.verify(confirmed, anchor)
    ledger.verify(Receipt.from_json(confirmed.to_json()), anchor)  # as carried in a proof bundle

    mine(evm_server, 4)
    grown = ledger.refresh(confirmed)
    assert grown.confirmations == 7
    assert grown.confirmed_at == confirmed.confirmed_at


def test_verify_needs_no_key_and_applies_its_own_policy(evm_server: AnvilServer, key_file: Path) -> None:  # noqa: F811
    ledger = ledger_for(evm_server, key_file, confirmations=1)
    anchor = make_anchor(2)
    receipt = settled(ledger, ledger.anchor(anchor))
    assert receipt.state == CONFIRMED

    verifier = ledger_for(evm_server, sender=account(evm_server), confirmations=1)
    verifier.verify(receipt, anchor)
    with pytest.raises(LedgerRejected, match="needs a signing key"):
        verifier.anchor(make_anchor(3))

    strict = ledger_for(evm_server, confirmations=5)
    with pytest.raises(ProofError, match="1 confirmations, 5 required"):
        strict.verify(receipt, anchor)

    someone_else = ledger_for(evm_server, sender=account(evm_server, 1), confirmations=1)
    with pytest.raises(ProofError, match="not by this ledger's anchoring address"):
        someone_else.verify(receipt, anchor)


def test_verify_rejects_other_anchors_and_forged_receipts(evm_server: AnvilServer, key_file: Path) -> None:  # noqa: F811
    ledger = ledger_for(evm_server, key_file, confirmations=1)
    anchor = make_anchor(4)
    receipt = settled(ledger, ledger.anchor(anchor))

    with pytest.raises(ProofError, match="another anchor"):
        ledger.verify(receipt, make_anchor(5))
    # the same transaction claimed for another anchor: the chain says otherwise
    claimed = dataclasses.replace(receipt, anchor=make_anchor(5))
    with pytest.raises(ProofError, match="its data is not this anchor's payload"):
        ledger.verify(claimed, make_anchor(5))

    def forged(**reference: object) -> Receipt:
        return dataclasses.replace(receipt, reference={**receipt.reference, **reference})

    with pytest.raises(ProofError, match="not found on the chain"):
        ledger.verify(forged(tx_hash="0x" + "11" * 32), anchor)
    with pytest.raises(ProofError, match=r"sent by .*, the receipt says"):
        ledger.verify(forged(**{"from": account(evm_server, 1)}), anchor)
    with pytest.raises(ProofError, match="the receipt says 99"):
        ledger.verify(forged(block_number=99), anchor)
    with pytest.raises(ProofError, match="the receipt says"):
        ledger.verify(forged(block_hash="0x" + "22" * 32), anchor)
    with pytest.raises(ProofError, match="block time"):
        ledger.verify(forged(block_timestamp=1), anchor)
    with pytest.raises(ProofError, match="receipt is for chain 1, the node serves chain 31337"):
        ledger.verify(forged(chain_id=1), anchor)
    with pytest.raises(ProofError, match="no valid 'tx_hash'"):
        ledger.verify(forged(tx_hash=None), anchor)


def test_retried_anchor_reuses_the_transaction(evm_server: AnvilServer, key_file: Path) -> None:  # noqa: F811
    ledger = ledger_for(evm_server, key_file, confirmations=1)
    first = ledger.anchor(make_anchor(6))
    again = ledger.anchor(make_anchor(6))
    assert again.reference["tx_hash"] == first.reference["tx_hash"]
    settled(ledger, again)
    assert int(evm_server.rpc("eth_getTransactionCount", evm_server.accounts[0], "latest"), 16) == 1


def test_refresh_re_broadcasts_only_the_receipts_own_transaction(
    evm_server: AnvilServer,  # noqa: F811
    key_file: Path,
) -> None:
    ledger = ledger_for(evm_server, key_file, confirmations=1)
    real = settled(ledger, ledger.anchor(make_anchor(10)))
    # an unknown hash, with someone's real signed transaction attached
    forged = dataclasses.replace(
        real, state=PENDING, reference={**real.reference, "tx_hash": "0x" + "33" * 32, "nonce": 5}
    )
    refreshed = ledger.refresh(forged)
    assert refreshed.state == PENDING
    assert "holds no signed transaction to re-broadcast" in (refreshed.reason or "")


def test_wait_returns_a_confirmed_receipt(evm_server: AnvilServer, key_file: Path) -> None:  # noqa: F811
    ledger = ledger_for(evm_server, key_file, confirmations=1, wait=5)
    receipt = ledger.anchor(make_anchor(7))
    assert receipt.state == CONFIRMED
    ledger.verify(receipt, make_anchor(7))


def test_a_reorg_sends_the_receipt_back_to_pending(evm_server: AnvilServer, key_file: Path) -> None:  # noqa: F811
    ledger = ledger_for(evm_server, key_file, confirmations=1)
    anchor = make_anchor(8)
    snapshot = evm_server.rpc("evm_snapshot")
    confirmed = settled(ledger, ledger.anchor(anchor))
    assert confirmed.state == CONFIRMED
    old_block = confirmed.reference["block_number"]

    evm_server.rpc("evm_revert", snapshot)  # the block holding the anchor is gone
    mine(evm_server, 2)  # the new branch is longer
    with pytest.raises(ProofError, match="not found on the chain"):
        ledger.verify(confirmed, anchor)
    pending = ledger.refresh(confirmed)
    assert pending.state == PENDING
    assert pending.confirmed_at is None
    assert f"reorg: the transaction is no longer in block {old_block}" in (pending.reason or "")
    assert "re-broadcast" in (pending.reason or "")

    again = settled(ledger, pending)  # anvil mines the re-broadcast transaction
    assert again.state == CONFIRMED
    assert again.reference["tx_hash"] == confirmed.reference["tx_hash"]  # the same signed transaction
    assert again.reference["block_number"] != old_block
    ledger.verify(again, anchor)


def test_a_nonce_taken_by_another_transaction_fails_the_receipt(
    evm_server: AnvilServer,  # noqa: F811
    key_file: Path,
) -> None:
    ledger = ledger_for(evm_server, key_file, confirmations=1)
    snapshot = evm_server.rpc("evm_snapshot")
    confirmed = settled(ledger, ledger.anchor(make_anchor(9)))
    evm_server.rpc("evm_revert", snapshot)
    sender = account(evm_server)
    other = evm_server.rpc("eth_sendTransaction", {"from": sender, "to": evm_server.accounts[1], "value": "0x1"})
    evm_server.wait_for_receipt(other)
    failed = ledger.refresh(confirmed)
    assert failed.state == FAILED
    assert f"nonce 0 of {sender} was used by another transaction" in (failed.reason or "")
    assert ledger.refresh(failed) is failed  # final
    replacement = ledger.anchor(make_anchor(9))  # the remembered receipt failed: a new transaction
    assert replacement.reference["nonce"] == 1
    assert settled(ledger, replacement).state == CONFIRMED


def test_wrong_chain_and_bad_keys(evm_server: AnvilServer, tmp_path: Path) -> None:  # noqa: F811
    with pytest.raises(LedgerRejected, match="the node serves chain 31337, the URL says chain_id=1"):
        ledger_for(evm_server, write_key(tmp_path, DEV_PRIVATE_KEY), chain_id=1).anchor(make_anchor(1))
    with pytest.raises(ConfigError, match="expected 64 hex characters") as info:
        ledger_for(evm_server, write_key(tmp_path, "not-a-key-SECRETWORD", "bad.key"))
    assert "SECRETWORD" not in str(info.value)
    with pytest.raises(ConfigError, match="cannot read it"):
        ledger_for(evm_server, tmp_path / "missing.key")
    with pytest.raises(ConfigError, match="is not the address of the key"):
        ledger_for(evm_server, write_key(tmp_path, OTHER_DEV_KEY, "o.key"), sender=account(evm_server))


def test_an_unfunded_key_is_rejected_clearly(evm_server: AnvilServer, tmp_path: Path) -> None:  # noqa: F811
    ledger = ledger_for(evm_server, write_key(tmp_path, "0x" + "42" * 32))
    with pytest.raises(LedgerRejected, match=r"(?i)the node refused the anchor transaction: insufficient funds"):
        ledger.anchor(make_anchor(1))


def test_legacy_transactions_where_there_is_no_base_fee(tmp_path: Path) -> None:
    with AnvilServer(extra_args=("--hardfork", "berlin")) as server:
        ledger = ledger_for(server, write_key(tmp_path, DEV_PRIVATE_KEY), confirmations=1)
        receipt = settled(ledger, ledger.anchor(make_anchor(1)))
        tx = server.rpc("eth_getTransactionByHash", receipt.reference["tx_hash"])
        assert tx["type"] == "0x0"
        ledger.verify(receipt, make_anchor(1))


def test_health(evm_server: AnvilServer, key_file: Path) -> None:  # noqa: F811
    health = ledger_for(evm_server, key_file).health()
    assert health.ok, health.detail
    assert "chain 31337" in health.detail
    assert account(evm_server) in health.detail


def test_a_stopped_node_is_a_clear_ledger_error(fresh_evm_server: AnvilServer, tmp_path: Path) -> None:  # noqa: F811
    ledger = ledger_for(fresh_evm_server, write_key(tmp_path, DEV_PRIVATE_KEY), confirmations=1)
    receipt = settled(ledger, ledger.anchor(make_anchor(1)))
    fresh_evm_server.stop()
    url = re.escape(f"evm+{fresh_evm_server.url}?chain_id=31337")
    with pytest.raises(LedgerUnavailable, match=rf"^{url}: anchor: cannot reach the ledger: .*Connection refused"):
        ledger.anchor(make_anchor(2))
    with pytest.raises(LedgerUnavailable, match="verify: cannot reach the ledger"):
        ledger.verify(receipt, make_anchor(1))  # fails closed
    with pytest.raises(LedgerUnavailable, match="refresh: cannot reach the ledger"):
        ledger.refresh(receipt)
    health = ledger.health()
    assert not health.ok
    assert "Connection refused" in health.detail
    fresh_evm_server.start()  # the chain survives a graceful stop
    ledger.verify(receipt, make_anchor(1))
