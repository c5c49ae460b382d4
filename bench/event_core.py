"""Event core: canonicalise, hash, sign and verify, beside a raw libsecp256k1 key recovery.

Goals (issue: the event core): verifying a small event (a ~300 B vote) from its bytes costs at
most 1.5x a raw coincurve public-key recovery, the one operation verification cannot avoid;
verifying a 10 KB release bundle at most 3x.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import coincurve
import rfc8785
from rich.console import Console
from rich.table import Table

from bench.harness import Record, compare, goal_record, print_records, upsert_summary, write_results
from stave.cli.demo import load_white_album_template
from stave.event import Event, PrivateKey, admit, canonicalize, parse, sign_event

KEY = PrivateKey(hashlib.sha256(b"bench key").digest())


def small_event() -> dict[str, Any]:
    return {
        "v": 1,
        "type": "VOTE",
        "created_at": 1758390700,
        "parents": [],
        "body": {"claim_id": "ab" * 32, "vote": "yes", "comment": "Well documented."},
    }


def bundle_of_about(size: int) -> dict[str, Any]:
    """The White Album bundle cut to the fewest tracks whose canonical form reaches ``size`` bytes."""
    template = load_white_album_template()
    template.pop("author_pubkey", None)
    tracks = template["body"]["release"]["tracks"]
    for count in range(1, len(tracks) + 1):
        template["body"]["release"]["tracks"] = tracks[:count]
        template["body"]["tracklist"] = [
            entry
            for entry in template["body"]["tracklist"]
            if entry["track_id"] in {t["track_id"] for t in tracks[:count]}
        ]
        if len(canonicalize(template)) >= size:
            break
    return template


def run(console: Console) -> list[Record]:
    events = {"small vote": sign_event(small_event(), KEY), "10 KB bundle": sign_event(bundle_of_about(10_000), KEY)}
    figures: dict[str, Any] = {}
    records: list[Record] = []
    table = Table(
        title="event core, per event (µs, fastest and median of interleaved rounds); ratio to a raw key recovery"
    )
    for column in ("event", "bytes", "operation", "µs", "median µs", "x recovery"):
        table.add_column(column)
    for label, event in events.items():
        data = event.canonical_bytes()
        measured = compare(_operations(event))
        timings = {name: fastest for name, (fastest, _) in measured.items()}
        recovery = timings["raw coincurve recovery"]
        figures[label] = {
            "bytes": len(data),
            "fastest_seconds_per_call": timings,
            "median_seconds_per_call": {name: median for name, (_, median) in measured.items()},
        }
        for name, seconds in timings.items():
            median = measured[name][1]
            table.add_row(
                label, str(len(data)), name, f"{seconds * 1e6:.1f}", f"{median * 1e6:.1f}", f"{seconds / recovery:.2f}"
            )
        goal = "<=1.5" if label == "small vote" else "<=3"
        records.append(
            goal_record(
                f"event_core.verify_{'small_event' if label == 'small vote' else '10kb_bundle'}",
                timings["verify from bytes (admit)"] * 1e6,
                "us",
                goal,
                baseline="coincurve public-key recovery",
                baseline_value=recovery * 1e6,
            )
        )
    console.print(table)
    write_results("event_core", figures)
    upsert_summary(records)
    print_records("event core goals", records, console)
    return records


def _operations(event: Event) -> dict[str, Callable[[], object]]:
    """The operations timed for one event; the first is the baseline every ratio is against."""
    data = event.canonical_bytes()
    parsed = parse(data)
    unsigned = {key: value for key, value in event.value.items() if key != "sig"}
    raw_sig = _coincurve_signature(event.sig or "")
    digest = event.digest
    return {
        "raw coincurve recovery": lambda: coincurve.PublicKey.from_signature_and_message(raw_sig, digest, hasher=None),
        "raw sha256 of the bytes": lambda: hashlib.sha256(data).digest(),
        "verify from bytes (admit)": lambda: admit(data),
        "strict parse": lambda: parse(data),
        "canonicalise": lambda: canonicalize(unsigned, sorted_is_canonical=parsed.sorted_is_canonical),
        "canonicalise (rfc8785 package)": lambda: rfc8785.dumps(unsigned),
        "hash (canonicalise + sha256)": lambda: hashlib.sha256(
            canonicalize(unsigned, sorted_is_canonical=True)
        ).digest(),
        "sign": lambda: sign_event(unsigned, KEY),
    }


def _coincurve_signature(sig: str) -> bytes:
    from stave.event import Signature

    data = Signature.from_string(sig).data
    return data[1:] + bytes([data[0] - 31])
