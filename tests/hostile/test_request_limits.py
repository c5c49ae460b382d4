"""The checks every request meets before routing (``stave.server.limits``); over HTTP in the catalogue."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stave.server.limits import MAX_HEADER_BYTES, refusal


def test_headers_up_to_the_limit_pass_and_one_byte_more_is_431() -> None:
    name = b"x-padding"
    exact = [(name, b"a" * (MAX_HEADER_BYTES - len(name) - 4))]
    assert refusal(exact) is None
    problem = refusal([(name, exact[0][1] + b"a")])
    assert problem is not None
    assert (problem.status, problem.reason) == (431, "invalid")
    assert f"limit is {MAX_HEADER_BYTES}" in problem.detail


@pytest.mark.parametrize("coding", [b"gzip", b"br", b"deflate", b"identity, gzip", b"x-anything", b"GZIP"])
def test_any_content_coding_but_identity_is_415(coding: bytes) -> None:
    problem = refusal([(b"content-type", b"application/json"), (b"content-encoding", coding)])
    assert problem is not None
    assert (problem.status, problem.reason) == (415, "invalid")
    assert "content encoding" in problem.detail


@pytest.mark.parametrize("coding", [b"identity", b"Identity", b"", b" identity , identity"])
def test_identity_is_no_coding(coding: bytes) -> None:
    assert refusal([(b"content-encoding", coding)]) is None


@pytest.mark.parametrize(
    ("path", "query", "where"),
    [("/events/\x00", b"", "path"), ("/labels/a\nb", b"", "path"), ("/events", b"author=%00", "query"),
     ("/events", b"author=a%7Fb", "query"), ("/events", b"type=%0d%0a", "query")],
)  # fmt: skip
def test_control_characters_in_the_target_are_400(path: str, query: bytes, where: str) -> None:
    problem = refusal([], path, query)
    assert problem is not None
    assert (problem.status, problem.reason) == (400, "invalid")
    assert f"request {where} holds the control character" in problem.detail


def test_ordinary_targets_pass() -> None:
    assert (
        refusal([(b"host", b"127.0.0.1")], "/events/" + "ab" * 32, b"after_seq=5&type=VOTE&author=PUB_K1_x%20y") is None
    )


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    st.lists(st.tuples(st.binary(max_size=20), st.binary(max_size=40)), max_size=6),
    st.text(max_size=40),
    st.binary(max_size=40),
)
def test_any_request_is_judged_without_an_exception(
    headers: list[tuple[bytes, bytes]], path: str, query: bytes
) -> None:
    problem = refusal(headers, path, query)
    assert problem is None or problem.status in (400, 415, 431)
