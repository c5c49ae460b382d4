"""The event types of stave and their numeric codes (seeds 000 and 001). Pure."""

from __future__ import annotations

import enum

__all__ = ["EventType"]


class EventType(enum.IntEnum):
    """Every event type with the numeric code used where space is tight (ledgers, indexes)."""

    CREATE_RELEASE_BUNDLE = 21
    CREATE_GROUP = 22
    ADD_MEMBER = 23
    REMOVE_MEMBER = 24
    ADD_CLAIM = 30
    EDIT_CLAIM = 31
    DELETE_CLAIM = 32
    VOTE = 40
    LIKE = 41
    DISCUSS = 42
    FINALIZE = 50
    DISTRIBUTE_REWARDS = 51
    MERGE_NODE = 60
    SPLIT_NODE = 61

    @classmethod
    def from_name(cls, name: str) -> EventType:
        try:
            return cls[name]
        except KeyError:
            known = ", ".join(member.name for member in cls)
            raise ValueError(f"unknown event type {name!r}; known types: {known}") from None

    @property
    def is_proposal(self) -> bool:
        """Proposals are voted on and finalised; their event id is the claim id."""
        return self in (EventType.ADD_CLAIM, EventType.MERGE_NODE, EventType.SPLIT_NODE)
