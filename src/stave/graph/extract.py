"""Turning a content event into graph rows. Pure: a body in, rows out.

Seed 000's CREATE_RELEASE_BUNDLE is the canonical shape; CREATE_GROUP and ADD_MEMBER are seed
001's. Every object that describes a node becomes a :class:`NodeRow` (its id given, or derived
from the event id and its JSONPath, :func:`stave.graph.ids.derived_id`), every relation an
:class:`EdgeRow` whose id is derived the same way, every membership a :class:`MembershipRow`.
Which rows take effect (a node keeps the first name seen) is the projector's business.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stave.graph.ids import derived_id, edge_id
from stave.graph.names import name_list

__all__ = [
    "EdgeRow",
    "Extract",
    "MembershipRow",
    "NodeRow",
    "extract_add_member",
    "extract_create_group",
    "extract_person_credit",
    "extract_release_bundle",
]


@dataclass(frozen=True, slots=True)
class NodeRow:
    id: str
    kind: str
    name: str | None
    altnames: tuple[str, ...] = ()
    attrs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EdgeRow:
    edge_id: str
    src: str
    rel: str
    dst: str
    role_id: str | None = None
    group_id: str | None = None
    side: int | None = None
    number: int | None = None


@dataclass(frozen=True, slots=True)
class MembershipRow:
    membership_id: str
    group_id: str
    person_id: str
    roles: tuple[str, ...]
    since: str | None
    until: str | None
    ended: bool = False  # ended by the event that states it (known only as having left)


@dataclass
class Extract:
    """Rows an event states, in document order; ``touches`` are (node id, how) pairs, each once."""

    event_id: str
    nodes: list[NodeRow] = field(default_factory=list)
    edges: list[EdgeRow] = field(default_factory=list)
    memberships: list[MembershipRow] = field(default_factory=list)
    touches: dict[tuple[str, str], None] = field(default_factory=dict)  # an ordered set
    _stated: set[str] = field(default_factory=set)
    _membership_index: dict[str, int] = field(default_factory=dict)

    def node(self, kind: str, given: Any, path: str, name: Any, altnames: Any = None, **attrs: Any) -> str:
        node_id = given if isinstance(given, str) and given else derived_id(kind, self.event_id, path)
        if node_id in self._stated:  # named again in the same event: the first statement wins anyway
            return node_id
        self._stated.add(node_id)
        names = name_list(name)
        clean = {key: value for key, value in attrs.items() if value not in (None, "", [])}
        self.nodes.append(NodeRow(node_id, kind, names[0] if names else None, tuple(name_list(altnames)), clean))
        return node_id

    def edge(self, path: str, src: str, rel: str, dst: str, discriminator: str = "", **extra: Any) -> None:
        self.edges.append(EdgeRow(edge_id(self.event_id, path, rel, discriminator), src, rel, dst, **extra))

    def touch(self, node_id: str, how: str) -> None:
        self.touches[node_id, how] = None


def _objects(value: Any) -> list[tuple[int, Mapping[str, Any]]]:
    """A list of objects (or one object) with their indexes; anything else is none."""
    if isinstance(value, Mapping):
        return [(-1, value)]
    if isinstance(value, list):
        return [(index, item) for index, item in enumerate(value) if isinstance(item, Mapping)]
    return []


def _at(path: str, index: int) -> str:
    return path if index < 0 else f"{path}[{index}]"


def _city(out: Extract, city: Mapping[str, Any], path: str, name_key: str, lat_key: str, lon_key: str) -> str:
    city_id = out.node(
        "city",
        city.get("city_id"),
        path,
        city.get(name_key),
        lat=_number(city.get(lat_key)),
        lon=_number(city.get(lon_key)),
    )
    out.touch(city_id, "city")
    return city_id


def _number(value: Any) -> float | int | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _roles(out: Extract, roles: Any, path: str) -> list[tuple[str, str | None]]:
    """(role id, role name) of each role object."""
    found: list[tuple[str, str | None]] = []
    for index, role in _objects(roles):
        role_path = _at(f"{path}.person_roles", index)
        role_id = out.node("role", role.get("role_id"), role_path, role.get("role_name"))
        out.touch(role_id, "role")
        names = name_list(role.get("role_name"))
        found.append((role_id, names[0] if names else None))
    return found


def extract_person_credit(
    out: Extract, credit: Mapping[str, Any], path: str, track_id: str, rel: str, group_id: str | None = None
) -> tuple[str, list[str]]:
    """A person credited on a track (songwriter, producer, guest, member of a group)."""
    person_id = out.node(
        "person", credit.get("person_id"), path, credit.get("person_name"), credit.get("person_altnames")
    )
    out.touch(person_id, rel)
    for index, city in _objects(credit.get("person_city")):
        city_id = _city(out, city, _at(f"{path}.person_city", index), "city_name", "city_lat", "city_long")
        out.edge(_at(f"{path}.person_city", index), person_id, "person_city", city_id)
    roles = _roles(out, credit.get("person_roles"), path)
    if not roles:
        out.edge(path, track_id, rel, person_id, group_id=group_id)
    for role_id, _ in roles:
        out.edge(path, track_id, rel, person_id, role_id, role_id=role_id, group_id=group_id)
    return person_id, [name for _, name in roles if name]


def extract_release_bundle(event_id: str, body: Mapping[str, Any]) -> Extract:
    out = Extract(event_id)
    release = body.get("release")
    if not isinstance(release, Mapping):
        return out
    path = "$.body.release"
    master = release.get("master_release")
    is_master = master[0] if isinstance(master, list) and len(master) == 2 and isinstance(master[0], bool) else None
    release_id = out.node(
        "release",
        release.get("release_id"),
        path,
        release.get("release_name"),
        release.get("release_altnames"),
        date=release.get("release_date"),
        formats=name_list(release.get("release_format")),
        liner_notes=release.get("liner_notes") if isinstance(release.get("liner_notes"), str) else None,
        master=is_master,
    )
    out.touch(release_id, "release")
    if is_master is False and isinstance(master, list) and isinstance(master[1], str):
        master_id = out.node("release", master[1], f"{path}.master_release[1]", None)
        out.edge(f"{path}.master_release", release_id, "reissue_of", master_id)
        out.touch(master_id, "master_of")
    for index, label in _objects(release.get("labels")):
        _label(out, label, _at(f"{path}.labels", index), release_id)
    track_ids = [_track(out, track, _at(f"{path}.tracks", index)) for index, track in _objects(release.get("tracks"))]
    listed: set[str] = set()
    for index, entry in _objects(body.get("tracklist")):
        entry_path = _at("$.body.tracklist", index)
        track_index = entry.get("track_index")
        if isinstance(track_index, int) and 0 <= track_index < len(track_ids):
            track_id = track_ids[track_index]
        elif isinstance(entry.get("track_id"), str):
            track_id = out.node("track", entry["track_id"], entry_path, None)
        else:
            continue
        listed.add(track_id)
        side, number = entry.get("disc_side"), entry.get("track_number")
        out.edge(entry_path, release_id, "tracklist", track_id, side=side, number=number)
        out.touch(track_id, "tracklist")
    for index, track_id in enumerate(track_ids):
        if track_id not in listed:  # on the release, position not given
            out.edge(_at(f"{path}.tracks", index), release_id, "tracklist", track_id)
    return out


def _label(out: Extract, label: Mapping[str, Any], path: str, release_id: str) -> None:
    label_id = out.node("label", label.get("label_id"), path, label.get("label_name"), label.get("label_altnames"))
    out.touch(label_id, "label")
    out.edge(path, release_id, "release_label", label_id)
    parents = label.get("label_parents")
    parent_ids = [parents] if isinstance(parents, str) and parents else parents if isinstance(parents, list) else []
    for index, parent in enumerate(parent_ids):
        if isinstance(parent, str) and parent:
            parent_path = f"{path}.label_parents[{index}]"
            parent_id = out.node("label", parent, parent_path, None)
            out.edge(parent_path, label_id, "label_parent", parent_id)
            out.touch(parent_id, "label_parent")
    for index, city in _objects(label.get("label_city")):
        city_path = _at(f"{path}.label_city", index)
        out.edge(city_path, label_id, "label_city", _city(out, city, city_path, "city_name", "city_lat", "city_long"))


_CREDITS = (("songwriters", "songwriter"), ("producers", "producer"), ("guests", "guest"))
_SONG_REFERENCES = (("cover_song", "cover"), ("sampled_songs", "sample"))


def _track(out: Extract, track: Mapping[str, Any], path: str) -> str:
    track_id = out.node(
        "track", track.get("track_id"), path, track.get("title"), listen_links=name_list(track.get("listen_link"))
    )
    out.touch(track_id, "track")
    for key, rel in _SONG_REFERENCES:
        for index, reference in _objects(track.get(key)):
            reference_path = _at(f"{path}.{key}", index)
            song_id = out.node(
                "track",
                reference.get("track_id"),
                reference_path,
                reference.get("title"),
                artist_name=reference.get("artist_name"),
                release_name=reference.get("release_name"),
            )
            out.edge(reference_path, track_id, rel, song_id)
            out.touch(song_id, f"{rel}d_by")
    for key, rel in _CREDITS:
        for index, credit in _objects(track.get(key)):
            extract_person_credit(out, credit, _at(f"{path}.{key}", index), track_id, rel)
    for index, group in _objects(track.get("groups")):
        group_path = _at(f"{path}.groups", index)
        group_id = out.node(
            "group", group.get("group_id"), group_path, group.get("group_name"), group.get("group_altnames")
        )
        out.touch(group_id, "group")
        out.edge(group_path, track_id, "group", group_id)
        for member_index, member in _objects(group.get("members")):
            member_path = _at(f"{group_path}.members", member_index)
            person_id, roles = extract_person_credit(out, member, member_path, track_id, "member", group_id)
            _bundle_membership(out, group_id, person_id, roles)
    return track_id


def _bundle_membership(out: Extract, group_id: str, person_id: str, roles: list[str]) -> None:
    """One membership per group and person per bundle (dates unknown), roles from every track."""
    key = f"{group_id}\n{person_id}"
    index = out._membership_index.get(key)
    if index is not None:
        row = out.memberships[index]
        merged = row.roles + tuple(role for role in roles if role not in row.roles)
        out.memberships[index] = MembershipRow(row.membership_id, group_id, person_id, merged, None, None)
        return
    out._membership_index[key] = len(out.memberships)
    membership_id = edge_id(out.event_id, "", "membership", key)
    out.memberships.append(MembershipRow(membership_id, group_id, person_id, tuple(dict.fromkeys(roles)), None, None))


def _member_roles(member: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(name_list([member.get("role"), *(member.get("roles") or [])]))


def extract_create_group(event_id: str, body: Mapping[str, Any]) -> Extract:
    out = Extract(event_id)
    group = body.get("group")
    if not isinstance(group, Mapping):
        return out
    path = "$.body.group"
    formed = group.get("formed_date") if isinstance(group.get("formed_date"), str) else None
    group_id = out.node(
        "group", group.get("group_id"), path, group.get("name"), group.get("altnames"), formed_date=formed
    )
    out.touch(group_id, "group")
    for index, city in _objects(group.get("origin_city")):
        city_path = _at(f"{path}.origin_city", index)
        out.edge(city_path, group_id, "group_city", _city(out, city, city_path, "name", "lat", "lon"))
    for index, member in _objects(body.get("founding_members")):
        member_path = _at("$.body.founding_members", index)
        person_id = out.node("person", member.get("person_id"), member_path, member.get("name"))
        out.touch(person_id, "member")
        out.memberships.append(
            MembershipRow(
                edge_id(event_id, member_path, "membership"), group_id, person_id, _member_roles(member), formed, None
            )
        )
    return out


def extract_add_member(event_id: str, body: Mapping[str, Any]) -> Extract:
    out = Extract(event_id)
    group_id = out.node("group", body.get("group_id"), "$.body.group_id", None)
    out.touch(group_id, "group")
    member = body.get("member")
    if not isinstance(member, Mapping):
        return out
    person_id = out.node("person", member.get("person_id"), "$.body.member", member.get("name"))
    out.touch(person_id, "member")
    joined = body.get("joined_date") if isinstance(body.get("joined_date"), str) else None
    out.memberships.append(
        MembershipRow(
            edge_id(event_id, "$.body.member", "membership"), group_id, person_id, _member_roles(member), joined, None
        )
    )
    return out
