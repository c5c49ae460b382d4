"""Deterministic ids of nodes and edges created inside events. Pure.

A node an event creates without giving its id gets one derived from the event id and the
JSONPath of the object that describes it, so every replica that replays the log derives the same
graph::

    id = <kind prefix> + "_" + hex(sha256(event_id + "\\n" + json_path))[:32]

for example ``per_3f0c…`` for a person at ``$.body.release.tracks[0].songwriters[1]``. Ids given
in events are kept as they are (any string of 1–256 characters, usually 64 hex digits).
"""

from __future__ import annotations

import hashlib
from typing import Final, Literal

__all__ = ["KIND_PREFIX", "NodeKind", "derived_id", "edge_id"]

NodeKind = Literal["release", "label", "track", "person", "group", "role", "city"]

KIND_PREFIX: Final[dict[str, str]] = {
    "release": "rel",
    "label": "lab",
    "track": "trk",
    "person": "per",
    "group": "grp",
    "role": "rol",
    "city": "cty",
}


def derived_id(kind: str, event_id: str, json_path: str) -> str:
    """The id of a node of ``kind`` described at ``json_path`` in event ``event_id``."""
    digest = hashlib.sha256(f"{event_id}\n{json_path}".encode()).hexdigest()
    return f"{KIND_PREFIX[kind]}_{digest[:32]}"


def edge_id(event_id: str, json_path: str, relation: str, discriminator: str = "") -> str:
    """The id of an edge (a credit, a tracklist position, a label link) an event states."""
    text = f"{event_id}\n{json_path}\n{relation}\n{discriminator}"
    return hashlib.sha256(text.encode()).hexdigest()[:40]
