"""Regenerate the signed examples in examples/ and the example blocks in docs/events.md.

    .venv/bin/python examples/make_examples.py

Every example is signed with the published example key in ``examples/example.key``, which
is derived from a fixed phrase: it is for examples only and must never sign anything real.
Signatures are deterministic (RFC 6979), so rerunning this script reproduces the files byte
for byte; a test checks that the checked-in files are what it produces.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

from stave.cli.demo import load_white_album_template
from stave.event import Event, PrivateKey, sign_event

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
EVENTS_DOC = ROOT / "docs" / "events.md"
EXAMPLE_KEY = PrivateKey(hashlib.sha256(b"stave example key: public, never use it for anything real").digest())
SECOND_KEY = PrivateKey(hashlib.sha256(b"stave second example key: public, never use it for anything real").digest())
THIRD_KEY = PrivateKey(hashlib.sha256(b"stave third example key: public, never use it for anything real").digest())


def _id(kind: str, name: str) -> str:
    """Example node ids, derived the same way as in the White Album template."""
    return hashlib.sha256(f"stave-example:{kind}:{name}".encode()).hexdigest()


def _event(event_type: str, created_at: int, body: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"v": 1, "type": event_type, "created_at": created_at, "parents": [], "body": body, **extra}


def build() -> list[tuple[str, Event]]:
    """All examples in log order, as (file stem, signed event)."""
    out: list[tuple[str, Event]] = []

    def add(stem: str, template: dict[str, Any], key: PrivateKey = EXAMPLE_KEY) -> Event:
        template = dict(template, author_pubkey=key.public_key.to_string())
        event = sign_event(template, key)
        out.append((stem, event))
        return event

    bundle = load_white_album_template()
    bundle.pop("author_pubkey", None)
    white_album = add("create_release_bundle.white_album", bundle)
    tracks = bundle["body"]["release"]["tracks"]
    guitar = next(track for track in tracks if track["title"] == "While My Guitar Gently Weeps")

    add(
        "create_group",
        _event(
            "CREATE_GROUP",
            1758390100,
            {
                "group": {
                    "name": "Led Zeppelin",
                    "formed_date": "1968-09-07",
                    "origin_city": {"name": "London", "lat": 51.5074, "lon": -0.1278},
                },
                "founding_members": [
                    {"name": "Jimmy Page", "role": "guitarist"},
                    {"name": "Robert Plant", "role": "vocalist"},
                    {"name": "John Paul Jones", "role": "bassist"},
                    {"name": "John Bonham", "role": "drummer"},
                ],
            },
        ),
    )
    beatles = _id("group", "The Beatles")
    add(
        "add_member",
        _event(
            "ADD_MEMBER",
            1758390200,
            {
                "group_id": beatles,
                "member": {"person_id": _id("person", "Ringo Starr"), "name": "Ringo Starr", "roles": ["Drum Kit"]},
                "joined_date": "1962-08-18",
            },
        ),
    )
    add(
        "remove_member",
        _event(
            "REMOVE_MEMBER",
            1758390300,
            {
                "group_id": beatles,
                "person_id": _id("person", "Pete Best"),
                "left_date": "1962-08-16",
                "note": "Replaced by Ringo Starr on drums.",
            },
        ),
    )
    claim = add(
        "add_claim",
        _event(
            "ADD_CLAIM",
            1758390400,
            {
                "subject": {"kind": "track", "id": guitar["track_id"]},
                "changes": [
                    {
                        "op": "add",
                        "field": "guests",
                        "value": {
                            "person_id": _id("person", "Eric Clapton"),
                            "person_name": "Eric Clapton",
                            "person_roles": [{"role_id": _id("role", "Lead Guitar"), "role_name": "Lead Guitar"}],
                        },
                    }
                ],
                "sources": ["https://en.wikipedia.org/wiki/While_My_Guitar_Gently_Weeps"],
                "note": "Eric Clapton played the lead guitar part, uncredited on the original release.",
            },
            parents=[white_album.id],
        ),
        SECOND_KEY,
    )
    add(
        "edit_claim",
        _event(
            "EDIT_CLAIM",
            1758390500,
            {
                "claim_id": claim.id,
                "changes": claim.body["changes"],
                "sources": [
                    "https://en.wikipedia.org/wiki/While_My_Guitar_Gently_Weeps",
                    "https://en.wikipedia.org/wiki/Eric_Clapton",
                ],
                "note": "Added a second source.",
            },
            parents=[claim.id],
        ),
        SECOND_KEY,
    )
    withdrawn = add(
        "add_claim.withdrawn",
        _event(
            "ADD_CLAIM",
            1758390550,
            {
                "subject": {"kind": "release", "id": _id("release", "The Beatles")},
                "changes": [{"op": "set", "field": "release_date", "value": "1968-11-25"}],
                "note": "Wrong date; withdrawn below.",
            },
        ),
        SECOND_KEY,
    )
    add(
        "delete_claim",
        _event(
            "DELETE_CLAIM",
            1758390600,
            {"claim_id": withdrawn.id, "reason": "I misread the sleeve: the release date was right."},
            parents=[withdrawn.id],
        ),
        SECOND_KEY,
    )
    add(
        "vote",
        _event("VOTE", 1758390700, {"claim_id": claim.id, "vote": "yes", "comment": "Well documented."}),
        THIRD_KEY,
    )
    add("like", _event("LIKE", 1758390800, {"target": white_album.id}), THIRD_KEY)
    comment = add(
        "discuss",
        _event(
            "DISCUSS",
            1758390900,
            {"text": "Clapton's own recollection is in his autobiography, too.", "claim_id": claim.id},
            parents=[claim.id],
        ),
        THIRD_KEY,
    )
    add(
        "discuss.reply",
        _event(
            "DISCUSS",
            1758390950,
            {"text": "Thanks, I added it as a source.", "claim_id": claim.id},
            parents=[comment.id],
        ),
        SECOND_KEY,
    )
    add(
        "finalize",
        _event(
            "FINALIZE",
            1759000000,
            {"claim_id": claim.id, "outcome": "accepted", "tally": {"yes": 3, "no": 0, "abstain": 0}},
            parents=[claim.id],
        ),
    )
    add(
        "distribute_rewards",
        _event(
            "DISTRIBUTE_REWARDS",
            1759100000,
            {
                "unit": "points",
                "pool": 100,
                "period_start": 1758326400,
                "period_end": 1759017600,
                "allocations": [
                    {"recipient": SECOND_KEY.public_key.to_string(), "amount": 70, "claim_ids": [claim.id]},
                    {"recipient": THIRD_KEY.public_key.to_string(), "amount": 30, "claim_ids": [claim.id]},
                ],
            },
        ),
    )
    merge = add(
        "merge_node",
        _event(
            "MERGE_NODE",
            1759200000,
            {
                "kind": "person",
                "source_id": _id("person", "Richard Starkey"),
                "target_id": _id("person", "Ringo Starr"),
                "reason": "Richard Starkey is Ringo Starr's legal name; the two nodes are one person.",
                "sources": ["https://en.wikipedia.org/wiki/Ringo_Starr"],
            },
        ),
        SECOND_KEY,
    )
    add(
        "split_node",
        _event(
            "SPLIT_NODE",
            1759300000,
            {
                "kind": "person",
                "node_id": _id("person", "Ringo Starr"),
                "merge_id": merge.id,
                "reason": "Undo: keep the legal-name node separate for songwriting credits.",
            },
            parents=[merge.id],
        ),
        THIRD_KEY,
    )
    return out


def _pretty(event: Event) -> str:
    return json.dumps(event.value, indent=2, ensure_ascii=False) + "\n"


def render() -> dict[Path, str]:
    """Every generated file and its content."""
    examples = build()
    files: dict[Path, str] = {}
    for index, (stem, event) in enumerate(examples):
        files[EXAMPLES / f"{index:02d}_{stem}.json"] = _pretty(event)
    files[EXAMPLES / "all.jsonl"] = "".join(event.canonical_bytes().decode() + "\n" for _, event in examples)
    files[EXAMPLES / "example.key"] = EXAMPLE_KEY.to_string() + "\n"
    files[EVENTS_DOC] = _fill_doc(EVENTS_DOC.read_text(encoding="utf-8"), examples)
    return files


def _fill_doc(doc: str, examples: list[tuple[str, Event]]) -> str:
    """Replace each ``<!-- example:STEM -->`` block with the signed example, shortened if huge."""
    by_stem = {stem: (f"{index:02d}_{stem}.json", event) for index, (stem, event) in enumerate(examples)}

    def block(match: re.Match[str]) -> str:
        stem = match["stem"]
        file_name, event = by_stem[stem]
        text = _pretty(event)
        if len(text) > 6000:  # the bundle: show its first track only, and say so
            value = json.loads(text)
            release = value["body"]["release"]
            release["tracks"] = release["tracks"][:1]
            value["body"]["tracklist"] = value["body"]["tracklist"][:1]
            text = json.dumps(value, indent=2, ensure_ascii=False) + "\n"
            note = (
                f"Shortened to its first track; the full signed event is `examples/{file_name}` (id `{event.id}`).\n\n"
            )
        else:
            note = f"`examples/{file_name}`, id `{event.id}`\n\n"
        return f"<!-- example:{stem} -->\n{note}```json\n{text}```\n<!-- /example -->"

    return re.sub(r"<!-- example:(?P<stem>[\w.]+) -->.*?<!-- /example -->", block, doc, flags=re.DOTALL)


def main() -> int:
    for path, content in render().items():
        path.write_text(content, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
