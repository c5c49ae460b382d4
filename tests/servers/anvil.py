"""EVM: Foundry's anvil dev chain (npm `@foundry-rs/anvil`, which ships the real binary)."""

from __future__ import annotations

import itertools
import platform
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from ._process import HOST, Server, ServerError, ServerNotInstalled, cache_dir, free_ports

ANVIL_DIR = "anvil"  # under cache_dir()
CHAIN_ID = 31337  # anvil's default, set explicitly so tests can rely on it
# anvil's default mnemonic ("test test ... junk") gives the same dev accounts everywhere;
# the first one, funded with 10000 ETH:
DEV_ACCOUNT = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
DEV_PRIVATE_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

_NPM_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


class RpcError(ServerError):
    """A JSON-RPC error answer."""


class AnvilServer(Server):
    """`anvil --host 127.0.0.1 --port P --chain-id 31337 --state DATA/state.json`.

    Attributes: url / rpc_url (http://127.0.0.1:P), port, chain_id, accounts (the funded dev
    accounts, unlocked: eth_sendTransaction from them works), data_dir, state_path.
    `rpc(method, *params)` makes a JSON-RPC call and returns its result.

    Blocks are mined instantly, one per transaction (no --block-time). The chain's state is
    written to state_path when anvil stops (SIGTERM) and loaded when it starts, so a chain
    survives stop()/start(); after kill() it restarts from the last graceful stop (or from
    genesis).
    """

    name = "evm"
    start_timeout = 15.0

    def __init__(self, *, persist_state: bool = True, extra_args: tuple[str, ...] = (), base_dir: Path | None = None):
        self.persist_state = persist_state
        self.extra_args = extra_args
        self.host = HOST
        self.port = 0
        self.chain_id = CHAIN_ID
        self.accounts: list[str] = []
        self._ids = itertools.count(1)
        super().__init__(base_dir=base_dir)
        self.state_path = self.data_dir / "state.json"

    @classmethod
    def binary(cls) -> Path:
        # Run the platform package's binary directly: the npm wrapper (bin.mjs) is a node
        # process in between that spawns it.
        arch = _NPM_ARCH.get(platform.machine().lower(), platform.machine())
        path = cache_dir() / ANVIL_DIR / "node_modules" / "@foundry-rs" / f"anvil-linux-{arch}" / "bin" / "anvil"
        if not path.exists():
            raise ServerNotInstalled(cls.name, f"anvil is not installed ({path} is missing)")
        return path

    @classmethod
    def check_installed(cls) -> None:
        cls.binary()

    @classmethod
    def unsupported_reason(cls) -> str | None:
        if platform.machine().lower() not in _NPM_ARCH:
            return f"@foundry-rs/anvil ships no binary for {platform.machine()}"
        return super().unsupported_reason()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    rpc_url = url

    def _allocate_ports(self) -> None:
        (self.port,) = free_ports(1)

    def all_ports(self) -> list[int]:
        return [self.port]

    def _command(self) -> list[str]:
        state = ["--state", str(self.state_path)] if self.persist_state else []
        return [
            str(self.binary()),
            "--host", self.host,
            "--port", str(self.port),
            "--chain-id", str(self.chain_id),
            "--cache-path", str(self.tmp_dir / "cache"),  # nothing under ~/.foundry
            "--color", "never",
            *state,
            *self.extra_args,
        ]  # fmt: skip

    def _ready(self) -> bool:
        if int(self.rpc("eth_chainId", timeout=2), 16) != self.chain_id:
            raise ServerError("anvil answers with the wrong chain id")
        self.accounts = list(self.rpc("eth_accounts", timeout=2))
        return True

    def wait_for_receipt(self, tx_hash: str, timeout: float = 10.0) -> dict[str, Any]:
        """The receipt of a sent transaction: anvil mines it a few milliseconds later."""
        deadline = time.monotonic() + timeout
        while (receipt := self.rpc("eth_getTransactionReceipt", tx_hash)) is None:
            if time.monotonic() > deadline:
                raise ServerError(f"no receipt for {tx_hash} after {timeout}s")
            time.sleep(0.01)
        return dict(receipt)

    def rpc(self, method: str, *params: Any, timeout: float = 30.0) -> Any:
        body = orjson.dumps({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)})
        headers = {"Content-Type": "application/json"}
        request = urllib.request.Request(self.url, data=body, method="POST", headers=headers)  # noqa: S310 (our http URL)
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            answer = orjson.loads(response.read())
        if "error" in answer:
            raise RpcError(f"{method}: {answer['error']}")
        return answer["result"]
