"""A real log, store and graph projection in a temp dir, and helpers to sign events for them."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from stave.db import open_database
from stave.event import Event, PrivateKey, admit, sign_event
from stave.graph.projector import Projector, open_graph_database
from stave.graph.rules import Rules
from stave.log.anchoring import Anchoring
from stave.log.note import Signer
from stave.log.sequencer import Log
from stave.log.service import LogService
from stave.store import ReplicatedStore, StoreIndex
from stave.store.local import LocalStore

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SIGNER = Signer(name="graph.test/log", private_key=hashlib.sha256(b"graph test log key").digest())


def key(name: str) -> PrivateKey:
    return PrivateKey(hashlib.sha256(f"graph test key {name}".encode()).digest())


ALICE, BOB, CAROL, DAVE, ERIN = (key(n) for n in ("alice", "bob", "carol", "dave", "erin"))


def pub(private: PrivateKey) -> str:
    return private.public_key.to_string()


def sign(event_type: str, created_at: int, body: dict[str, Any], signer: PrivateKey = ALICE, **extra: Any) -> Event:
    template = {"v": 1, "type": event_type, "created_at": created_at, "parents": [], "body": body, **extra}
    return sign_event(template, signer)


def example(stem: str) -> Event:
    return admit((EXAMPLES / f"{stem}.json").read_bytes())


def white_album() -> Event:
    return example("00_create_release_bundle.white_album")


class World:
    """One stave node's log and store, plus a graph projection following it."""

    def __init__(self, root: Path, *, graph_url: str | None = None, rules: Rules | None = None) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        database = open_database(f"sqlite:///{root}/stave.db")
        self.store = ReplicatedStore(
            [LocalStore(root / "a", name="a"), LocalStore(root / "b", name="b")], StoreIndex(database)
        )
        self.log = Log(database, SIGNER)
        self.service = LogService(self.log, self.store, Anchoring(self.log, []))
        self.rules = rules or Rules()
        self.graph_url = graph_url or f"sqlite:///{root}/graph.db"
        self.graph = open_graph_database(self.graph_url)
        self.projector = Projector(self.graph, self.log, self.store, self.rules)

    def add(self, *events: Event) -> None:
        self.service.add(list(events), checkpoint=False)

    def project(self, *events: Event) -> None:
        self.add(*events)
        self.projector.catch_up()

    def close(self) -> None:
        self.service.close()
        self.graph.close()
