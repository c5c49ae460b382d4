"""Schemas of the event envelope and of every event body. Pure.

The shapes follow the seeds: CREATE_RELEASE_BUNDLE is seed 000's canonical example (field names,
nesting, and its quirks: ``*_altnames`` and ``label_parents`` may be a string or a list),
CREATE_GROUP is seed 001's. The bodies the seeds only name (claims, votes, finalisation,
rewards, merges) are designed for a MusicBrainz-like edit-and-vote process; ``docs/events.md``
documents each with a full example.

Validation rejects what breaks a schema and names the JSONPath and the rule. Fields a schema
does not know are allowed and kept: validation never rewrites the event, whose signed bytes
are the truth. Types are checked by msgspec (compiled, so a 10 KB bundle costs microseconds);
rules that span fields are checked afterwards by :func:`_check_rules`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Final, Literal, TypeAlias, Union

import msgspec
from msgspec import UNSET, Meta, UnsetType

from stave.errors import SchemaError
from stave.event.strictjson import MAX_SAFE_INTEGER
from stave.event.types import EventType

__all__ = [
    "EVENT_ID_PATTERN",
    "AnyEvent",
    "EventEnvelope",
    "NodeKind",
    "validate_event",
]

EVENT_ID_PATTERN: Final = "^[0-9a-f]{64}$"

_DATE_PATTERN: Final = r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$"
_LINK_PATTERN: Final = r"^[a-z][a-z0-9+.-]*://\S+$"
_PUBLIC_KEY_PATTERN: Final = r"^(PUB_K1_|EOS)[1-9A-HJ-NP-Za-km-z]{40,60}$"
_SIGNATURE_PATTERN: Final = r"^SIG_K1_[1-9A-HJ-NP-Za-km-z]{80,110}$"
_FIELD_PATTERN: Final = r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$"
_UNIT_PATTERN: Final = r"^[A-Za-z][A-Za-z0-9_.-]{0,31}$"
# How each pattern is named in error messages (msgspec would print the regex itself).
_PATTERN_RULES: Final = {
    EVENT_ID_PATTERN: "an event id (64 lowercase hex characters)",
    _DATE_PATTERN: "a date YYYY, YYYY-MM or YYYY-MM-DD",
    _LINK_PATTERN: "a link with a scheme, like https://…",
    _PUBLIC_KEY_PATTERN: "a public key PUB_K1_… or EOS…",
    _SIGNATURE_PATTERN: "a signature SIG_K1_…",
    _FIELD_PATTERN: "a field name like title or person_city.city_name",
    _UNIT_PATTERN: "a unit name of letters, digits, '_', '.', '-'",
}

EventId = Annotated[str, Meta(pattern=EVENT_ID_PATTERN, description="lowercase hex SHA-256 event id")]
EntityId = Annotated[str, Meta(min_length=1, max_length=256, description="opaque node id")]
Name = Annotated[str, Meta(min_length=1, max_length=1024)]
Text = Annotated[str, Meta(max_length=65536)]
Link = Annotated[str, Meta(pattern=_LINK_PATTERN, max_length=2048)]
PartialDate = Annotated[str, Meta(pattern=_DATE_PATTERN, description="YYYY, YYYY-MM or YYYY-MM-DD")]
PublicKeyText = Annotated[str, Meta(pattern=_PUBLIC_KEY_PATTERN)]
SignatureText = Annotated[str, Meta(pattern=_SIGNATURE_PATTERN)]
Count = Annotated[int, Meta(ge=0, le=MAX_SAFE_INTEGER)]
Position = Annotated[int, Meta(ge=1, le=10_000)]
# Seed 000 writes some name lists as a string in one place and a list in another; "" means none.
NameOrNames: TypeAlias = Annotated[str, Meta(max_length=1024)] | list[Name]
LinkOrLinks: TypeAlias = Link | list[Link]

NodeKind = Literal["release", "label", "track", "person", "group", "role", "city"]


class _Body(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """Base of every body part: unknown fields are accepted (and kept in the event)."""


# --- CREATE_RELEASE_BUNDLE (seed 000) ----------------------------------------------------


class City(_Body, kw_only=True):
    city_id: EntityId | UnsetType = UNSET
    city_name: Name
    city_lat: Annotated[float, Meta(ge=-90, le=90)] | UnsetType = UNSET
    city_long: Annotated[float, Meta(ge=-180, le=180)] | UnsetType = UNSET


class Role(_Body, kw_only=True):
    role_id: EntityId | UnsetType = UNSET
    role_name: Name


class PersonCredit(_Body, kw_only=True):
    person_id: EntityId | UnsetType = UNSET
    person_name: Name
    person_altnames: NameOrNames = []
    person_roles: list[Role] = []
    person_city: City | UnsetType = UNSET


class GroupCredit(_Body, kw_only=True):
    group_id: EntityId | UnsetType = UNSET
    group_name: Name
    group_altnames: NameOrNames = []
    members: list[PersonCredit] = []


class SongReference(_Body, kw_only=True):
    """A covered or sampled song: an existing track by id, or described by title and artist."""

    track_id: EntityId | UnsetType = UNSET
    title: Name | UnsetType = UNSET
    artist_name: Name | UnsetType = UNSET
    release_name: Name | UnsetType = UNSET
    note: Text | UnsetType = UNSET


class Track(_Body, kw_only=True):
    track_id: EntityId | UnsetType = UNSET
    title: Name
    listen_link: LinkOrLinks = []
    cover_song: list[SongReference] = []
    sampled_songs: list[SongReference] = []
    songwriters: list[PersonCredit] = []
    producers: list[PersonCredit] = []
    groups: list[GroupCredit] = []
    guests: list[PersonCredit] = []


class Label(_Body, kw_only=True):
    label_id: EntityId | UnsetType = UNSET
    label_name: Name
    label_altnames: NameOrNames = []
    label_parents: Annotated[str, Meta(max_length=256)] | list[EntityId] = []
    label_city: City | list[City] = []


class Release(_Body, kw_only=True):
    release_id: EntityId | UnsetType = UNSET
    release_name: Name
    release_altnames: NameOrNames = []
    release_date: PartialDate | UnsetType = UNSET
    release_format: NameOrNames = []
    liner_notes: Text | UnsetType = UNSET
    # [true, null] for a master release; [false, "<master release id>"] for a reissue.
    master_release: tuple[bool, EntityId | None] | UnsetType = UNSET
    labels: list[Label] = []
    tracks: list[Track] = []


class TracklistEntry(_Body, kw_only=True):
    """A position on the release: a track by id, or by index into ``release.tracks``."""

    track_id: EntityId | UnsetType = UNSET
    track_index: Annotated[int, Meta(ge=0)] | UnsetType = UNSET
    disc_side: Position
    track_number: Position


class ReleaseBundleBody(_Body, kw_only=True):
    release: Release
    tracklist: list[TracklistEntry] = []


# --- CREATE_GROUP, ADD_MEMBER, REMOVE_MEMBER (seed 001) ----------------------------------


class OriginCity(_Body, kw_only=True):
    city_id: EntityId | UnsetType = UNSET
    name: Name
    lat: Annotated[float, Meta(ge=-90, le=90)] | UnsetType = UNSET
    lon: Annotated[float, Meta(ge=-180, le=180)] | UnsetType = UNSET


class Group(_Body, kw_only=True):
    group_id: EntityId | UnsetType = UNSET
    name: Name
    altnames: NameOrNames = []
    formed_date: PartialDate | UnsetType = UNSET
    origin_city: OriginCity | UnsetType = UNSET


class Member(_Body, kw_only=True):
    person_id: EntityId | UnsetType = UNSET
    name: Name | UnsetType = UNSET
    role: Name | UnsetType = UNSET
    roles: list[Name] = []


class CreateGroupBody(_Body, kw_only=True):
    group: Group
    founding_members: list[Member] = []


class AddMemberBody(_Body, kw_only=True):
    group_id: EntityId
    member: Member
    joined_date: PartialDate | UnsetType = UNSET


class RemoveMemberBody(_Body, kw_only=True):
    group_id: EntityId
    person_id: EntityId
    left_date: PartialDate | UnsetType = UNSET
    note: Text | UnsetType = UNSET


# --- governance ---------------------------------------------------------------------------


class NodeRef(_Body, kw_only=True):
    kind: NodeKind
    id: EntityId


class Change(_Body, kw_only=True):
    """One change of a claim. ``set``/``unset`` a field, ``add``/``remove`` a list item."""

    op: Literal["set", "unset", "add", "remove"]
    field: Annotated[str, Meta(pattern=_FIELD_PATTERN, max_length=256)]
    value: Any = None


Sources = Annotated[list[Link], Meta(max_length=64)]


class AddClaimBody(_Body, kw_only=True):
    """A proposed change to one node; all its changes are reviewed and voted on as one."""

    subject: NodeRef
    changes: Annotated[list[Change], Meta(min_length=1, max_length=256)]
    sources: Sources = []
    note: Text | UnsetType = UNSET


class EditClaimBody(_Body, kw_only=True):
    """An amendment by the claim's author: replaces the claim's changes; votes restart."""

    claim_id: EventId
    changes: Annotated[list[Change], Meta(min_length=1, max_length=256)]
    sources: Sources = []
    note: Text | UnsetType = UNSET


class DeleteClaimBody(_Body, kw_only=True):
    claim_id: EventId
    reason: Text | UnsetType = UNSET


class VoteBody(_Body, kw_only=True):
    claim_id: EventId
    vote: Literal["yes", "no", "abstain"]
    comment: Text | UnsetType = UNSET


class LikeBody(_Body, kw_only=True):
    target: EventId


class DiscussBody(_Body, kw_only=True):
    """A comment; a reply names the comment it answers in the envelope's ``parents``."""

    text: Annotated[str, Meta(min_length=1, max_length=20_000)]
    claim_id: EventId | UnsetType = UNSET
    subject: NodeRef | UnsetType = UNSET


class Tally(_Body, kw_only=True):
    yes: Count
    no: Count
    abstain: Count


class FinalizeBody(_Body, kw_only=True):
    """Closes a proposal; the projection re-checks the outcome and the tally against the rules."""

    claim_id: EventId
    outcome: Literal["accepted", "rejected"]
    tally: Tally


class Allocation(_Body, kw_only=True):
    recipient: PublicKeyText
    amount: Count
    claim_ids: Annotated[list[EventId], Meta(min_length=1)]


class DistributeRewardsBody(_Body, kw_only=True):
    unit: Annotated[str, Meta(pattern=_UNIT_PATTERN)]
    pool: Count
    allocations: Annotated[list[Allocation], Meta(min_length=1, max_length=10_000)]
    period_start: Count | UnsetType = UNSET
    period_end: Count | UnsetType = UNSET


class MergeNodeBody(_Body, kw_only=True):
    """Proposes folding ``source_id`` (a duplicate) into ``target_id``; the old id keeps resolving."""

    kind: NodeKind
    source_id: EntityId
    target_id: EntityId
    reason: Text | UnsetType = UNSET
    sources: Sources = []


class SplitNodeBody(_Body, kw_only=True):
    """Proposes undoing a merge (``merge_id``) or moving credits of a node to a new node."""

    kind: NodeKind
    node_id: EntityId
    merge_id: EventId | UnsetType = UNSET
    move_credits: list[EventId] = []
    new_name: Name | UnsetType = UNSET
    reason: Text | UnsetType = UNSET
    sources: Sources = []


# --- envelope -----------------------------------------------------------------------------


class Proofs(_Body, kw_only=True):
    source_links: list[Link] = []


class EventEnvelope(msgspec.Struct, kw_only=True, tag_field="type", forbid_unknown_fields=False):
    """``{v, type, author_pubkey, created_at, parents, body, proofs?, sig?}``."""

    v: Literal[1]
    author_pubkey: PublicKeyText
    created_at: Count
    parents: Annotated[list[EventId], Meta(max_length=256)]
    proofs: Proofs | UnsetType = UNSET
    sig: SignatureText | UnsetType = UNSET
    body: Any

    @property
    def event_type(self) -> EventType:
        return _TYPE_OF_SCHEMA[type(self)]


def _envelope(event_type: EventType, body: type[_Body]) -> type[EventEnvelope]:
    struct = msgspec.defstruct(
        event_type.name.title().replace("_", "") + "Event",
        [("body", body)],
        bases=(EventEnvelope,),
        tag=event_type.name,
        kw_only=True,
    )
    assert issubclass(struct, EventEnvelope)
    return struct


BODY_SCHEMAS: Final[dict[EventType, type[_Body]]] = {
    EventType.CREATE_RELEASE_BUNDLE: ReleaseBundleBody,
    EventType.CREATE_GROUP: CreateGroupBody,
    EventType.ADD_MEMBER: AddMemberBody,
    EventType.REMOVE_MEMBER: RemoveMemberBody,
    EventType.ADD_CLAIM: AddClaimBody,
    EventType.EDIT_CLAIM: EditClaimBody,
    EventType.DELETE_CLAIM: DeleteClaimBody,
    EventType.VOTE: VoteBody,
    EventType.LIKE: LikeBody,
    EventType.DISCUSS: DiscussBody,
    EventType.FINALIZE: FinalizeBody,
    EventType.DISTRIBUTE_REWARDS: DistributeRewardsBody,
    EventType.MERGE_NODE: MergeNodeBody,
    EventType.SPLIT_NODE: SplitNodeBody,
}
EVENT_SCHEMAS: Final = {event_type: _envelope(event_type, body) for event_type, body in BODY_SCHEMAS.items()}
_TYPE_OF_SCHEMA: Final[dict[type[EventEnvelope], EventType]] = {
    schema: event_type for event_type, schema in EVENT_SCHEMAS.items()
}
AnyEvent: TypeAlias = Union[tuple(EVENT_SCHEMAS.values())]  # type: ignore[valid-type]  # noqa: UP007

_MSGSPEC_PATH = re.compile(r"^(?P<detail>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.DOTALL)


def validate_event(value: Any) -> EventEnvelope:
    """Check an event (signed or not) against its type's schema; return the typed view.

    Raises :class:`SchemaError` naming the JSONPath and the broken rule.
    """
    if not isinstance(value, dict):
        raise SchemaError("$", f"an event must be a JSON object, got {_json_type(value)}", "type")
    event_type = value.get("type")
    if not isinstance(event_type, str):
        raise SchemaError("$.type", "required string field `type` is missing or not a string", "required")
    if event_type not in EventType.__members__:
        known = ", ".join(EventType.__members__)
        raise SchemaError("$.type", f"unknown event type {event_type!r}; known types: {known}", "enum")
    try:
        # The concrete type, not the AnyEvent union: msgspec converts to a union ~5x slower.
        typed: EventEnvelope = msgspec.convert(value, type=EVENT_SCHEMAS[EventType[event_type]])
    except msgspec.ValidationError as exc:
        match = _MSGSPEC_PATH.match(str(exc))
        assert match is not None  # the pattern matches any text
        detail = match["detail"]
        for pattern, rule in _PATTERN_RULES.items():
            detail = detail.replace(f"`str` matching regex {pattern!r}", rule)
        raise SchemaError(match["path"] or "$", detail) from None
    _check_rules(typed)
    return typed


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def _check_rules(event: EventEnvelope) -> None:
    """Rules that span fields, which a type schema cannot express."""
    check = _RULES.get(type(event.body))
    if check is not None:
        check(event.body)


def _check_add_member(body: AddMemberBody) -> None:
    if body.member.person_id is UNSET and body.member.name is UNSET:
        raise SchemaError("$.body.member", "a member needs `person_id` or `name`", "required")


def _check_rewards(body: DistributeRewardsBody) -> None:
    total = sum(allocation.amount for allocation in body.allocations)
    if total > body.pool:
        raise SchemaError("$.body.allocations", f"allocations total {total}, more than the pool {body.pool}", "sum")
    seen: set[str] = set()
    for index, allocation in enumerate(body.allocations):
        if allocation.recipient in seen:
            raise SchemaError(f"$.body.allocations[{index}].recipient", "recipient appears twice", "unique")
        seen.add(allocation.recipient)
    if body.period_start is not UNSET and body.period_end is not UNSET and body.period_end < body.period_start:
        raise SchemaError("$.body.period_end", "period ends before it starts", "order")


def _check_merge(body: MergeNodeBody) -> None:
    if body.source_id == body.target_id:
        raise SchemaError("$.body.target_id", "a node cannot be merged into itself", "distinct")


def _check_split(body: SplitNodeBody) -> None:
    if body.merge_id is UNSET and not body.move_credits:
        raise SchemaError("$.body", "a split needs `merge_id` (undo a merge) or `move_credits`", "required")


def _check_release_bundle(body: ReleaseBundleBody) -> None:
    release = body.release
    if release.master_release is not UNSET:
        is_master, master_id = release.master_release
        if is_master and master_id is not None:
            raise SchemaError(
                "$.body.release.master_release[1]", "a master release has no master id: use null", "master"
            )
        if not is_master and master_id is None:
            raise SchemaError("$.body.release.master_release[1]", "a reissue must name its master release id", "master")
    positions: set[tuple[int, int]] = set()
    for index, entry in enumerate(body.tracklist):
        path = f"$.body.tracklist[{index}]"
        if (entry.track_id is UNSET) == (entry.track_index is UNSET):
            raise SchemaError(path, "give exactly one of `track_id` and `track_index`", "one-of")
        if entry.track_index is not UNSET and entry.track_index >= len(release.tracks):
            raise SchemaError(
                f"{path}.track_index",
                f"index {entry.track_index} is past the last track (release has {len(release.tracks)})",
                "range",
            )
        position = (entry.disc_side, entry.track_number)
        if position in positions:
            raise SchemaError(path, f"side {position[0]} track {position[1]} is listed twice", "unique")
        positions.add(position)


_RULES: Final[dict[type[_Body], Callable[[Any], None]]] = {
    ReleaseBundleBody: _check_release_bundle,
    AddMemberBody: _check_add_member,
    DistributeRewardsBody: _check_rewards,
    MergeNodeBody: _check_merge,
    SplitNodeBody: _check_split,
}
