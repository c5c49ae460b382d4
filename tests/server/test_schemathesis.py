"""DRAFT exploratory run: every check, to see what fails."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, settings

from tests.server.process import StaveServer

schemathesis = pytest.importorskip("schemathesis")

from schemathesis import checks as st_checks  # noqa: E402

ALL = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_headers_conformance,
    st_checks.response_schema_conformance,
    st_checks.negative_data_rejection,
    st_checks.positive_data_acceptance,
    st_checks.missing_required_header,
    st_checks.unsupported_method,
    st_checks.allow_header_conformance,
]


def config(url: str) -> Any:
    return schemathesis.Config.from_dict(
        {
            "base-url": url,
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
            "generation": {"mode": "all", "max-examples": 30},
        }
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaveServer]:
    one = StaveServer(tmp_path_factory.mktemp("stave-schemathesis")).start()
    yield one
    one.stop()


@pytest.fixture(scope="module")
def api(server: StaveServer) -> Any:
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json", config=config(server.url))


schema = schemathesis.pytest.from_fixture("api")


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as one:
        yield one


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_explore(case: Any, session: requests.Session) -> None:
    case.call_and_validate(session=session, checks=ALL)
