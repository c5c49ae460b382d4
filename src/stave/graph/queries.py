"""Queries of the music graph: plain functions over the graph's :class:`~stave.db.Database`.

Every function takes the database first and returns JSON-ready dicts and lists (or ``None``
for an unknown id). Ids resolve through standing merges: asking for a merged duplicate answers
for the node it was merged into, and credits stated with either id count for both. Callers bring
the projection up to date first (:meth:`stave.graph.Projector.catch_up`); these only read.

- :func:`node` — one node: kind, names, attributes, the id it resolves to.
- :func:`release` — a release with labels, master/reissues and its tracklist with every credit.
- :func:`discography` — a person's or group's releases and tracks with their roles.
- :func:`label_releases` — a label's releases, including those of its sub-labels (recursive).
- :func:`members` — a group's members, optionally at a date (``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``).
- :func:`collaborators` — people sharing a track or a group with a person, up to ``depth`` hops.
- :func:`search` — nodes by name or alternative name, accent- and case-insensitive.
- :func:`claims` — proposals by status with their live vote counts.
- :func:`history` — every event that touched a node, in log order, with its proof link.
- :func:`reward_totals`, :func:`rejections` — rewards per contributor and unit; refused events.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, Final

import orjson
from sqlalchemy import Connection, bindparam, func, or_, select, text

from stave.db import Database, driver_sql, in_list
from stave.graph import tables
from stave.graph.aliases import chunks, cluster, clusters, resolve_many
from stave.graph.names import fold
from stave.graph.rules import Ballot, Claim, Rules, closes_at

__all__ = [
    "CREDIT_RELATIONS",
    "claims",
    "collaborators",
    "discography",
    "history",
    "label_releases",
    "members",
    "node",
    "rejections",
    "release",
    "reward_totals",
    "search",
]

CREDIT_RELATIONS: Final = ("songwriter", "producer", "guest", "member")
_N, _E, _A = tables.nodes.c, tables.edges.c, tables.alias.c
_TOKEN = re.compile(r"\w+")


# --- resolution through merges ------------------------------------------------------------------


_NODE = select(tables.nodes).where(_N.id == bindparam("id"))
_NODES = select(_N.id, _N.kind, _N.name, _N.attrs).where(_N.id.in_(bindparam("ids", expanding=True)))
_ALTNAMES = (
    select(tables.names.c.name)
    .where(tables.names.c.node_id == bindparam("id"), tables.names.c.is_primary == 0)
    .order_by(tables.names.c.name_id)
)
_MERGED_AROUND = select(_A.node_id).where(or_(_A.node_id == bindparam("id"), _A.target_id == bindparam("id"))).limit(1)
_EDGES_FROM = (
    select(tables.edges)
    .where(_E.src.in_(bindparam("ids", expanding=True)), _E.rel.in_(bindparam("rels", expanding=True)))
    .order_by(_E.seq, _E.pos)
)
_EDGES_TO = (
    select(tables.edges)
    .where(_E.dst.in_(bindparam("ids", expanding=True)), _E.rel.in_(bindparam("rels", expanding=True)))
    .order_by(_E.seq, _E.pos)
)


def _lookup(connection: Connection, ids: Iterable[str]) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Brief views ``{id, kind, name}`` keyed by the ids asked for (resolved), and attributes by resolved id."""
    resolved = resolve_many(connection, sorted({node_id for node_id in ids if node_id}))
    rows: dict[str, dict[str, Any]] = {}
    attrs: dict[str, dict[str, Any]] = {}
    for chunk in chunks(sorted(set(resolved.values()))):
        for node_id, kind, name, raw in connection.execute(_NODES, {"ids": chunk}):
            rows[node_id] = {"id": node_id, "kind": kind, "name": name}
            attrs[node_id] = orjson.loads(raw)
    views = {
        node_id: rows.get(target, {"id": target, "kind": None, "name": None}) for node_id, target in resolved.items()
    }
    return views, attrs


def _nodes(connection: Connection, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    return _lookup(connection, ids)[0]


def _node(connection: Connection, node_id: str, kind: str | None = None) -> dict[str, Any] | None:
    """The full view of a node: resolved, with names, attributes and the ids merged into it."""
    merged = connection.execute(_MERGED_AROUND, {"id": node_id}).first() is not None
    canonical = resolve_many(connection, [node_id])[node_id] if merged else node_id
    row = connection.execute(_NODE, {"id": canonical}).first()
    if row is None or (kind is not None and row.kind != kind):
        return None
    return {
        "id": row.id,
        "asked": node_id,
        "kind": row.kind,
        "name": row.name,
        "altnames": list(connection.execute(_ALTNAMES, {"id": row.id}).scalars()),
        **orjson.loads(row.attrs),
        "merged": cluster(connection, row.id)[1:] if merged else [],
    }


def node(database: Database, node_id: str) -> dict[str, Any] | None:
    """One node (resolved through merges), or None."""
    with database.engine.connect() as connection:
        return _node(connection, node_id)


# --- releases and discographies -----------------------------------------------------------------


def _edges(connection: Connection, query: Any, ids: Sequence[str], relations: Sequence[str]) -> list[Any]:
    rows: list[Any] = []
    for chunk in chunks(ids):
        rows += connection.execute(query, {"ids": chunk, "rels": list(relations)}).all()
    return rows


def _edges_from(connection: Connection, sources: Sequence[str], relations: Sequence[str]) -> list[Any]:
    return _edges(connection, _EDGES_FROM, sources, relations)


def _edges_to(connection: Connection, targets: Sequence[str], relations: Sequence[str]) -> list[Any]:
    return _edges(connection, _EDGES_TO, targets, relations)


_TRACK_RELATIONS: Final = (*CREDIT_RELATIONS, "group", "cover", "sample")


def _referenced(edges: Iterable[Any]) -> set[str]:
    found: set[str] = set()
    for edge in edges:
        found.add(edge.src)
        found.add(edge.dst)
        if edge.role_id:
            found.add(edge.role_id)
        if edge.group_id:
            found.add(edge.group_id)
    return found


def _tracks(
    track_ids: Sequence[str], edges: Sequence[Any], names: dict[str, dict[str, Any]], attrs: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Tracks with their credits, groups, covers and samples, keyed by track id."""
    out: dict[str, dict[str, Any]] = {}
    for track_id in track_ids:
        view = names[track_id]
        out[track_id] = {
            "id": view["id"],
            "title": view["name"],
            "listen_links": attrs.get(view["id"], {}).get("listen_links", []),
            "credits": [],
            "groups": [],
            "covers": [],
            "samples": [],
        }
    credits: dict[tuple[str, str, str, str | None], dict[str, Any]] = {}
    for edge in edges:
        track = out[edge.src]
        other = names[edge.dst]
        if edge.rel in CREDIT_RELATIONS:
            group = names[edge.group_id]["id"] if edge.group_id else None
            key = (edge.src, edge.rel, other["id"], group)
            credit = credits.get(key)
            if credit is None:
                credit = {"person": other, "as": edge.rel, "roles": [], "group_id": group}
                credits[key] = credit
                track["credits"].append(credit)
            if edge.role_id:
                role = names[edge.role_id]["name"]
                if role and role not in credit["roles"]:
                    credit["roles"].append(role)
        elif edge.rel == "group":
            if other not in track["groups"]:
                track["groups"].append(other)
        else:
            track["covers" if edge.rel == "cover" else "samples"].append(other)
    return out


def release(database: Database, release_id: str) -> dict[str, Any] | None:
    """A release with labels, master/reissues and its tracklist, each track with its credits."""
    with database.engine.connect() as connection:
        view = _node(connection, release_id, "release")
        if view is None:
            return None
        ids = [view["id"], *view["merged"]]
        own = _edges_from(connection, ids, ("release_label", "reissue_of", "tracklist"))
        reissues = _edges_to(connection, ids, ("reissue_of",))
        entries = sorted(
            (e for e in own if e.rel == "tracklist"),
            key=lambda e: (e.side is None, e.side or 0, e.number is None, e.number or 0, e.seq, e.pos),
        )
        track_ids = list(dict.fromkeys(e.dst for e in entries))
        track_edges = _edges_from(connection, track_ids, _TRACK_RELATIONS)
        names, attrs = _lookup(connection, _referenced([*own, *reissues, *track_edges]) | set(track_ids))
        label_edges = [e for e in own if e.rel == "release_label"]
        view["labels"] = list({names[e.dst]["id"]: names[e.dst] for e in label_edges}.values())
        masters = [e for e in own if e.rel == "reissue_of"]
        view["master_release"] = names[masters[0].dst] if masters else None
        view["reissues"] = list({names[e.src]["id"]: names[e.src] for e in reissues}.values())
        tracks = _tracks(track_ids, track_edges, names, attrs)
        view["tracklist"] = [{"side": e.side, "number": e.number, **tracks[e.dst]} for e in entries]
        return view


def discography(database: Database, node_id: str) -> dict[str, Any] | None:
    """A person's or group's releases, each with the tracks they are on and how."""
    with database.engine.connect() as connection:
        view = _node(connection, node_id)
        if view is None or view["kind"] not in ("person", "group"):
            return None
        ids = [view["id"], *view["merged"]]
        relations = CREDIT_RELATIONS if view["kind"] == "person" else ("group",)
        credited = _edges_to(connection, ids, relations)
        track_ids = sorted({edge.src for edge in credited})
        on_release = _edges_to(connection, track_ids, ["tracklist"])
        memberships: Sequence[Any] = []
        if view["kind"] == "person":
            m = tables.memberships.c
            memberships = connection.execute(
                select(m.group_id, m.since, m.until)
                .where(m.person_id.in_(bindparam("ids", expanding=True)))
                .order_by(m.seq),
                {"ids": ids},
            ).all()
        names, attrs = _lookup(
            connection, _referenced([*credited, *on_release]) | {row.group_id for row in memberships}
        )
        roles_on: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for edge in credited:
            roles = roles_on[edge.src][edge.rel]
            role = names[edge.role_id]["name"] if edge.role_id else None
            if role and role not in roles:
                roles.append(role)
        releases: dict[str, dict[str, Any]] = {}
        seen: set[tuple[str, str]] = set()
        for edge in on_release:
            target = names[edge.src]
            entry = releases.setdefault(
                target["id"], {**target, "date": attrs.get(target["id"], {}).get("date"), "tracks": []}
            )
            track = names[edge.dst]
            if (target["id"], track["id"]) in seen:
                continue
            seen.add((target["id"], track["id"]))
            entry["tracks"].append(
                {
                    "id": track["id"],
                    "title": track["name"],
                    "side": edge.side,
                    "number": edge.number,
                    "as": dict(roles_on[edge.dst]),
                }
            )
        listed = {track for _, track in seen}
        view["releases"] = sorted(releases.values(), key=lambda r: (r.get("date") or "", r["name"] or "", r["id"]))
        view["other_tracks"] = [
            {"id": names[t]["id"], "title": names[t]["name"], "as": dict(roles_on[t])}
            for t in track_ids
            if names[t]["id"] not in listed
        ]
        if view["kind"] == "person":
            view["groups"] = [{**names[row.group_id], "since": row.since, "until": row.until} for row in memberships]
        return view


# --- labels, members, collaborators -------------------------------------------------------------


def label_releases(database: Database, label_id: str, *, max_depth: int = 16) -> dict[str, Any] | None:
    """A label, its sub-labels (through ``label_parents``, any depth up to ``max_depth``), and their releases."""
    with database.engine.connect() as connection:
        view = _node(connection, label_id, "label")
        if view is None:
            return None
        # Breadth first, one query per level: a sub-label may itself have duplicates merged into
        # it, whose own sub-labels count too, which a recursive CTE over raw edges would miss.
        depths = dict.fromkeys([view["id"], *view["merged"]], 0)
        frontier = list(depths)
        for depth in range(1, max_depth + 1):
            children = [edge.src for edge in _edges_to(connection, frontier, ["label_parent"])]
            found = clusters(connection, sorted(set(resolve_many(connection, children).values())))
            frontier = [label for label in found if label not in depths]
            depths.update(dict.fromkeys(frontier, depth))
            if not frontier:
                break
        labels = _nodes(connection, depths)
        view["sub_labels"] = [
            {**labels[node_id], "depth": depth}
            for node_id, depth in sorted(depths.items(), key=lambda item: (item[1], item[0]))
            if labels[node_id]["id"] != view["id"] and depth > 0
        ]
        on_label = _edges_to(connection, sorted(depths), ["release_label"])
        releases, attrs = _lookup(connection, [e.src for e in on_label])
        out: dict[str, dict[str, Any]] = {}
        for edge in on_label:
            target = releases[edge.src]
            out.setdefault(
                target["id"],
                {**target, "date": attrs.get(target["id"], {}).get("date"), "label": labels[edge.dst]["id"]},
            )
        view["releases"] = sorted(out.values(), key=lambda r: (r["date"] or "", r["name"] or "", r["id"]))
        return view


def members(database: Database, group_id: str, at: str | None = None) -> dict[str, Any] | None:
    """The group's memberships; with ``at``, only those current then (unknown dates count as current)."""
    with database.engine.connect() as connection:
        view = _node(connection, group_id, "group")
        if view is None:
            return None
        m = tables.memberships.c
        query = select(tables.memberships).where(m.group_id.in_(bindparam("ids", expanding=True)))
        if at is not None:
            query = query.where((m.since.is_(None)) | (m.since <= at), (m.until.is_(None)) | (m.until > at))
        rows = connection.execute(query.order_by(m.seq, m.membership_id), {"ids": [view["id"], *view["merged"]]}).all()
        people = _nodes(connection, [row.person_id for row in rows])
        merged: dict[str, dict[str, Any]] = {}
        for row in rows:
            person = people[row.person_id]
            entry = merged.setdefault(person["id"], {**person, "roles": [], "periods": []})
            entry["roles"] += [role for role in orjson.loads(row.roles) if role not in entry["roles"]]
            period = {"since": row.since, "until": row.until, "event_id": row.event_id}
            entry["periods"].append(period)
        view["at"] = at
        view["members"] = sorted(merged.values(), key=lambda p: (p["name"] or "", p["id"]))
        return view


# (track, person) pairs of credit edges, read from the covering indexes alone (the hot loop of
# the collaborators walk: plain driver SQL, no ordering, no other column).
_CREDITS_OF_PEOPLE: Final = (
    "SELECT src, dst FROM graph_edges WHERE rel IN ('songwriter', 'producer', 'guest', 'member') AND dst IN "
)
_CREDITS_ON_TRACKS: Final = (
    "SELECT src, dst FROM graph_edges WHERE rel IN ('songwriter', 'producer', 'guest', 'member') AND src IN "
)
assert all(f"'{rel}'" in _CREDITS_OF_PEOPLE for rel in CREDIT_RELATIONS), "the SQL names every credit relation"


def _credit_pairs(connection: Connection, sql: str, ids: Sequence[str]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for chunk in chunks(ids):
        rows = connection.exec_driver_sql(driver_sql(connection, sql + in_list(len(chunk))), tuple(chunk))
        pairs += [(src, dst) for src, dst in rows]
    return pairs


def _neighbours(connection: Connection, people: Sequence[str]) -> dict[str, set[str]]:
    """For each of ``people`` (and ids merged into them), the ids sharing a track or a group with them."""
    found: dict[str, set[str]] = defaultdict(set)
    by_track: dict[str, set[str]] = defaultdict(set)
    for track, person in _credit_pairs(connection, _CREDITS_OF_PEOPLE, people):
        by_track[track].add(person)
    for track, other in _credit_pairs(connection, _CREDITS_ON_TRACKS, sorted(by_track)):
        for person in by_track[track]:
            found[person].add(other)
    m = tables.memberships.c
    query = select(m.person_id, m.group_id).where(m.person_id.in_(bindparam("ids", expanding=True)))
    by_group: dict[str, set[str]] = defaultdict(set)
    for chunk in chunks(people):
        for person, group in connection.execute(query, {"ids": chunk}):
            by_group[group].add(person)
    query = select(m.group_id, m.person_id).where(m.group_id.in_(bindparam("ids", expanding=True)))
    for chunk in chunks(sorted(by_group)):
        for group, other in connection.execute(query, {"ids": chunk}):
            for person in by_group[group]:
                found[person].add(other)
    return found


def collaborators(database: Database, person_id: str, depth: int = 2) -> dict[str, Any] | None:
    """People who share a track credit or a group with the person, then with them, up to ``depth`` hops."""
    depth = max(1, min(depth, 3))
    with database.engine.connect() as connection:
        view = _node(connection, person_id, "person")
        if view is None:
            return None
        seen = {view["id"]}
        frontier = [view["id"]]
        found: list[tuple[int, str]] = []
        for hop in range(1, depth + 1):
            ids = clusters(connection, frontier)
            neighbours = _neighbours(connection, ids)
            reached = resolve_many(connection, {other for group in neighbours.values() for other in group})
            fresh = sorted({canonical for canonical in reached.values() if canonical not in seen})
            seen.update(fresh)
            found += [(hop, canonical) for canonical in fresh]
            frontier = fresh
            if not frontier:
                break
        people = _nodes(connection, [node_id for _, node_id in found])
        view["depth"] = depth
        view["collaborators"] = sorted(
            ({**people[node_id], "hops": hop} for hop, node_id in found),
            key=lambda p: (p["hops"], p["name"] or "", p["id"]),
        )
        return view


# --- search -------------------------------------------------------------------------------------


def search(database: Database, query: str, *, limit: int = 20, kind: str | None = None) -> list[dict[str, Any]]:
    """Nodes whose name or an alternative name matches every word of ``query`` (as a prefix), best first.

    SQLite: FTS5 over the folded names; PostgreSQL: trigram similarity and substring over them.
    Accents and case do not matter on either ("beyonce" finds "Beyoncé").
    """
    folded = fold(query)
    tokens = _TOKEN.findall(folded)
    if not tokens:
        return []
    limit = max(1, min(limit, 200))
    with database.engine.connect() as connection:
        if database.is_sqlite:
            match = " AND ".join('"' + token.replace('"', '""') + '"*' for token in tokens)
            rows = connection.execute(
                text(
                    "SELECT n.node_id, n.name FROM graph_names_fts f JOIN graph_names n ON n.name_id = f.rowid "
                    "WHERE graph_names_fts MATCH :match ORDER BY f.rank, n.name_id LIMIT :limit"
                ),
                {"match": match, "limit": limit * 4},
            ).all()
        else:
            pattern = "%" + "%".join(token.replace("%", r"\%").replace("_", r"\_") for token in tokens) + "%"
            rows = connection.execute(
                text(
                    "SELECT node_id, name FROM graph_names WHERE folded LIKE :pattern OR folded % :folded "
                    "ORDER BY (folded LIKE :pattern) DESC, similarity(folded, :folded) DESC, name_id LIMIT :limit"
                ),
                {"pattern": pattern, "folded": folded, "limit": limit * 4},
            ).all()
        views = _nodes(connection, [row.node_id for row in rows])
        results: dict[str, dict[str, Any]] = {}
        for row in rows:
            target = views[row.node_id]
            if kind is not None and target["kind"] != kind:
                continue
            entry = results.setdefault(target["id"], {**target, "matched": []})
            if row.name not in entry["matched"]:
                entry["matched"].append(row.name)
        return list(results.values())[:limit]


# --- governance ---------------------------------------------------------------------------------


def claims(
    database: Database, status: str | None = "open", *, limit: int = 100, rules: Rules | None = None
) -> list[dict[str, Any]]:
    """Proposals with that status (all with None), oldest first, with live vote counts; open ones
    with ``closes_at``, the earliest log time the rules can decide them given the votes so far."""
    c, v = tables.claims.c, tables.votes.c
    query = select(tables.claims).order_by(c.seq).limit(max(1, min(limit, 1000)))
    if status is not None:
        query = query.where(c.status == status)
    with database.engine.connect() as connection:
        rows = connection.execute(query).all()
        ballots: dict[str, list[Ballot]] = defaultdict(list)
        ids = [row.claim_id for row in rows]
        for chunk in chunks(ids):
            votes = select(v.claim_id, v.voter, v.vote, v.at).where(v.claim_id.in_(bindparam("ids", expanding=True)))
            for claim_id, voter, vote, at in connection.execute(votes.order_by(v.voter), {"ids": chunk}):
                ballots[claim_id].append(Ballot(voter, vote, at))
    out: list[dict[str, Any]] = []
    for row in rows:
        counts = {"yes": 0, "no": 0, "abstain": 0}
        for ballot in ballots[row.claim_id]:
            counts[ballot.vote] += 1
        item: dict[str, Any] = {
            **orjson.loads(row.body),  # changes, sources, note; or the merge's or split's fields
            "claim_id": row.claim_id,
            "kind": row.kind,
            "author": row.author,
            "subject": {"kind": row.subject_kind, "id": row.subject_id},
            "status": row.status,
            "destructive": bool(row.destructive),
            "opened_at": row.opened_at,
            "amended_at": row.amended_at,
            "closed_at": row.closed_at,
            "votes": counts,
        }
        if row.status == "open":
            claim = Claim(
                row.claim_id, row.kind, row.author, row.opened_at, row.amended_at, bool(row.destructive), "open"
            )
            item["closes_at"] = closes_at(claim, ballots[row.claim_id], rules or Rules())
        out.append(item)
    return out


def history(database: Database, node_id: str) -> list[dict[str, Any]]:
    """Every event that touched the node (and ids merged into it), in log order, with proof links."""
    t = tables.touches.c
    with database.engine.connect() as connection:
        canonical = resolve_many(connection, [node_id])[node_id]
        members = cluster(connection, canonical)
        query = (
            select(t.seq, t.event_id, t.event_type, t.how, t.node_id)
            .where(t.node_id.in_(bindparam("ids", expanding=True)))
            .order_by(t.seq, t.node_id, t.how)
        )
        rows = connection.execute(query, {"ids": members}).all()
    out: list[dict[str, Any]] = []
    for row in rows:
        if out and out[-1]["seq"] == row.seq:
            if row.how not in out[-1]["how"]:
                out[-1]["how"].append(row.how)
            continue
        out.append(
            {
                "seq": row.seq,
                "event_id": row.event_id,
                "type": row.event_type,
                "how": [row.how],
                "node_id": row.node_id,
                "proof": f"/events/{row.event_id}/proof",
            }
        )
    return out


def reward_totals(database: Database, recipient: str | None = None) -> list[dict[str, Any]]:
    """Total rewards per contributor and unit from valid distributions."""
    r = tables.rewards.c
    query = select(r.recipient, r.unit, func.sum(r.amount), func.count()).group_by(r.recipient, r.unit)
    if recipient is not None:
        query = query.where(r.recipient == recipient)
    with database.engine.connect() as connection:
        rows = connection.execute(query.order_by(r.recipient, r.unit)).all()
    return [{"recipient": row[0], "unit": row[1], "total": int(row[2]), "distributions": int(row[3])} for row in rows]


def rejections(database: Database, event_id: str | None = None, *, limit: int = 1000) -> list[dict[str, Any]]:
    """Events (or parts of them) the projection refused, with the rule and why, in log order."""
    j = tables.rejections.c
    query = select(tables.rejections).order_by(j.seq, j.n).limit(limit)
    if event_id is not None:
        query = query.where(j.event_id == event_id)
    with database.engine.connect() as connection:
        return [{str(key): value for key, value in row._mapping.items()} for row in connection.execute(query)]
