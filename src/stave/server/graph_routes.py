"""The music graph over HTTP: read-only, anonymous routes under ``/graph``, and the server's
projection follower.

The server runs the graph projection as a background follower (:func:`follow`), as it runs its
checkpoint loop; every read also brings the projection up to date with the log first (usually
a no-op), so a client that just submitted an event sees it in the graph. Handlers only parse,
call :mod:`stave.graph` and map "not found" to a problem+json 404.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Annotated, Any, Final

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool

from stave import graph
from stave.db import Database
from stave.server.problems import Problem

__all__ = ["follow", "router"]

_log = logging.getLogger(__name__)
_DATE = re.compile(r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$")

router = APIRouter(prefix="/graph", tags=["graph"])


def _open(state: Any) -> graph.Projector:
    settings = state.settings
    database = graph.open_graph_database(settings.graph_url)
    return graph.Projector(database, state.log, state.store, settings.graph.rules())


async def follow(app: FastAPI, state: Any) -> None:
    """Open the projection (``app.state.graph``) and keep it up to date with the log until cancelled."""
    projector: graph.Projector | None = None
    try:
        while projector is None:
            try:
                projector = await run_in_threadpool(_open, state)
            except Exception:
                _log.exception("graph: cannot open the projection's database; retrying")
                await asyncio.sleep(5)
        app.state.graph = projector
        if not state.settings.graph.follow:  # another process follows; readers still catch up first
            await asyncio.Event().wait()
        interval = max(0.05, state.settings.graph.follow_interval)
        while True:
            try:
                applied = await run_in_threadpool(projector.catch_up, max_entries=graph.FOLLOW_ROUND)
            except Exception:  # a store or database hiccup: the batch rolled back, the next round retries
                _log.exception("graph: catching up with the log failed; retrying")
                applied = 0
            # Under steady ingest, follow in rounds, not event by event: a round applies what came
            # in meanwhile as one batch (far cheaper per event), and readers catch up themselves
            # before answering, so nobody reads a stale graph. A full round means a backlog: go on.
            if applied < graph.FOLLOW_ROUND:
                await asyncio.sleep(interval)
    finally:
        if projector is not None:
            projector.database.close()


async def _ask(request: Request, what: str, ask: Callable[[Database], Any]) -> Any:
    projector: graph.Projector | None = getattr(request.app.state, "graph", None)
    if projector is None:
        raise Problem(503, "unavailable", "the graph projection is starting", retry_after=2)
    await run_in_threadpool(projector.catch_up)
    result = await run_in_threadpool(ask, projector.database)
    if result is None:
        raise Problem(404, "not-found", what)
    return result


def _check_node_id(node_id: str) -> None:
    if not 1 <= len(node_id) <= 256:
        raise Problem(400, "invalid", f"a node id is 1 to 256 characters, got {len(node_id)}")


@router.get("/releases/{release_id}", summary="A release with its labels and tracklist with every credit")
async def get_release(request: Request, release_id: str) -> Any:
    _check_node_id(release_id)
    return await _ask(request, f"no release with id {release_id}", lambda db: graph.release(db, release_id))


@router.get("/people/{person_id}/discography", summary="A person's releases and tracks, with their roles")
async def get_person_discography(request: Request, person_id: str) -> Any:
    _check_node_id(person_id)
    return await _ask(
        request, f"no person with id {person_id}", lambda db: _of_kind(graph.discography(db, person_id), "person")
    )


@router.get("/groups/{group_id}/discography", summary="A group's releases and tracks")
async def get_group_discography(request: Request, group_id: str) -> Any:
    _check_node_id(group_id)
    return await _ask(
        request, f"no group with id {group_id}", lambda db: _of_kind(graph.discography(db, group_id), "group")
    )


def _of_kind(view: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    return view if view is not None and view["kind"] == kind else None


@router.get("/groups/{group_id}/members", summary="A group's members, optionally at a date")
async def get_members(
    request: Request,
    group_id: str,
    at: Annotated[str | None, Query(description="YYYY, YYYY-MM or YYYY-MM-DD")] = None,
) -> Any:
    _check_node_id(group_id)
    if at is not None and not _DATE.match(at):
        raise Problem(400, "invalid", f"at: expected a date YYYY, YYYY-MM or YYYY-MM-DD, got {at[:40]!r}")
    return await _ask(request, f"no group with id {group_id}", lambda db: graph.members(db, group_id, at))


@router.get("/labels/{label_id}/releases", summary="A label's releases, including its sub-labels'")
async def get_label_releases(request: Request, label_id: str) -> Any:
    _check_node_id(label_id)
    return await _ask(request, f"no label with id {label_id}", lambda db: graph.label_releases(db, label_id))


@router.get("/people/{person_id}/collaborators", summary="People sharing a track or group, up to depth hops")
async def get_collaborators(request: Request, person_id: str, depth: Annotated[int, Query(ge=1, le=3)] = 2) -> Any:
    _check_node_id(person_id)
    return await _ask(request, f"no person with id {person_id}", lambda db: graph.collaborators(db, person_id, depth))


@router.get("/search", summary="Nodes by name or alternative name, accent- and case-insensitive")
async def get_search(
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    kind: Annotated[str | None, Query(max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> Any:
    return await _ask(request, "", lambda db: graph.search(db, q, limit=limit, kind=kind))


_STATUSES: Final = ("open", "accepted", "rejected", "withdrawn", "all")


@router.get("/claims", summary="Proposals by status with their live vote counts")
async def get_claims(
    request: Request,
    status: Annotated[str, Query(description="open, accepted, rejected, withdrawn or all")] = "open",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    if status not in _STATUSES:
        raise Problem(400, "invalid", f"status: expected one of {', '.join(_STATUSES)}, got {status[:40]!r}")
    rules = request.app.state.stave.settings.graph.rules()
    chosen = None if status == "all" else status
    return await _ask(request, "", lambda db: graph.claims(db, chosen, limit=limit, rules=rules))


@router.get("/nodes/{node_id}/history", summary="Every event that touched a node, in log order, with proof links")
async def get_history(request: Request, node_id: str) -> Any:
    _check_node_id(node_id)
    return await _ask(request, f"nothing touched node {node_id}", lambda db: graph.history(db, node_id) or None)


@router.get("/rewards", summary="Reward totals per contributor and unit")
async def get_rewards(request: Request, recipient: Annotated[str | None, Query(max_length=128)] = None) -> Any:
    return await _ask(request, "", lambda db: graph.reward_totals(db, recipient))


@router.get("/rejections", summary="Events (or parts of them) the projection refused, with the rule and why")
async def get_rejections(
    request: Request,
    event_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    return await _ask(request, "", lambda db: graph.rejections(db, event_id, limit=limit))
