"""The music graph: a projection of the log into nodes, credits and governance state.

A :class:`Projector` follows the log into the graph's own database (SQLite by default,
PostgreSQL at scale); the query functions read it (see :mod:`stave.graph.queries` for their
signatures); :func:`state_digest` proves two replicas agree and :func:`reconcile` compares a
live projection with a fresh rebuild. Governance decisions are :mod:`stave.graph.rules`'s.
"""

from stave.graph.digest import Difference, StateDigest, compare, reconcile, state_digest
from stave.graph.projector import FOLLOW_ROUND, GRAPH, Projector, open_graph_database
from stave.graph.queries import (
    claims,
    collaborators,
    discography,
    history,
    label_releases,
    members,
    node,
    rejections,
    release,
    reward_totals,
    search,
)
from stave.graph.rules import Rules

__all__ = [
    "FOLLOW_ROUND",
    "GRAPH",
    "Difference",
    "Projector",
    "Rules",
    "StateDigest",
    "claims",
    "collaborators",
    "compare",
    "discography",
    "history",
    "label_releases",
    "members",
    "node",
    "open_graph_database",
    "reconcile",
    "rejections",
    "release",
    "reward_totals",
    "search",
    "state_digest",
]
