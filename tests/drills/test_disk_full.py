"""Disk-full drill: one local backend on a small tmpfs that fills up during load.

Three local backends, one of them a small tmpfs (4 MiB; 32 MiB in the long drill). After a first
load the tmpfs is filled to the last byte; then:

- with ``min_redundancy = 2`` ingest goes on: every write acknowledged on the two others, the
  full backend absent from each answer's ``stored``, ``/health`` naming it with the disk error,
  every acknowledged event still served verified;
- with ``min_redundancy = 3`` writes are refused with 503, Retry-After and a detail that names
  the full backend and "No space left on device";
- at no point is there a partial object on the full disk: every file under a real name is a
  whole, verified event;
- once space is freed, scrub copies every acknowledged event onto it and every invariant holds.

Mounting needs root and a kernel that lets this sandbox mount; where it cannot, the drill is
skipped with the mount error.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from stave.event import admit
from tests.drills.toolkit import (
    Load,
    check_invariants,
    check_reads,
    drill_server,
    local_objects,
    record,
    signed_events,
)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """Mounts tmpfs file systems of a given size, unmounted afterwards; skipped (with the reason)
    where mounting is refused."""
    mounted: list[Path] = []

    def mount(size: int) -> Path:
        mount_point = tmp_path / f"small-{len(mounted)}"
        mount_point.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
        mounted.append(mount_point)
        return mount_point

    yield mount
    for mount_point in mounted:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(directory: Path) -> Path:
    """Write a file until the disk is full; return it."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as handle:  # unbuffered: nothing left to fail at close
        for size in (65536, 1):  # big chunks, then the last bytes one at a time
            try:
                while True:
                    handle.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    return filler


def no_partial_objects(root: Path) -> tuple[int, int]:
    """Every file under a real name is a whole, verified event; returns (objects, temporaries)."""
    objects = local_objects(root)
    for event_id, path in objects.items():
        admit(path.read_bytes(), expected_id=event_id)  # raises on a partial or corrupt object
    temporaries = list((root / "events").rglob(".tmp-*")) if (root / "events").is_dir() else []
    return len(objects), len(temporaries)


def disk_full_drill(tmp_path: Path, name: str, small: Path, count: int, size: int) -> None:
    durable = f"file://{small}/store file://{tmp_path}/b file://{tmp_path}/c"
    names = {"small": f"file:{small}/store"}
    env = {"STAVE_STORE_DURABLE": durable, "STAVE_STORE_MIN_REDUNDANCY": "2", "STAVE_STORE_TIMEOUT": "5"}
    server = drill_server(tmp_path / "data", env).start()
    try:
        before = Load(server.url, signed_events(5_000_000, 100), clients=32, seconds=60).run()
        assert len(before.acknowledged) == 100, before.figures()
        filler = fill(small)

        during = Load(server.url, signed_events(5_100_000, count), clients=32, seconds=120).run()
        assert set(during.statuses()) == {201}, during.statuses()
        assert all(names["small"] not in a.detail.split(",") for a in during.attempts), "stored on a full disk?"
        with httpx.Client(base_url=server.url, timeout=30) as http:
            health = http.get("/health")
            assert health.status_code == 200, health.text  # two backends still make the quorum
            report = {backend["name"]: backend for backend in health.json()["store"]["backends"]}
            assert not report[names["small"]]["ok"], report
            assert "No space left on device" in str(report[names["small"]]), report
        acknowledged = {**before.sent, **during.sent}
        reads = check_reads(server.url, acknowledged)
        assert reads == {200: len(acknowledged)}, reads
        objects, temporaries = no_partial_objects(small / "store")
        assert objects == 100, "the full disk holds exactly the events written before it filled up"
        server.stop()

        # Every copy needed: refused, clearly.
        server = drill_server(tmp_path / "data", {**env, "STAVE_STORE_MIN_REDUNDANCY": "3"}).start()
        refused = Load(server.url, signed_events(5_900_000, 32), clients=8, seconds=60).run()
        server.stop()
        assert set(refused.statuses()) == {503}, refused.statuses()
        for attempt in refused.attempts:
            assert attempt.retry_after is not None
            assert int(attempt.retry_after) >= 1
            assert names["small"] in attempt.detail, attempt.detail
            assert "No space left on device" in attempt.detail, attempt.detail
        no_partial_objects(small / "store")

        filler.unlink()
        # Space again, and every copy still required: the refused writes' copies on the two roomy
        # backends are strays below that quorum (orphans, never served); scrub fills the freed disk.
        strict = {**env, "STAVE_STORE_MIN_REDUNDANCY": "3"}
        server = drill_server(tmp_path / "data", strict).start()
        outcome = before.merge(during).merge(refused)
        checked = check_invariants(server, outcome, env=strict, expect_repair=True, allowed_orphans=2 * 32)
        after, _ = no_partial_objects(small / "store")
        assert after == len(outcome.acknowledged), "scrub copied every acknowledged event onto the freed disk"
    finally:
        server.stop()
    figures = {
        **outcome.figures(),
        **checked.figures(),
        "tmpfs_bytes": size,
        "acknowledged_while_full": len(during.acknowledged),
        "refused_when_every_copy_needed": len(refused.refused),
        "partial_objects": 0,
        "temporaries_left_on_full_disk": temporaries,
        "copies_on_full_disk_after_scrub": after,
    }
    print(f"\n{name}: {figures}")
    record(name, figures)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_full_disk_fails_cleanly(tmp_path: Path, tmpfs: Callable[[int], Path]) -> None:
    size = 4 << 20  # room for ~1000 events (a page each) once the filler is gone
    disk_full_drill(tmp_path, "disk-full-short", tmpfs(size), count=200, size=size)


@pytest.mark.drill
@pytest.mark.timeout(1800)
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_disk_full_drill(tmp_path: Path, tmpfs: Callable[[int], Path]) -> None:
    size = 32 << 20
    disk_full_drill(tmp_path, "disk-full", tmpfs(size), count=5_000, size=size)
