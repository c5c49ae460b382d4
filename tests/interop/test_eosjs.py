"""Cross-checks with the real eosjs (Node): it verifies stave's signatures, stave verifies its own.

Needs Node.js and `npm ci` in tests/vectors/eosjs (both done by `make test`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stave.event import PrivateKey, PublicKey, Signature, sign_event

pytestmark = pytest.mark.node

EOSJS = Path(__file__).resolve().parents[1] / "vectors" / "eosjs"


def _node(script: str, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    node = shutil.which("node")
    assert node is not None, "Node.js is required: make test installs it"
    assert (EOSJS / "node_modules" / "eosjs").is_dir(), "run: npm ci --prefix tests/vectors/eosjs"
    result = subprocess.run(
        [node, str(EOSJS / script)],
        input="".join(json.dumps(line) + "\n" for line in lines).encode(),
        capture_output=True,
        timeout=120,
        check=True,
    )
    return [json.loads(line) for line in result.stdout.decode().splitlines()]


def test_eosjs_verifies_stave_signatures() -> None:
    requests = []
    for index in range(40):
        key = PrivateKey(hashlib.sha256(f"interop key {index % 7}".encode()).digest())
        digest = hashlib.sha256(f"message {index}".encode()).digest()
        signature = key.sign_digest(digest)
        pubkey = key.public_key.to_legacy_string() if index % 2 else key.public_key.to_string()
        requests.append({"pubkey": pubkey, "digest": digest.hex(), "sig": signature.to_string()})
    answers = _node("verify.mjs", requests)
    assert len(answers) == len(requests)
    for request, answer in zip(requests, answers, strict=True):
        assert answer["ok"], (request, answer)
        assert answer["recovered"] == PublicKey.from_string(request["pubkey"]).to_string()


def test_eosjs_verifies_stave_signed_events() -> None:
    key = PrivateKey(hashlib.sha256(b"interop event key").digest())
    template = {"v": 1, "type": "LIKE", "created_at": 1758390000, "parents": [], "body": {"target": "cd" * 32}}
    event = sign_event(template, key)
    [answer] = _node("verify.mjs", [{"pubkey": event.author, "digest": event.id, "sig": event.sig}])
    assert answer["ok"], answer


def test_eosjs_refuses_a_tampered_digest() -> None:
    key = PrivateKey(hashlib.sha256(b"interop key").digest())
    digest = hashlib.sha256(b"original").digest()
    signature = key.sign_digest(digest)
    other = hashlib.sha256(b"tampered").digest()
    [answer] = _node(
        "verify.mjs", [{"pubkey": key.public_key.to_string(), "digest": other.hex(), "sig": signature.to_string()}]
    )
    assert not answer["ok"]


def test_stave_verifies_fresh_eosjs_signatures() -> None:
    requests = []
    for index in range(20):
        key = PrivateKey(hashlib.sha256(f"eosjs signer {index}".encode()).digest())
        private = key.to_wif() if index % 2 else key.to_string()
        requests.append({"private": private, "digest": hashlib.sha256(f"eosjs message {index}".encode()).hexdigest()})
    answers = _node("sign.mjs", requests)
    for request, answer in zip(requests, answers, strict=True):
        assert answer.get("error") is None, answer
        Signature.from_string(answer["sig"]).verify(
            bytes.fromhex(request["digest"]), PublicKey.from_string(answer["pubkey"])
        )
