"""A sequencer process for the crash tests (tests/log/test_crash.py): appends until it is killed.

Run as ``python tests/log/sequencer_worker.py --database URL --stream NAME --start N --seed S``.
It opens the log and prints ``ready <size>``, then forever appends batches of 1–50 fresh ids
of its stream (``stream_id(NAME, i)`` for i = N, N+1, …), sometimes mixed with ids it or an
earlier worker already had acknowledged (``--resubmit`` ids below the next fresh index) and with
ids of a stream every worker shares (``--shared K``: indices below K, so concurrent workers
submit the same ids). After ``append_ids`` returns it prints, flushed, one line::

    acked <first> <count> <seqs of the fresh ids> <old index:seq,…|-> <shared index:seq,…|->

and after some batches ``checkpoint <size> <root hex> <note as base64>`` once
``publish_checkpoint`` returns. A line is printed only after the call returned, so a printed
line is an acknowledgement; a kill between commit and print leaves committed, unacknowledged
ids, which the parent allows. Everything random comes from ``--seed``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import random
import sys

from stave.db import open_database
from stave.log.note import Signer
from stave.log.sequencer import Log

SIGNER = Signer(name="crash.stave/log", private_key=hashlib.sha256(b"crash test log key").digest())


def stream_id(stream: str, index: int) -> str:
    """The event id number ``index`` of a stream: the same in the parent and in every worker."""
    return hashlib.sha256(f"{stream}:{index}".encode()).hexdigest()


def _pairs(pairs: list[tuple[int, int]]) -> str:
    return ",".join(f"{index}:{seq}" for index, seq in pairs) or "-"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True)
    parser.add_argument("--stream", required=True)
    parser.add_argument("--start", type=int, required=True, help="the first fresh stream index to submit")
    parser.add_argument("--seed", required=True)
    parser.add_argument("--resubmit", type=float, default=0.3, help="chance a batch re-submits acknowledged ids")
    parser.add_argument("--shared", type=int, default=0, help="size of the stream shared by all workers (0: none)")
    parser.add_argument("--checkpoint", type=float, default=0.25, help="chance of a checkpoint after a batch")
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    log = Log(open_database(args.database), SIGNER)
    out = sys.stdout
    out.write(f"ready {log.size()}\n")
    out.flush()
    first = args.start
    while True:
        count = rng.randint(1, 50)
        items = [stream_id(args.stream, index) for index in range(first, first + count)]
        old: list[int] = []
        if first and rng.random() < args.resubmit:
            old = [rng.randrange(first) for _ in range(rng.randint(1, 3))]
        shared: list[int] = []
        if args.shared and rng.random() < 0.4:
            shared = [rng.randrange(args.shared) for _ in range(rng.randint(1, 5))]
        # Known ids go anywhere in the batch: they take no new number, so the fresh ids keep stream order.
        # A shared id may be fresh, and then takes the number of where it stands.
        for extra in [stream_id(args.stream, index) for index in old] + [stream_id("shared", i) for i in shared]:
            items.insert(rng.randint(0, len(items)), extra)
        results = {result.event_id: result.seq for result in log.append_ids([(i, "CRASH", None, None) for i in items])}
        seqs = ",".join(str(results[stream_id(args.stream, index)]) for index in range(first, first + count))
        old_seqs = _pairs([(index, results[stream_id(args.stream, index)]) for index in old])
        shared_seqs = _pairs([(index, results[stream_id("shared", index)]) for index in shared])
        out.write(f"acked {first} {count} {seqs} {old_seqs} {shared_seqs}\n")
        out.flush()
        first += count
        if rng.random() < args.checkpoint:
            checkpoint = log.publish_checkpoint()
            note = base64.b64encode(checkpoint.note.encode()).decode()
            out.write(f"checkpoint {checkpoint.size} {checkpoint.root.hex()} {note}\n")
            out.flush()


if __name__ == "__main__":
    main()
