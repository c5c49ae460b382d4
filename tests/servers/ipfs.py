"""IPFS: js-ipfs (npm `ipfs@0.66.1`), which speaks the Kubo RPC API, offline on free ports.

No Kubo binary can be had here; js-ipfs is installed once into the cache directory by
scripts/install-servers.sh.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import orjson

from ._process import HOST, Server, ServerError, ServerNotInstalled, ServerStartError, cache_dir, free_ports, run

JSIPFS_DIR = "jsipfs"  # under cache_dir()
NODE22_DIR = "node22"  # a Node 22 from npm, installed only if the machine's node is too old


class IpfsServer(Server):
    """`jsipfs daemon --offline` on a repo made by `jsipfs init --profile=test`.

    Attributes: api_url (http://127.0.0.1:P, the Kubo RPC API under /api/v0), api_port,
    gateway_url, gateway_port, rpc_port (js-ipfs's gRPC-over-websocket), repo_dir (IPFS_PATH),
    data_dir (same). `api(command, data=None, **params)` calls the RPC API and returns the
    raw response body.

    Gotchas: js-ipfs ignores Kubo's `cid-codec=raw` on block/put; send `format=raw` too,
    or it stores a dag-pb CIDv0. It may answer CIDs in base58btc (zb2...) where Kubo uses
    base32: compare CIDs decoded, not as strings.
    """

    name = "ipfs"
    start_timeout = 60.0
    stop_timeout = 15.0

    def __init__(self, *, extra_args: tuple[str, ...] = (), base_dir: Path | None = None):
        self.extra_args = extra_args
        self.host = HOST
        self.api_port = self.gateway_port = self.rpc_port = 0
        super().__init__(base_dir=base_dir)
        self.repo_dir = self.data_dir

    @classmethod
    def jsipfs_cli(cls) -> Path:
        cli = cache_dir() / JSIPFS_DIR / "node_modules" / "ipfs" / "src" / "cli.js"
        if not cli.exists():
            raise ServerNotInstalled(cls.name, f"js-ipfs is not installed ({cli} is missing)")
        return cli

    @classmethod
    def node(cls) -> str:
        """The node to run js-ipfs with: the cache's Node 22 if the installer put one there."""
        node22 = cache_dir() / NODE22_DIR / "node_modules" / ".bin" / "node"
        if node22.exists():
            return str(node22)
        node = shutil.which("node")
        if node is None:
            raise ServerNotInstalled(cls.name, "node is not on PATH (js-ipfs runs on Node.js)")
        return node

    @classmethod
    def check_installed(cls) -> None:
        cls.jsipfs_cli()
        cls.node()

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.host}:{self.gateway_port}"

    def _env(self) -> dict[str, str]:
        return {**os.environ, "IPFS_PATH": str(self.repo_dir)}

    def _allocate_ports(self) -> None:
        self.api_port, self.gateway_port, self.rpc_port = free_ports(3)

    def all_ports(self) -> list[int]:
        return [self.api_port, self.gateway_port, self.rpc_port]

    def _prepare(self) -> None:
        run(
            [self.node(), self.jsipfs_cli(), "init", "--profile=test"],
            log_path=self.log_path,
            env=self._env(),
            cwd=self.tmp_dir,
        )
        config_path = self.repo_dir / "config"
        config: dict[str, Any] = json.loads(config_path.read_text())
        config["Addresses"].update(
            API=f"/ip4/{self.host}/tcp/{self.api_port}",
            Gateway=f"/ip4/{self.host}/tcp/{self.gateway_port}",
            RPC=f"/ip4/{self.host}/tcp/{self.rpc_port}",  # the test profile leaves it at 5003
            Swarm=[],  # no libp2p listeners at all
        )
        config["Bootstrap"] = []
        discovery = config.setdefault("Discovery", {})
        discovery.setdefault("MDNS", {})["Enabled"] = False
        discovery.setdefault("webRTCStar", {})["Enabled"] = False
        config_path.write_bytes(orjson.dumps(config, option=orjson.OPT_INDENT_2))

    def _command(self) -> list[str]:
        return [self.node(), str(self.jsipfs_cli()), "daemon", "--offline", *self.extra_args]

    def _ready(self) -> bool:
        return "ID" in json.loads(self.api("id", timeout=2))

    def _after_stop(self) -> None:
        # After a kill the repo lock (a proper-lockfile directory) stays and the next daemon
        # refuses to start for a while: the daemon is dead, so the lock is stale, remove it.
        lock = self.repo_dir / "repo.lock"
        if lock.is_dir():
            shutil.rmtree(lock, ignore_errors=True)
        else:
            lock.unlink(missing_ok=True)

    def _wait_ready(self, proc: Any, started: float) -> None:
        try:
            super()._wait_ready(proc, started)
        except ServerStartError as exc:
            if "withResolvers" in str(exc):  # a dependency needs Node 22
                raise ServerNotInstalled(
                    self.name, f"js-ipfs needs a newer Node.js than {self.node()} ({exc})"
                ) from exc
            raise

    def api(self, command: str, data: bytes | None = None, *, timeout: float = 30.0, **params: str | int) -> bytes:
        """POST /api/v0/<command>?params, with `data` as the multipart `file` if given."""
        query = urllib.parse.urlencode({k.replace("_", "-"): str(v) for k, v in params.items()})
        url = f"{self.api_url}/api/v0/{command}" + (f"?{query}" if query else "")
        headers: dict[str, str] = {}
        body = b""
        if data is not None:
            boundary = uuid.uuid4().hex
            headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
            body = (
                (
                    f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="data"\r\n'
                    "Content-Type: application/octet-stream\r\n\r\n"
                ).encode()
                + data
                + f"\r\n--{boundary}--\r\n".encode()
            )
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310 (our http URL)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            with exc:  # read and close: the error keeps the connection open otherwise
                detail = f"HTTP {exc.code}: {exc.read().decode(errors='replace')}"
        raise ServerError(f"IPFS {command}: {detail}")


def parse_cid(cid: str) -> tuple[int, int, bytes]:
    """(version, codec, multihash) of a CID string: v0 (Qm...), or v1 in base32 (b...) or
    base58btc (z...), the encodings js-ipfs answers in. Compare these, not the strings."""
    import base58  # a dev dependency of the project

    if len(cid) == 46 and cid.startswith("Qm"):
        return 0, 0x70, base58.b58decode(cid)  # CIDv0: a bare sha2-256 multihash, dag-pb
    prefix, rest = cid[0], cid[1:]
    if prefix == "b":
        raw = base64.b32decode(rest.upper() + "=" * (-len(rest) % 8))
    elif prefix == "z":
        raw = base58.b58decode(rest)
    else:
        raise ValueError(f"unsupported multibase prefix {prefix!r} in {cid!r}")
    version, raw = _varint(raw)
    codec, multihash = _varint(raw)
    return version, codec, multihash


def _varint(data: bytes) -> tuple[int, bytes]:
    value = shift = 0
    for i, byte in enumerate(data):
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, data[i + 1 :]
        shift += 7
    raise ValueError("truncated varint")
