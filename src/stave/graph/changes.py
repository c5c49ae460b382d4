"""Which fields a claim may change, per node kind, and what each change means. Pure.

A claim (ADD_CLAIM, amended by EDIT_CLAIM) lists ``{op, field, value}`` changes of one node.
Each field is one of these targets:

- ``name``: the node's primary name; ``set`` a non-empty string.
- ``altnames``: alternative names; ``add``/``remove`` one name, ``set`` a name or a list, ``unset`` all.
- ``attr``: one attribute (a date, liner notes, a coordinate); ``set`` a value, ``unset`` it.
- ``list``: a list attribute (formats, listen links); ``add``/``remove`` one item, ``set``, ``unset``.
- ``edge``: links to other nodes (labels, parent labels, cities, covers, samples); ``add``/``remove``
  one node (its id, or an object with ``<kind>_id``; ``add`` may describe a new node by name),
  ``unset`` all of them.
- ``credit``: people credited on a track (songwriters, producers, guests); ``add`` a credit in
  the bundle's shape (``{person_id?, person_name, person_roles[]}``), ``remove`` a person (id or
  ``{person_id}``) from that credit list, ``unset`` all.
- ``tracklist``: a release's tracks; ``add`` ``{track_id, disc_side, track_number}``,
  ``remove`` a track (id or ``{track_id}``).

Field names are the bundle's (``release_date``, ``label_parents``, ``listen_link`` …) plus the
short forms ``name`` and ``altnames`` for every kind. ``docs/graph.md`` has the full table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = ["FIELDS", "ChangeError", "FieldSpec", "field_spec", "reference_id", "validate_changes"]

Target = Literal["name", "altnames", "attr", "list", "edge", "credit", "tracklist"]


@dataclass(frozen=True, slots=True)
class FieldSpec:
    target: Target
    key: str = ""  # the attribute's key, or the edge's relation
    ops: frozenset[str] = frozenset({"set", "unset", "add", "remove"})
    node_kind: str = ""  # edges: the kind of node linked to
    value_type: type | tuple[type, ...] = str


@dataclass(frozen=True, slots=True)
class ChangeError:
    index: int
    rule: str
    detail: str


_SET = frozenset({"set", "unset"})
_ADD = frozenset({"add", "remove", "unset"})
_ALL = frozenset({"set", "unset", "add", "remove"})
_NUMBER = (int, float)


def _common(kind: str) -> dict[str, FieldSpec]:
    return {
        "name": FieldSpec("name", ops=frozenset({"set"})),
        f"{kind}_name": FieldSpec("name", ops=frozenset({"set"})),
        "altnames": FieldSpec("altnames", ops=_ALL),
        f"{kind}_altnames": FieldSpec("altnames", ops=_ALL),
    }


FIELDS: Final[dict[str, dict[str, FieldSpec]]] = {
    "release": {
        **_common("release"),
        "release_date": FieldSpec("attr", "date", _SET),
        "liner_notes": FieldSpec("attr", "liner_notes", _SET),
        "release_format": FieldSpec("list", "formats", _ALL),
        "labels": FieldSpec("edge", "release_label", _ADD, "label"),
        "master_release": FieldSpec("edge", "reissue_of", _ADD, "release"),
        "tracklist": FieldSpec("tracklist", "tracklist", _ADD, "track"),
    },
    "label": {
        **_common("label"),
        "label_parents": FieldSpec("edge", "label_parent", _ADD, "label"),
        "label_city": FieldSpec("edge", "label_city", _ADD, "city"),
    },
    "track": {
        **_common("track"),
        "title": FieldSpec("name", ops=frozenset({"set"})),
        "listen_link": FieldSpec("list", "listen_links", _ALL),
        "cover_song": FieldSpec("edge", "cover", _ADD, "track"),
        "sampled_songs": FieldSpec("edge", "sample", _ADD, "track"),
        "songwriters": FieldSpec("credit", "songwriter", _ADD, "person"),
        "producers": FieldSpec("credit", "producer", _ADD, "person"),
        "guests": FieldSpec("credit", "guest", _ADD, "person"),
        "groups": FieldSpec("edge", "group", _ADD, "group"),
    },
    "person": {
        **_common("person"),
        "person_city": FieldSpec("edge", "person_city", _ADD, "city"),
    },
    "group": {
        **_common("group"),
        "formed_date": FieldSpec("attr", "formed_date", _SET),
        "origin_city": FieldSpec("edge", "group_city", _ADD, "city"),
    },
    "city": {
        **_common("city"),
        "city_lat": FieldSpec("attr", "lat", _SET, value_type=_NUMBER),
        "city_long": FieldSpec("attr", "lon", _SET, value_type=_NUMBER),
    },
    "role": _common("role"),
}


def field_spec(kind: str, name: str) -> FieldSpec | None:
    return FIELDS.get(kind, {}).get(name)


def reference_id(value: Any, node_kind: str) -> str | None:
    """The node id a change value names: the string itself, or ``<kind>_id`` / ``id`` of an object."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, Mapping):
        for key in (f"{node_kind}_id", "id"):
            found = value.get(key)
            if isinstance(found, str) and found:
                return found
    return None


def _describes_node(value: Any, node_kind: str) -> bool:
    key = "title" if node_kind == "track" else "name" if node_kind in ("group",) else f"{node_kind}_name"
    return isinstance(value, Mapping) and (
        isinstance(value.get(key), str) or isinstance(value.get("name"), str) or isinstance(value.get("title"), str)
    )


def _value_error(spec: FieldSpec, op: str, value: Any) -> str | None:
    """What is wrong with ``value`` for ``op`` on a field of ``spec``, or None."""
    if op == "unset":
        return None
    target = spec.target
    if target == "name":
        return None if isinstance(value, str) and value.strip() else "expected a non-empty name"
    if target in ("altnames", "list"):
        if op == "set" and isinstance(value, list) and all(isinstance(item, str) for item in value):
            return None
        return None if isinstance(value, str) and value.strip() else "expected a string (or a list of strings for set)"
    if target == "attr":
        ok = isinstance(value, spec.value_type) and not isinstance(value, bool)
        return None if ok else f"expected a {'number' if spec.value_type is _NUMBER else 'string'}"
    if target == "tracklist" and op == "add":
        if not isinstance(value, Mapping) or not isinstance(value.get("track_id"), str):
            return "expected {track_id, disc_side, track_number}"
        for key in ("disc_side", "track_number"):
            position = value.get(key)
            if not isinstance(position, int) or isinstance(position, bool) or position < 1:
                return f"expected {key} a positive integer"
        return None
    if target == "credit" and op == "add":
        ok = isinstance(value, Mapping) and (
            isinstance(value.get("person_id"), str) or isinstance(value.get("person_name"), str)
        )
        return None if ok else "expected a credit {person_id?, person_name, person_roles[]}"
    if op == "add" and target == "edge" and _describes_node(value, spec.node_kind):
        return None
    if reference_id(value, spec.node_kind) is None:
        return f"expected a {spec.node_kind} id or an object with {spec.node_kind}_id"
    return None


def validate_changes(kind: str, changes: Sequence[Mapping[str, Any]]) -> list[ChangeError]:
    """Every change outside the whitelist or with a value of the wrong shape; empty when all are fine."""
    errors: list[ChangeError] = []
    if kind not in FIELDS:
        return [ChangeError(0, "field-not-allowed", f"claims cannot change nodes of kind {kind!r}")]
    for index, change in enumerate(changes):
        name, op, value = change.get("field"), change.get("op"), change.get("value")
        spec = field_spec(kind, name) if isinstance(name, str) else None
        if spec is None:
            allowed = ", ".join(sorted(FIELDS[kind]))
            errors.append(
                ChangeError(index, "field-not-allowed", f"{kind} has no changeable field {name!r}; {allowed}")
            )
            continue
        if op not in spec.ops:
            ops = ", ".join(sorted(spec.ops))
            errors.append(ChangeError(index, "op-not-allowed", f"{kind}.{name} takes {ops}, not {op!r}"))
            continue
        problem = _value_error(spec, str(op), value)
        if problem is not None:
            errors.append(ChangeError(index, "bad-value", f"{kind}.{name} {op}: {problem}"))
    return errors
