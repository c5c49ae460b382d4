"""Governance in the projection: claims, amendments, withdrawals, votes, likes, discussion,
finalisation, rewards, merges and splits.

Every decision is :mod:`stave.graph.rules`'s (pure, time as a parameter); this module loads the
state those functions need from the tables, asks them at the entry's **log time**, and stores the
answer. Whatever the projection refuses is recorded in ``graph_rejections`` with the rule and
why; a refused event changes nothing else. An accepted claim changes the graph here, once, at
the FINALIZE that closes it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import orjson
from sqlalchemy import and_, bindparam, delete, insert, select, update

from stave.graph import rules, tables
from stave.graph.aliases import cluster, resolve
from stave.graph.batch import Applied, Batch, canonical_json, name_rows_of
from stave.graph.changes import field_spec, reference_id, validate_changes
from stave.graph.extract import Extract, NodeRow, extract_person_credit
from stave.graph.ids import derived_id
from stave.graph.names import name_list

__all__ = ["apply"]

_C = tables.claims.c
_CLAIM = select(tables.claims).where(_C.claim_id == bindparam("claim_id"))
# One live vote per voter and claim: a later VOTE replaces the earlier one (same SQL on both databases).
_UPSERT_VOTE = (
    'INSERT INTO graph_votes (claim_id, voter, vote, "at", event_id, seq) VALUES ({m}, {m}, {m}, {m}, {m}, {m}) '
    'ON CONFLICT (claim_id, voter) DO UPDATE SET vote = excluded.vote, "at" = excluded."at", '
    "event_id = excluded.event_id, seq = excluded.seq"
)


def apply(batch: Batch, entry: Applied) -> None:
    handler = _HANDLERS.get(entry.type)
    if handler is None:
        batch.reject(entry, "unknown-type", f"the graph does not project events of type {entry.type}")
        return
    if entry.type == "FINALIZE":
        batch.flush()  # accepting changes the graph: every earlier event's rows must be in place
    handler(batch, entry)


# --- state --------------------------------------------------------------------------------------


def _claim(batch: Batch, claim_id: Any) -> tuple[rules.Claim, Any] | None:
    if not isinstance(claim_id, str):
        return None
    row = batch.connection.execute(_CLAIM, {"claim_id": claim_id}).first()
    if row is None:
        return None
    claim = rules.Claim(
        claim_id=row.claim_id,
        kind=row.kind,
        author=row.author,
        opened_at=row.opened_at,
        amended_at=row.amended_at,
        destructive=bool(row.destructive),
        status=row.status,
    )
    return claim, row


def _ballots(batch: Batch, claim_id: str) -> list[rules.Ballot]:
    v = tables.votes.c
    query = select(v.voter, v.vote, v.at).where(v.claim_id == claim_id).order_by(v.voter)
    return [rules.Ballot(voter, vote, at) for voter, vote, at in batch.connection.execute(query)]


def _known_claim(batch: Batch, entry: Applied) -> tuple[rules.Claim, Any] | None:
    claim_id = entry.body.get("claim_id")
    found = _claim(batch, claim_id)
    if found is None:
        decision = rules.unknown_claim(str(claim_id))
        batch.reject(entry, decision.rule or "unknown-claim", decision.detail or "")
    return found


def _refused(batch: Batch, entry: Applied, decision: rules.Decision) -> bool:
    if decision.ok:
        return False
    batch.reject(entry, decision.rule or "refused", decision.detail or "")
    return True


# --- proposals ----------------------------------------------------------------------------------


def _open_claim(
    batch: Batch, entry: Applied, kind: rules.ClaimKind, subject_kind: str, subject_id: str, body: Mapping[str, Any]
) -> None:
    changes = body.get("changes") if kind == "claim" else []
    destructive = rules.is_destructive(kind, changes if isinstance(changes, list) else [])
    batch.connection.execute(
        insert(tables.claims).values(
            claim_id=entry.event_id,
            kind=kind,
            author=entry.author,
            subject_kind=subject_kind,
            subject_id=subject_id,
            body=canonical_json(dict(body)),
            opened_at=entry.log_time,
            amended_at=None,
            destructive=int(destructive),
            status="open",
            seq=entry.seq,
            closed_by=None,
            closed_at=None,
        )
    )


def _check_nodes(batch: Batch, entry: Applied, kind: str, ids: Sequence[str]) -> bool:
    existing = batch.known_kinds(list(ids))
    for node_id in ids:
        if node_id not in existing:
            batch.reject(entry, "unknown-node", f"no {kind} with id {node_id} precedes this event")
            return False
        if existing[node_id] != kind:
            batch.reject(entry, "kind-mismatch", f"node {node_id} is a {existing[node_id]}, not a {kind}")
            return False
    return True


def _add_claim(batch: Batch, entry: Applied) -> None:
    subject = entry.body.get("subject")
    if not isinstance(subject, Mapping) or not isinstance(subject.get("id"), str):
        batch.reject(entry, "malformed", "ADD_CLAIM needs subject {kind, id}")
        return
    kind, node_id = str(subject.get("kind")), subject["id"]
    if _check_nodes(batch, entry, kind, [node_id]):
        _open_claim(batch, entry, "claim", kind, node_id, entry.body)
        batch.touch(node_id, entry, "claim")


def _merge_node(batch: Batch, entry: Applied) -> None:
    kind, source, target = str(entry.body.get("kind")), entry.body.get("source_id"), entry.body.get("target_id")
    if not isinstance(source, str) or not isinstance(target, str):
        batch.reject(entry, "malformed", "MERGE_NODE needs source_id and target_id")
        return
    if _check_nodes(batch, entry, kind, [source, target]):
        _open_claim(batch, entry, "merge", kind, source, entry.body)
        batch.touch(source, entry, "merge_proposed")
        batch.touch(target, entry, "merge_proposed")


def _split_node(batch: Batch, entry: Applied) -> None:
    kind, node_id = str(entry.body.get("kind")), entry.body.get("node_id")
    if not isinstance(node_id, str):
        batch.reject(entry, "malformed", "SPLIT_NODE needs node_id")
        return
    if _check_nodes(batch, entry, kind, [node_id]):
        _open_claim(batch, entry, "split", kind, node_id, entry.body)
        batch.touch(node_id, entry, "split_proposed")


def _edit_claim(batch: Batch, entry: Applied) -> None:
    found = _known_claim(batch, entry)
    if found is None:
        return
    claim, row = found
    if _refused(batch, entry, rules.check_amend(claim, entry.author, entry.log_time, batch.rules)):
        return
    body = dict(orjson.loads(row.body))
    for key in ("changes", "sources", "note"):
        if key in entry.body:
            body[key] = entry.body[key]
        elif key != "changes":
            body.pop(key, None)
    changes = body.get("changes")
    destructive = rules.is_destructive("claim", changes if isinstance(changes, list) else [])
    batch.connection.execute(
        update(tables.claims)
        .where(_C.claim_id == claim.claim_id)
        .values(body=canonical_json(body), amended_at=entry.log_time, destructive=int(destructive))
    )
    # Votes restart on amendment: the ballots were cast on changes that are gone.
    batch.connection.execute(delete(tables.votes).where(tables.votes.c.claim_id == claim.claim_id))
    batch.touch(row.subject_id, entry, "claim_amended")


def _delete_claim(batch: Batch, entry: Applied) -> None:
    found = _known_claim(batch, entry)
    if found is None:
        return
    claim, row = found
    if _refused(batch, entry, rules.check_withdraw(claim, entry.author, entry.log_time, batch.rules)):
        return
    batch.connection.execute(
        update(tables.claims)
        .where(_C.claim_id == claim.claim_id)
        .values(status="withdrawn", closed_by=entry.event_id, closed_at=entry.log_time)
    )
    batch.touch(row.subject_id, entry, "claim_withdrawn")


# --- votes, likes, discussion -------------------------------------------------------------------


def _vote(batch: Batch, entry: Applied) -> None:
    found = _known_claim(batch, entry)
    if found is None:
        return
    claim, _ = found
    if _refused(batch, entry, rules.check_vote(claim, entry.author, entry.log_time, batch.rules)):
        return
    value = entry.body.get("vote")
    if value not in ("yes", "no", "abstain"):
        batch.reject(entry, "malformed", f"vote must be yes, no or abstain, got {value!r}")
        return
    marker = "?" if batch.connection.dialect.paramstyle == "qmark" else "%s"
    batch.connection.exec_driver_sql(
        _UPSERT_VOTE.format(m=marker),
        (claim.claim_id, entry.author, value, entry.log_time, entry.event_id, entry.seq),
    )


def _like(batch: Batch, entry: Applied) -> None:
    target = entry.body.get("target")
    if not isinstance(target, str):
        batch.reject(entry, "malformed", "LIKE needs a target event id")
        return
    statement = batch.database.insert(tables.likes).values(
        target=target, author=entry.author, event_id=entry.event_id, seq=entry.seq
    )
    batch.connection.execute(statement.on_conflict_do_nothing())


def _discuss(batch: Batch, entry: Applied) -> None:
    subject = entry.body.get("subject")
    claim_id = entry.body.get("claim_id")
    batch.connection.execute(
        insert(tables.comments).values(
            event_id=entry.event_id,
            claim_id=claim_id if isinstance(claim_id, str) else None,
            subject_id=subject.get("id") if isinstance(subject, Mapping) else None,
            parent_id=entry.parents[0] if entry.parents else None,
            author=entry.author,
            text=str(entry.body.get("text", "")),
            seq=entry.seq,
        )
    )


# --- finalisation -------------------------------------------------------------------------------


def _finalize(batch: Batch, entry: Applied) -> None:
    found = _known_claim(batch, entry)
    stated = entry.body.get("tally")
    counts: dict[str, int] = {}
    for key in ("yes", "no", "abstain"):
        count = stated.get(key) if isinstance(stated, Mapping) else None
        counts[key] = count if isinstance(count, int) and not isinstance(count, bool) else -1
    outcome = str(entry.body.get("outcome"))
    record = {
        "event_id": entry.event_id,
        "claim_id": str(entry.body.get("claim_id")),
        "finalizer": entry.author,
        "outcome": outcome,
        **counts,
        "seq": entry.seq,
    }
    if found is None:
        batch.connection.execute(
            insert(tables.finalizations).values(**record, valid=0, rule="unknown-claim", detail="no such claim")
        )
        return
    claim, row = found
    ballots = _ballots(batch, claim.claim_id)
    decision = rules.check_finalize(
        claim, ballots, entry.author, entry.log_time, outcome, rules.Tally(**counts), batch.rules
    )
    batch.connection.execute(
        insert(tables.finalizations).values(
            **record, valid=int(decision.ok), rule=decision.rule, detail=decision.detail
        )
    )
    if _refused(batch, entry, decision):
        return
    batch.connection.execute(
        update(tables.claims)
        .where(_C.claim_id == claim.claim_id)
        .values(status=outcome, closed_by=entry.event_id, closed_at=entry.log_time)
    )
    batch.touch(row.subject_id, entry, f"claim_{outcome}")
    if outcome == "accepted":
        _ACCEPT[claim.kind](batch, entry, row)
        batch.flush()


def _accept_claim(batch: Batch, entry: Applied, row: Any) -> None:
    body = orjson.loads(row.body)
    changes = [c for c in body.get("changes") or [] if isinstance(c, Mapping)]
    errors = validate_changes(row.subject_kind, changes)
    for error in errors:
        batch.reject(entry, error.rule, f"claim {row.claim_id} changes[{error.index}]: {error.detail}")
    if errors:
        return
    _Node(batch, entry, row).apply(changes)


def _accept_merge(batch: Batch, entry: Applied, row: Any) -> None:
    body = orjson.loads(row.body)
    source, target = body["source_id"], body["target_id"]
    connection = batch.connection
    if connection.execute(select(tables.alias.c.target_id).where(tables.alias.c.node_id == source)).first():
        batch.reject(entry, "merge-conflict", f"{source} is already merged into another node; split it first")
        return
    if resolve(connection, target) == source:
        batch.reject(entry, "merge-conflict", f"{target} resolves to {source}: the merge would make a cycle")
        return
    connection.execute(insert(tables.alias).values(node_id=source, target_id=target, merge_id=row.claim_id))
    batch.touch(source, entry, "merged_into")
    batch.touch(target, entry, "merged_from")


def _accept_split(batch: Batch, entry: Applied, row: Any) -> None:
    body = orjson.loads(row.body)
    node_id, merge_id = row.subject_id, body.get("merge_id")
    connection = batch.connection
    a = tables.alias.c
    if isinstance(merge_id, str):
        merged = connection.execute(select(a.node_id, a.target_id).where(a.merge_id == merge_id)).first()
        if merged is None or node_id not in (merged.node_id, merged.target_id):
            batch.reject(entry, "split-nothing", f"merge {merge_id} does not stand on node {node_id}")
            return
        connection.execute(delete(tables.alias).where(a.merge_id == merge_id))
        batch.touch(merged.node_id, entry, "unmerged")
        batch.touch(merged.target_id, entry, "unmerged")
    moved = [event_id for event_id in body.get("move_credits") or [] if isinstance(event_id, str)]
    if moved:
        _move_credits(batch, entry, row, moved)


def _move_credits(batch: Batch, entry: Applied, row: Any, moved: list[str]) -> None:
    """Give the credits some events made to a new node (a person credited wrongly, say)."""
    body = orjson.loads(row.body)
    node_id = row.subject_id
    old = batch.connection.execute(select(tables.nodes.c.name).where(tables.nodes.c.id == node_id)).scalar()
    new_id = derived_id(row.subject_kind, row.claim_id, "$.body.new_name")
    name = body.get("new_name") if isinstance(body.get("new_name"), str) else old
    batch.nodes.setdefault(new_id, (NodeRow(new_id, row.subject_kind, name), row.claim_id))
    batch.flush()
    e, m = tables.edges.c, tables.memberships.c
    ids: Any = bindparam("moved", expanding=True)
    connection = batch.connection
    connection.execute(
        update(tables.edges).where(e.dst == node_id, e.event_id.in_(ids)).values(dst=new_id), {"moved": moved}
    )
    connection.execute(
        update(tables.edges).where(e.src == node_id, e.event_id.in_(ids)).values(src=new_id), {"moved": moved}
    )
    for column in ("person_id", "group_id"):
        connection.execute(
            update(tables.memberships).where(and_(m[column] == node_id, m.event_id.in_(ids))).values({column: new_id}),
            {"moved": moved},
        )
    batch.touch(node_id, entry, "split_from")
    batch.touch(new_id, entry, "split_into")


_ACCEPT: Final[dict[str, Callable[[Batch, Applied, Any], None]]] = {
    "claim": _accept_claim,
    "merge": _accept_merge,
    "split": _accept_split,
}


# --- rewards ------------------------------------------------------------------------------------


def _distribute_rewards(batch: Batch, entry: Applied) -> None:
    allocations = [a for a in entry.body.get("allocations") or [] if isinstance(a, Mapping)]
    claim_ids = sorted({c for a in allocations for c in a.get("claim_ids") or [] if isinstance(c, str)})
    connection = batch.connection
    accepted: dict[str, str] = {}
    already: dict[str, set[str]] = {}
    if claim_ids:
        query = select(_C.claim_id, _C.author).where(
            _C.claim_id.in_(bindparam("ids", expanding=True)), _C.status == "accepted"
        )
        accepted = dict(connection.execute(query, {"ids": claim_ids}).all())
        r = tables.reward_claims.c
        paid = select(r.claim_id, r.recipient).where(r.claim_id.in_(bindparam("ids", expanding=True)))
        for claim_id, recipient in connection.execute(paid, {"ids": claim_ids}):
            already.setdefault(claim_id, set()).add(recipient)
    pool = entry.body.get("pool")
    decision = rules.check_rewards(
        allocations, pool if isinstance(pool, int) else -1, accepted, already, entry.author, batch.rules
    )
    if _refused(batch, entry, decision):
        return
    connection.execute(
        insert(tables.rewards),
        [
            {
                "event_id": entry.event_id,
                "recipient": a["recipient"],
                "unit": str(entry.body.get("unit")),
                "amount": a["amount"],
                "claim_ids": canonical_json(list(a["claim_ids"])),
                "seq": entry.seq,
            }
            for a in allocations
        ],
    )
    connection.execute(
        insert(tables.reward_claims),
        [
            {"claim_id": claim_id, "recipient": a["recipient"], "event_id": entry.event_id}
            for a in allocations
            for claim_id in a["claim_ids"]
        ],
    )


_HANDLERS: Final[dict[str, Callable[[Batch, Applied], None]]] = {
    "ADD_CLAIM": _add_claim,
    "EDIT_CLAIM": _edit_claim,
    "DELETE_CLAIM": _delete_claim,
    "VOTE": _vote,
    "LIKE": _like,
    "DISCUSS": _discuss,
    "FINALIZE": _finalize,
    "DISTRIBUTE_REWARDS": _distribute_rewards,
    "MERGE_NODE": _merge_node,
    "SPLIT_NODE": _split_node,
}


# --- applying a claim's changes to its node -----------------------------------------------------


class _Node:
    """The subject of an accepted claim, changed field by field."""

    def __init__(self, batch: Batch, entry: Applied, row: Any) -> None:
        self.batch = batch
        self.entry = entry
        self.claim_id: str = row.claim_id
        self.kind: str = row.subject_kind
        connection = batch.connection
        # A claim on a merged duplicate changes the node it resolves to, and its removals reach
        # edges stated with any id of that node's cluster.
        self.node_id: str = resolve(connection, row.subject_id)
        self.cluster: list[str] = cluster(connection, self.node_id)
        node = connection.execute(select(tables.nodes).where(tables.nodes.c.id == self.node_id)).one()
        self.name: str | None = node.name
        self.attrs: dict[str, Any] = orjson.loads(node.attrs)
        n = tables.names.c
        self.altnames: list[str] = list(
            connection.execute(
                select(n.name).where(n.node_id == self.node_id, n.is_primary == 0).order_by(n.name_id)
            ).scalars()
        )
        self.names_changed = False

    def apply(self, changes: Sequence[Mapping[str, Any]]) -> None:
        for index, change in enumerate(changes):
            spec = field_spec(self.kind, str(change.get("field")))
            assert spec is not None  # validated before
            op, value = str(change.get("op")), change.get("value")
            if spec.target in ("name", "altnames"):
                self.names_changed = True
                self._names(spec.target, op, value)
            elif spec.target in ("attr", "list"):
                self._attr(spec.target, spec.key, op, value)
            else:
                self._edge(index, spec.target, spec.key, spec.node_kind, op, value)
        self._write()
        self.batch.flush()

    def _names(self, target: str, op: str, value: Any) -> None:
        if target == "name":
            self.name = name_list(value)[0]
        elif op == "add":
            self.altnames += [name for name in name_list(value) if name not in self.altnames]
        elif op == "remove":
            self.altnames = [name for name in self.altnames if name not in name_list(value)]
        else:
            self.altnames = name_list(value) if op == "set" else []

    def _attr(self, target: str, key: str, op: str, value: Any) -> None:
        if op == "unset":
            self.attrs.pop(key, None)
        elif target == "attr" or op == "set":
            self.attrs[key] = name_list(value) if target == "list" else value
        else:
            items = list(self.attrs.get(key) or [])
            if op == "add" and value not in items:
                items.append(value.strip())
            elif op == "remove":
                items = [item for item in items if item != value.strip()]
            self.attrs[key] = items
            if not items:
                self.attrs.pop(key)

    def _edge(self, index: int, target: str, rel: str, node_kind: str, op: str, value: Any) -> None:
        e = tables.edges.c
        connection = self.batch.connection
        path = f"$.body.changes[{index}].value"
        if op == "unset":
            connection.execute(delete(tables.edges).where(e.src.in_(self.cluster), e.rel == rel))
            return
        if op == "remove":
            key = "person_id" if target == "credit" else f"{node_kind}_id"
            other = reference_id(value, node_kind) or reference_id(value, key.removesuffix("_id"))
            others = cluster(connection, resolve(connection, other)) if other else []
            connection.execute(delete(tables.edges).where(e.src.in_(self.cluster), e.rel == rel, e.dst.in_(others)))
            return
        entry = dataclasses.replace(self.entry, event_id=self.claim_id, type="ADD_CLAIM")  # the claim made them
        out = Extract(self.claim_id)
        if target == "credit":
            extract_person_credit(out, value, path, self.node_id, rel)
        else:
            other = reference_id(value, node_kind)
            if other is None:  # a new node described by name
                name = value.get("title") or value.get("name") or value.get(f"{node_kind}_name")
                other = out.node(node_kind, None, path, name)
            elif not self.batch.existing_nodes([other]) and other not in self.batch.nodes:
                out.node(node_kind, other, path, None)
            side = value.get("disc_side") if isinstance(value, Mapping) else None
            number = value.get("track_number") if isinstance(value, Mapping) else None
            out.edge(path, self.node_id, rel, other, other, side=side, number=number)
            out.touch(other, rel)
        self.batch.add(out, entry)
        self.batch.flush()  # a later change of this claim may remove what this one added

    def _write(self) -> None:
        connection = self.batch.connection
        connection.execute(
            update(tables.nodes)
            .where(tables.nodes.c.id == self.node_id)
            .values(name=self.name, attrs=canonical_json(self.attrs))
        )
        if self.names_changed:
            connection.execute(delete(tables.names).where(tables.names.c.node_id == self.node_id))
            rows = name_rows_of(self.node_id, self.name, self.altnames)
            if rows:
                connection.execute(insert(tables.names), rows)
        self.batch.touch(self.node_id, self.entry, "changed")
