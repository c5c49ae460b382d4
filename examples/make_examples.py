"""Regenerate the signed examples in examples/ and the example blocks in docs/events.md.

    .venv/bin/python examples/make_examples.py

Every example is signed with the published example key in ``examples/example.key``, which
is derived from a fixed phrase: it is for examples only and must never sign anything real.
Signatures are deterministic (RFC 6979), so rerunning this script reproduces the files byte
for byte; a test checks that the checked-in files are what it produces.

The examples are one story, in log order, that the music graph projection accepts with no
refusal when ``graph.reward_distributors`` names the example key (``DISTRIBUTOR_SETTING``):
the White Album, a group and its members, a claim amended, voted on by three other keys and
finalised, a second claim withdrawn, a like and a thread, the claim's author rewarded, and a
duplicate person merged and split again, each through three votes and a finalisation. The
other contributors' keys are derived here from fixed phrases, like the example key.

File names: the first example of each event type is ``NN_<stem>.json`` (NN counts the types'
examples in log order); further events of the story are named after the example they follow,
``NNa_<stem>.json``, ``NNb_<stem>.json``…, so sorting the names gives log order.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any, NamedTuple

from stave.cli.demo import load_white_album_template
from stave.event import Event, PrivateKey, sign_event
from stave.graph.ids import derived_id

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
EVENTS_DOC = ROOT / "docs" / "events.md"
EXAMPLE_KEY = PrivateKey(hashlib.sha256(b"stave example key: public, never use it for anything real").digest())
SECOND_KEY = PrivateKey(hashlib.sha256(b"stave second example key: public, never use it for anything real").digest())
THIRD_KEY = PrivateKey(hashlib.sha256(b"stave third example key: public, never use it for anything real").digest())
FOURTH_KEY = PrivateKey(hashlib.sha256(b"stave fourth example key: public, never use it for anything real").digest())
FIFTH_KEY = PrivateKey(hashlib.sha256(b"stave fifth example key: public, never use it for anything real").digest())
DISTRIBUTOR_SETTING = {"reward_distributors": [EXAMPLE_KEY.public_key.to_string()]}
"""The one ``[graph]`` setting the story needs: the example key may distribute rewards."""
DAY = 86_400


class Example(NamedTuple):
    stem: str
    """The file name without its number; ``<!-- example:STEM -->`` in docs/events.md quotes it."""
    note: str
    """What the event does in the story (the story table in docs/events.md)."""
    event: Event
    more: bool
    """A further event of the story, named after the numbered example it follows."""


def _id(kind: str, name: str) -> str:
    """Example node ids, derived the same way as in the White Album template."""
    return hashlib.sha256(f"stave-example:{kind}:{name}".encode()).hexdigest()


def _event(event_type: str, created_at: int, body: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"v": 1, "type": event_type, "created_at": created_at, "parents": [], "body": body, **extra}


def build() -> list[Example]:
    """All examples in log order."""
    out: list[Example] = []

    def add(
        stem: str, template: dict[str, Any], key: PrivateKey = EXAMPLE_KEY, note: str = "", *, more: bool = False
    ) -> Event:
        template = dict(template, author_pubkey=key.public_key.to_string())
        event = sign_event(template, key)
        out.append(Example(stem, note, event, more))
        return event

    def votes(stem: str, claim: Event, at: int, voters: tuple[PrivateKey, ...], note: str, first: int = 1) -> None:
        for n, voter in enumerate(voters, start=first):
            body = {"claim_id": claim.id, "vote": "yes"}
            add(
                f"{stem}.{n}", _event("VOTE", at + 10 * n, body, parents=[claim.id]), voter, note.format(n=n), more=True
            )

    bundle = load_white_album_template()
    bundle.pop("author_pubkey", None)
    white_album = add("create_release_bundle.white_album", bundle, note="the White Album, 30 tracks")
    tracks = bundle["body"]["release"]["tracks"]
    guitar = next(track for track in tracks if track["title"] == "While My Guitar Gently Weeps")
    # the bundle gives no release_id: the release's id is derived from the event and the path
    white_album_release = derived_id("release", white_album.id, "$.body.release")

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
        note="Led Zeppelin and its four founders",
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
        note="Ringo Starr joins The Beatles",
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
        note="Pete Best leaves The Beatles",
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
        note="claim: Eric Clapton is a guest on “While My Guitar Gently Weeps”",
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
        note="its author amends it (a second source); votes and the clock restart",
    )
    withdrawn = add(
        "add_claim.withdrawn",
        _event(
            "ADD_CLAIM",
            1758390550,
            {
                "subject": {"kind": "release", "id": white_album_release},
                "changes": [{"op": "set", "field": "release_date", "value": "1968-11-25"}],
                "note": "Wrong date; withdrawn below.",
            },
            parents=[white_album.id],
        ),
        SECOND_KEY,
        note="a second claim, on the release (its derived id)",
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
        note="its author withdraws it",
    )
    add(
        "vote",
        _event("VOTE", 1758390700, {"claim_id": claim.id, "vote": "yes", "comment": "Well documented."}),
        THIRD_KEY,
        note="Yes 1 of 3 on the amended claim",
    )
    votes("vote.claim", claim, 1758390700, (FOURTH_KEY, FIFTH_KEY), "Yes {n} of 3 on the amended claim", first=2)
    add(
        "like",
        _event("LIKE", 1758390800, {"target": white_album.id}),
        THIRD_KEY,
        note="a like of the White Album",
    )
    comment = add(
        "discuss",
        _event(
            "DISCUSS",
            1758390900,
            {"text": "Clapton's own recollection is in his autobiography, too.", "claim_id": claim.id},
            parents=[claim.id],
        ),
        THIRD_KEY,
        note="a comment on the claim",
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
        note="the claim's author replies",
    )
    add(
        "finalize",
        _event(
            "FINALIZE",
            1759000000,
            {"claim_id": claim.id, "outcome": "accepted", "tally": {"yes": 3, "no": 0, "abstain": 0}},
            parents=[claim.id],
        ),
        note="after the voting period (7 days from the amendment): accepted, Clapton is credited",
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
                    {"recipient": SECOND_KEY.public_key.to_string(), "amount": 100, "claim_ids": [claim.id]},
                ],
            },
        ),
        note="the distributor (the example key, by the setting above) pays the accepted claim's author 100 points",
    )
    starkey = _id("person", "Richard Starkey")
    ringo = _id("person", "Ringo Starr")
    add(
        "add_member.duplicate",
        _event(
            "ADD_MEMBER",
            1759150000,
            {
                "group_id": beatles,
                "member": {"person_id": starkey, "name": "Richard Starkey", "roles": ["Drums"]},
                "joined_date": "1962-08-18",
            },
        ),
        FOURTH_KEY,
        note="Ringo Starr again, under his legal name: a duplicate person",
        more=True,
    )
    merge = add(
        "merge_node",
        _event(
            "MERGE_NODE",
            1759200000,
            {
                "kind": "person",
                "source_id": starkey,
                "target_id": ringo,
                "reason": "Richard Starkey is Ringo Starr's legal name; the two nodes are one person.",
                "sources": ["https://en.wikipedia.org/wiki/Ringo_Starr"],
            },
        ),
        SECOND_KEY,
        note="merge the duplicate into Ringo Starr",
    )
    votes("vote.merge", merge, 1759200000, (EXAMPLE_KEY, THIRD_KEY, FOURTH_KEY), "Yes {n} of 3 on the merge")
    merged_at = 1759200000 + 2 * DAY  # a merge is destructive: never closed before 48 h
    add(
        "finalize.merge",
        _event(
            "FINALIZE",
            merged_at,
            {"claim_id": merge.id, "outcome": "accepted", "tally": {"yes": 3, "no": 0, "abstain": 0}},
            parents=[merge.id],
        ),
        note="48 h later: accepted, Richard Starkey resolves to Ringo Starr",
        more=True,
    )
    split = add(
        "split_node",
        _event(
            "SPLIT_NODE",
            merged_at + 3600,
            {
                "kind": "person",
                "node_id": ringo,
                "merge_id": merge.id,
                "reason": "Undo: keep the legal-name node separate for songwriting credits.",
            },
            parents=[merge.id],
        ),
        THIRD_KEY,
        note="undo the merge",
    )
    votes("vote.split", split, merged_at + 3600, (EXAMPLE_KEY, SECOND_KEY, FOURTH_KEY), "Yes {n} of 3 on the split")
    add(
        "finalize.split",
        _event(
            "FINALIZE",
            merged_at + 3600 + 2 * DAY,
            {"claim_id": split.id, "outcome": "accepted", "tally": {"yes": 3, "no": 0, "abstain": 0}},
            parents=[split.id],
        ),
        note="48 h later: accepted, the two nodes are apart again",
        more=True,
    )
    return out


def file_names(examples: list[Example]) -> list[str]:
    """``NN_<stem>.json``, or ``NNa_<stem>.json``… for a further event of the story after NN."""
    names: list[str] = []
    number, letter = -1, 0
    for example in examples:
        if example.more:
            letter += 1
            names.append(f"{number:02d}{chr(ord('a') + letter - 1)}_{example.stem}.json")
        else:
            number, letter = number + 1, 0
            names.append(f"{number:02d}_{example.stem}.json")
    return names


def _pretty(event: Event) -> str:
    return json.dumps(event.value, indent=2, ensure_ascii=False) + "\n"


def render() -> dict[Path, str]:
    """Every generated file and its content."""
    examples = build()
    names = file_names(examples)
    files: dict[Path, str] = {}
    for name, example in zip(names, examples, strict=True):
        files[EXAMPLES / name] = _pretty(example.event)
    files[EXAMPLES / "all.jsonl"] = "".join(example.event.canonical_bytes().decode() + "\n" for example in examples)
    files[EXAMPLES / "example.key"] = EXAMPLE_KEY.to_string() + "\n"
    files[EVENTS_DOC] = _fill_doc(EVENTS_DOC.read_text(encoding="utf-8"), examples, names)
    return files


KEY_NAMES = {
    key.public_key.to_string(): name
    for key, name in (
        (EXAMPLE_KEY, "example"),
        (SECOND_KEY, "second"),
        (THIRD_KEY, "third"),
        (FOURTH_KEY, "fourth"),
        (FIFTH_KEY, "fifth"),
    )
}


def _story(examples: list[Example], names: list[str]) -> str:
    """The table of every example in log order: file, type, author key, what it does."""
    rows = ["| file | type | key | in the story |", "| --- | --- | --- | --- |"]
    for name, example in zip(names, examples, strict=True):
        author = KEY_NAMES[str(example.event.value["author_pubkey"])]
        rows.append(f"| `{name}` | {example.event.value['type']} | {author} | {example.note} |")
    return "\n".join(rows) + "\n"


def _fill_doc(doc: str, examples: list[Example], names: list[str]) -> str:
    """Fill the ``<!-- example:STEM -->`` blocks (the signed example, shortened if huge) and the
    ``<!-- example-story -->`` block (the story table)."""
    by_stem = {example.stem: (name, example.event) for name, example in zip(names, examples, strict=True)}

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

    doc = re.sub(r"<!-- example:(?P<stem>[\w.]+) -->.*?<!-- /example -->", block, doc, flags=re.DOTALL)
    distributors = json.dumps(DISTRIBUTOR_SETTING["reward_distributors"])
    setting = f"```toml\n[graph]\nreward_distributors = {distributors}  # the example key\n```\n\n"
    story = f"<!-- example-story -->\n{setting}{_story(examples, names)}<!-- /example-story -->"
    return re.sub(r"<!-- example-story -->.*?<!-- /example-story -->", lambda _: story, doc, flags=re.DOTALL)


def main() -> int:
    for path, content in render().items():
        path.write_text(content, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
