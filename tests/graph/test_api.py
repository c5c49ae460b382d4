"""The graph's public surface: ``__all__`` is exactly the public names of each module."""

from __future__ import annotations

import importlib
import inspect

import pytest

from tests.unit.test_api import test_all_is_exactly_the_public_definitions as check_all

MODULES = [
    "stave.graph",
    "stave.graph.aliases",
    "stave.graph.batch",
    "stave.graph.canonical",
    "stave.graph.changes",
    "stave.graph.digest",
    "stave.graph.extract",
    "stave.graph.governance",
    "stave.graph.ids",
    "stave.graph.names",
    "stave.graph.projector",
    "stave.graph.queries",
    "stave.graph.tables",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_exactly_the_public_definitions(name: str) -> None:
    check_all(name)


def test_every_query_is_importable_from_the_package_with_the_database_first() -> None:
    graph = importlib.import_module("stave.graph")
    queries = importlib.import_module("stave.graph.queries")
    for name in queries.__all__:
        if name.isupper():
            continue
        assert getattr(graph, name) is getattr(queries, name)
        parameters = list(inspect.signature(getattr(queries, name)).parameters)
        assert parameters[0] == "database", name
