"""The graph over HTTP against a real ``stave serve`` process: its follower projects what is
submitted, every route answers from the graph, errors are problem+json."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stave.client import StaveClient
from tests.graph.test_projection import BEATLES, EMI, GUITAR_WEEPS, PAUL, RINGO
from tests.graph.world import EXAMPLES, example, sign
from tests.server.process import StaveServer
from tests.unit.test_cli import stave


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaveServer]:
    data = tmp_path_factory.mktemp("graph-serve")
    first_half = Path(data) / "first.jsonl"
    first_half.write_text("".join(EXAMPLES.joinpath("all.jsonl").read_text().splitlines(keepends=True)[:8]))
    assert stave("--data-dir", str(data), "log", "add", str(first_half)).returncode == 0  # a log before the server
    one = StaveServer(data).start()
    yield one
    one.stop()


@pytest.fixture
def client(server: StaveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def test_the_server_projects_the_log_and_what_is_submitted(server: StaveServer, client: httpx.Client) -> None:
    hits = client.get("/graph/search", params={"q": "fab four"})
    assert hits.status_code == 200, hits.text
    assert [hit["id"] for hit in hits.json()] == [BEATLES]
    with StaveClient(server.url) as writer:
        writer.credential()
        for line in EXAMPLES.joinpath("all.jsonl").read_text().splitlines()[8:]:
            writer.submit(line.encode())
        late = sign("CREATE_GROUP", 1_760_000_000, {"group": {"name": "Sigur Rós"}})
        writer.submit(late)
    found = client.get("/graph/search", params={"q": "SIGUR ROS"}).json()  # read-your-writes: the read catches up
    assert [hit["name"] for hit in found] == ["Sigur Rós"]
    history = client.get(f"/graph/nodes/{RINGO}/history").json()
    assert [h["type"] for h in history] == [
        "CREATE_RELEASE_BUNDLE",
        "ADD_MEMBER",
        "MERGE_NODE",
        "FINALIZE",
        "SPLIT_NODE",
        "FINALIZE",
    ]
    assert history[1]["event_id"] == example("02_add_member").id
    proof = client.get(history[1]["proof"])  # the audit trail links to a verifiable proof bundle
    assert proof.status_code == 200, proof.text
    assert proof.json()["event"]["sig"] == example("02_add_member").sig
    assert proof.json()["inclusion_proof"]["log_index"] == history[1]["seq"]


def test_every_route_answers(server: StaveServer, client: httpx.Client) -> None:
    release_id = next(h["id"] for h in client.get("/graph/search", params={"q": "white album"}).json())
    release = client.get(f"/graph/releases/{release_id}").json()
    assert release["name"] == "The Beatles"
    assert len(release["tracklist"]) == 30
    person = client.get(f"/graph/people/{PAUL}/discography").json()
    assert [r["id"] for r in person["releases"]] == [release_id]
    group = client.get(f"/graph/groups/{BEATLES}/discography").json()
    assert len(group["releases"][0]["tracks"]) == 30
    members = client.get(f"/graph/groups/{BEATLES}/members", params={"at": "1962-08-18"}).json()
    assert RINGO in {m["id"] for m in members["members"]}
    label = client.get(f"/graph/labels/{EMI}/releases").json()
    assert [r["id"] for r in label["releases"]] == [release_id]
    collaborators = client.get(f"/graph/people/{PAUL}/collaborators", params={"depth": 1}).json()
    assert "John Lennon" in {c["name"] for c in collaborators["collaborators"]}
    claims = client.get("/graph/claims", params={"status": "all"}).json()
    claim = next(c for c in claims if c["subject"]["id"] == GUITAR_WEEPS)
    assert (claim["status"], claim["votes"]) == ("accepted", {"yes": 3, "no": 0, "abstain": 0})
    assert client.get("/graph/claims", params={"status": "all"}).status_code == 200
    assert client.get("/graph/rewards").json() == []  # the example distribution was refused:
    rewards_id = example("13_distribute_rewards").id
    [refusal] = client.get("/graph/rejections", params={"event_id": rewards_id}).json()
    assert refusal["rule"] == "distributor-not-allowed"


def test_errors_are_problems(client: httpx.Client) -> None:
    missing = client.get("/graph/releases/no-such-release")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["reason"] == "not-found"
    assert "no-such-release" in missing.json()["detail"]
    wrong_kind = client.get(f"/graph/people/{BEATLES}/discography")  # a group, not a person
    assert wrong_kind.status_code == 404
    bad_date = client.get(f"/graph/groups/{BEATLES}/members", params={"at": "yesterday"})
    assert bad_date.status_code == 400
    assert "YYYY" in bad_date.json()["detail"]
    bad_status = client.get("/graph/claims", params={"status": "maybe"})
    assert bad_status.status_code == 400
    assert client.get("/graph/search").status_code == 400  # q is required
    assert client.get(f"/graph/people/{PAUL}/collaborators", params={"depth": 9}).status_code == 400


def test_a_server_that_does_not_follow_still_answers_up_to_date(tmp_path: Path) -> None:
    """graph.follow = false (a separate `stave project follow` does it): nothing projects in the
    background, and a read brings the graph up to date before answering."""
    import sqlite3
    import time

    def cursor() -> int:
        with sqlite3.connect(tmp_path / "graph.db") as connection:
            row = connection.execute("SELECT seq FROM graph_cursor WHERE name = 'graph'").fetchone()
            return -1 if row is None else int(row[0])

    assert stave("--data-dir", str(tmp_path), "log", "add", str(EXAMPLES / "all.jsonl")).returncode == 0
    one = StaveServer(tmp_path, env={"STAVE_GRAPH_FOLLOW": "false"}).start()
    try:
        time.sleep(1.5)  # three rounds of a follower, had there been one
        assert cursor() == -1
        with httpx.Client(base_url=one.url, timeout=30) as client:
            hits = client.get("/graph/search", params={"q": "fab four"})
            assert hits.status_code == 200, hits.text
            assert [hit["id"] for hit in hits.json()] == [BEATLES]
        assert cursor() == len((EXAMPLES / "all.jsonl").read_text().splitlines()) - 1
    finally:
        one.stop()
