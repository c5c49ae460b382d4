"""The governance rules: every rule and refusal of docs/governance.md, boundaries to the second,
and properties over random claims and ballots."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from stave.errors import ConfigError
from stave.graph import rules as rules_module
from stave.graph.rules import (
    REFUSALS,
    Ballot,
    Claim,
    ClaimKind,
    Decision,
    Rules,
    Tally,
    check_amend,
    check_finalize,
    check_rewards,
    check_vote,
    check_withdraw,
    closes_at,
    expires_at,
    is_destructive,
    outcome_at,
    tally,
    unknown_claim,
)

HOUR = 3600
DAY = 86400
T0 = 1_758_390_400  # log time the test claims open at
MB = Rules()  # MusicBrainz's constants
DOC = Path(__file__).resolve().parents[2] / "docs" / "governance.md"

AUTHOR = "PUB_K1_author"
FINALIZER = "PUB_K1_finalizer"


def claim(
    kind: ClaimKind = "claim",
    *,
    destructive: bool | None = None,
    amended_at: int | None = None,
    status: str = "open",
    author: str = AUTHOR,
) -> Claim:
    return Claim(
        claim_id="c" * 64,
        kind=kind,
        author=author,
        opened_at=T0,
        amended_at=amended_at,
        destructive=kind != "claim" if destructive is None else destructive,
        status=status,  # type: ignore[arg-type]
    )


def ballots(*votes: tuple[str, int]) -> list[Ballot]:
    """Ballots by distinct voters: ``("yes", seconds after T0)``."""
    return [Ballot(voter=f"PUB_K1_voter{i}", vote=v, at=T0 + dt) for i, (v, dt) in enumerate(votes)]  # type: ignore[arg-type]


def refused(decision: Decision, rule: str) -> None:
    assert not decision.ok, decision
    assert decision.rule == rule, decision
    assert decision.detail, "every refusal says why"


# --- public surface and documentation ------------------------------------------------------


def test_all_is_exactly_the_public_names() -> None:
    imported = {"annotations", "Any", "Literal", "Iterable", "Mapping", "Sequence", "dataclass", "ConfigError"}
    public = {name for name in vars(rules_module) if not name.startswith("_")} - imported
    assert len(set(rules_module.__all__)) == len(rules_module.__all__)
    assert set(rules_module.__all__) == public


def test_rules_module_is_pure() -> None:
    """No I/O and no clock: only these imports (docs/governance.md, 'Log time')."""
    tree = ast.parse(Path(rules_module.__file__ or "").read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert imported <= {"__future__", "collections.abc", "dataclasses", "typing", "stave.errors"}


def _doc_section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_every_refusal_is_documented_and_every_documented_refusal_exists() -> None:
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", _doc_section("Refusals"), re.MULTILINE))
    assert documented == set(REFUSALS)


def test_every_rule_setting_is_documented_with_its_default() -> None:
    rows = dict(re.findall(r"^\| `graph\.([a-z_]+)` \| ([^|]+) \|", _doc_section("Settings"), re.MULTILINE))
    fields = {f.name: f.default for f in dataclasses.fields(Rules)}
    assert set(rows) == set(fields)
    for name, default in fields.items():
        shown = rows[name].strip()
        if isinstance(default, bool):
            assert shown == f"`{str(default).lower()}`", name
        elif isinstance(default, int):
            assert shown.startswith(f"`{default}`"), name
        elif default is None:
            assert "anyone" in shown, name
        else:
            assert shown.startswith("`[]`"), name


def test_defaults_are_musicbrainz_constants() -> None:
    assert (MB.min_votes, MB.voting_period, MB.no_vote_extension, MB.destructive_min_open) == (
        3,
        7 * DAY,
        72 * HOUR,
        48 * HOUR,
    )
    assert MB.voters is None
    assert MB.finalizers is None
    assert MB.reward_distributors == frozenset()


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("min_votes", 0, "graph.min_votes"),
        ("min_votes", True, "graph.min_votes"),
        ("voting_period", -1, "graph.voting_period"),
        ("no_vote_extension", "72h", "graph.no_vote_extension"),
        ("destructive_min_open", 1.5, "graph.destructive_min_open"),
        ("accept_unreviewed", 1, "graph.accept_unreviewed"),
        ("voters", ["PUB_K1_a"], "graph.voters"),
        ("finalizers", frozenset({1}), "graph.finalizers"),
        ("reward_distributors", None, "graph.reward_distributors"),
    ],
)
def test_invalid_rules_name_the_setting(field: str, value: Any, named: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        Rules(**{field: value})


def test_unknown_claim_refusal() -> None:
    refused(unknown_claim("ab" * 32), "unknown-claim")
    assert "ab" * 32 in (unknown_claim("ab" * 32).detail or "")


# --- tally and destructiveness -------------------------------------------------------------


def test_tally_counts_each_value() -> None:
    assert tally([]) == Tally(0, 0, 0)
    assert tally(ballots(("yes", 1), ("no", 2), ("abstain", 3), ("yes", 4))) == Tally(yes=2, no=1, abstain=1)


@pytest.mark.parametrize(
    ("kind", "changes", "expected"),
    [
        ("merge", [], True),
        ("split", [], True),
        ("claim", [{"op": "add", "field": "guests", "value": {"person_name": "Eric Clapton"}}], False),
        ("claim", [{"op": "set", "field": "release_date", "value": "1968-11-22"}], False),
        ("claim", [{"op": "unset", "field": "liner_notes"}], True),
        ("claim", [{"op": "remove", "field": "guests", "value": {"person_id": "p"}}], True),
        ("claim", [{"op": "set", "field": "release_date", "value": None}], True),
        ("claim", [{"op": "set", "field": "release_date"}], True),
        ("claim", [{"op": "rename", "field": "title", "value": "x"}], True),
        ("claim", [{"op": "add", "field": "a", "value": 1}, {"op": "remove", "field": "b", "value": 2}], True),
        ("claim", [], False),
    ],
)
def test_is_destructive(kind: ClaimKind, changes: list[dict[str, Any]], expected: bool) -> None:
    assert is_destructive(kind, changes) is expected


# --- timing: expiry --------------------------------------------------------------------------


def test_unvoted_claim_is_open_until_exactly_seven_days_then_accepted() -> None:
    c = claim()
    assert outcome_at(c, [], T0, MB) == "open"
    assert outcome_at(c, [], T0 + 7 * DAY - 1, MB) == "open"
    assert outcome_at(c, [], T0 + 7 * DAY, MB) == "accepted"
    assert closes_at(c, [], MB) == expires_at(c, [], MB) == T0 + 7 * DAY


def test_unreviewed_outcomes_follow_configuration() -> None:
    at_expiry = T0 + 7 * DAY
    assert outcome_at(claim(destructive=True), [], at_expiry, MB) == "rejected"
    assert outcome_at(claim("merge"), [], at_expiry, MB) == "rejected"
    assert outcome_at(claim(), [], at_expiry, Rules(accept_unreviewed=False)) == "rejected"
    assert outcome_at(claim("merge"), [], at_expiry, Rules(accept_unreviewed_destructive=True)) == "accepted"


def test_abstentions_alone_count_as_unreviewed() -> None:
    votes = ballots(("abstain", 1), ("abstain", 2), ("abstain", 3), ("abstain", 4))
    assert outcome_at(claim(), votes, T0 + 7 * DAY - 1, MB) == "open"
    assert outcome_at(claim(), votes, T0 + 7 * DAY, MB) == "accepted"
    assert outcome_at(claim(destructive=True), votes, T0 + 7 * DAY, MB) == "rejected"


@pytest.mark.parametrize(
    ("votes", "expected"),
    [
        ((("yes", 1),), "accepted"),
        ((("yes", 1), ("yes", 2), ("no", 3)), "accepted"),
        ((("yes", 1), ("no", 2)), "rejected"),  # a tie rejects
        ((("yes", 1), ("no", 2), ("no", 3)), "rejected"),
        ((("no", 1),), "rejected"),
        ((("yes", 1), ("abstain", 2), ("abstain", 3), ("no", 4)), "rejected"),  # abstain decides nothing
        ((("yes", 1), ("yes", 2), ("yes", 3), ("no", 4)), "accepted"),  # contested, so not early
    ],
)
def test_expiry_majority(votes: tuple[tuple[str, int], ...], expected: str) -> None:
    live = ballots(*votes)
    assert outcome_at(claim(), live, T0 + 7 * DAY - 1, MB) == "open"
    assert outcome_at(claim(), live, T0 + 7 * DAY, MB) == expected


# --- timing: early closing -----------------------------------------------------------------


def test_three_unanimous_yes_accept_at_the_third_vote() -> None:
    live = ballots(("yes", HOUR), ("yes", 2 * HOUR), ("abstain", 2 * HOUR), ("yes", 3 * HOUR))
    assert outcome_at(claim(), live, T0 + 3 * HOUR - 1, MB) == "open"
    assert outcome_at(claim(), live, T0 + 3 * HOUR, MB) == "accepted"
    assert closes_at(claim(), live, MB) == T0 + 3 * HOUR


def test_two_yes_wait_for_expiry_unless_min_votes_is_lower() -> None:
    live = ballots(("yes", HOUR), ("yes", 2 * HOUR))
    assert outcome_at(claim(), live, T0 + 6 * DAY, MB) == "open"
    assert outcome_at(claim(), live, T0 + 2 * HOUR, Rules(min_votes=2)) == "accepted"


def test_destructive_claim_stays_open_48_hours_despite_three_yes() -> None:
    live = ballots(("yes", HOUR), ("yes", 2 * HOUR), ("yes", 3 * HOUR))
    for c in (claim(destructive=True), claim("merge"), claim("split")):
        assert outcome_at(c, live, T0 + 48 * HOUR - 1, MB) == "open"
        assert outcome_at(c, live, T0 + 48 * HOUR, MB) == "accepted"
        assert closes_at(c, live, MB) == T0 + 48 * HOUR


def test_destructive_claim_third_yes_after_48_hours_accepts_at_once() -> None:
    live = ballots(("yes", HOUR), ("yes", 2 * HOUR), ("yes", 50 * HOUR))
    assert outcome_at(claim("merge"), live, T0 + 50 * HOUR - 1, MB) == "open"
    assert outcome_at(claim("merge"), live, T0 + 50 * HOUR, MB) == "accepted"


def test_destructive_minimum_holds_even_with_a_short_voting_period() -> None:
    short = Rules(voting_period=HOUR)
    assert outcome_at(claim(), [], T0 + HOUR, short) == "accepted"
    assert outcome_at(claim("merge"), [], T0 + 48 * HOUR - 1, short) == "open"
    assert expires_at(claim("merge"), [], short) == T0 + 48 * HOUR


def test_destructive_minimum_also_holds_against_unanimous_no() -> None:
    quick = Rules(no_vote_extension=HOUR)
    live = ballots(("no", 1), ("no", 2), ("no", 3))
    assert outcome_at(claim(), live, T0 + HOUR + 1, quick) == "rejected"
    assert outcome_at(claim("split"), live, T0 + 48 * HOUR - 1, quick) == "open"
    assert outcome_at(claim("split"), live, T0 + 48 * HOUR, quick) == "rejected"


def test_three_unanimous_no_wait_72_hours_after_the_first_no() -> None:
    live = ballots(("no", 10 * HOUR), ("no", 11 * HOUR), ("no", 12 * HOUR))
    assert outcome_at(claim(), live, T0 + 12 * HOUR, MB) == "open"
    assert outcome_at(claim(), live, T0 + 82 * HOUR - 1, MB) == "open"
    assert outcome_at(claim(), live, T0 + 82 * HOUR, MB) == "rejected"
    assert closes_at(claim(), live, MB) == T0 + 82 * HOUR


def test_third_no_after_72_hours_rejects_at_once() -> None:
    live = ballots(("no", HOUR), ("no", 2 * HOUR), ("no", 100 * HOUR))
    assert outcome_at(claim(), live, T0 + 100 * HOUR - 1, MB) == "open"
    assert outcome_at(claim(), live, T0 + 100 * HOUR, MB) == "rejected"


# --- timing: the No extension ----------------------------------------------------------------


def test_first_no_near_expiry_extends_it_to_72_hours_after() -> None:
    live = ballots(("yes", DAY), ("no", 6 * DAY))
    assert expires_at(claim(), live, MB) == T0 + 9 * DAY
    assert outcome_at(claim(), live, T0 + 7 * DAY, MB) == "open"
    assert outcome_at(claim(), live, T0 + 9 * DAY - 1, MB) == "open"
    assert outcome_at(claim(), live, T0 + 9 * DAY, MB) == "rejected"


def test_early_first_no_does_not_extend() -> None:
    live = ballots(("no", DAY), ("yes", 2 * DAY), ("yes", 3 * DAY))
    assert expires_at(claim(), live, MB) == T0 + 7 * DAY
    assert outcome_at(claim(), live, T0 + 7 * DAY, MB) == "accepted"


def test_only_the_first_no_extends() -> None:
    live = ballots(("no", 5 * DAY), ("yes", 5 * DAY), ("yes", 5 * DAY), ("no", 7 * DAY + HOUR))
    assert expires_at(claim(), live, MB) == T0 + 8 * DAY
    # the second No arrives after the first No's extension began: no further extension
    assert outcome_at(claim(), live, T0 + 8 * DAY, MB) == "rejected"


def test_a_late_no_on_a_decided_but_unfinalised_claim_reopens_it_for_72_hours() -> None:
    before = ballots(("yes", DAY))
    assert outcome_at(claim(), before, T0 + 8 * DAY, MB) == "accepted"
    after = [*before, Ballot("PUB_K1_late", "no", T0 + 8 * DAY)]
    assert outcome_at(claim(), after, T0 + 8 * DAY, MB) == "open"
    assert outcome_at(claim(), after, T0 + 11 * DAY - 1, MB) == "open"
    assert outcome_at(claim(), after, T0 + 11 * DAY, MB) == "rejected"


def test_a_no_after_three_yes_makes_the_claim_contested_again() -> None:
    three_yes = ballots(("yes", HOUR), ("yes", HOUR), ("yes", HOUR))
    assert outcome_at(claim(), three_yes, T0 + 2 * HOUR, MB) == "accepted"
    contested = [*three_yes, Ballot("PUB_K1_doubter", "no", T0 + 2 * HOUR)]
    assert outcome_at(claim(), contested, T0 + 2 * HOUR, MB) == "open"
    assert outcome_at(claim(), contested, T0 + 7 * DAY, MB) == "accepted"


def test_ballots_cast_after_now_do_not_count() -> None:
    live = ballots(("yes", HOUR), ("yes", HOUR), ("yes", 10 * HOUR))
    assert outcome_at(claim(), live, T0 + 5 * HOUR, MB) == "open"
    assert outcome_at(claim(), live, T0 + 10 * HOUR, MB) == "accepted"


def test_finalised_or_withdrawn_claims_keep_their_status() -> None:
    live = ballots(("no", HOUR))
    for status in ("accepted", "rejected", "withdrawn"):
        assert outcome_at(claim(status=status), live, T0 + 30 * DAY, MB) == status


# --- amendments -----------------------------------------------------------------------------


def test_amendment_restarts_the_voting_period() -> None:
    amended = claim(amended_at=T0 + 5 * DAY)
    assert outcome_at(amended, [], T0 + 7 * DAY, MB) == "open"
    assert outcome_at(amended, [], T0 + 12 * DAY - 1, MB) == "open"
    assert outcome_at(amended, [], T0 + 12 * DAY, MB) == "accepted"


def test_destructive_amendment_gets_its_full_48_hours() -> None:
    amended = claim(destructive=True, amended_at=T0 + 5 * DAY)
    live = ballots(("yes", 5 * DAY + 1), ("yes", 5 * DAY + 2), ("yes", 5 * DAY + 3))
    assert outcome_at(amended, live, T0 + 7 * DAY - 1, MB) == "open"
    assert outcome_at(amended, live, T0 + 7 * DAY, MB) == "accepted"


def test_votes_restart_on_amendment_so_a_tally_with_old_ballots_is_refused() -> None:
    # Before the amendment two voters said No; after it, only the ballots cast since count.
    amended = claim(amended_at=T0 + DAY)
    since = ballots(("yes", DAY + 1), ("yes", DAY + 2), ("yes", DAY + 3))
    now = T0 + DAY + 3
    assert outcome_at(amended, since, now, MB) == "accepted"
    assert check_finalize(amended, since, FINALIZER, now, "accepted", Tally(3, 0, 0), MB).ok
    stale = check_finalize(amended, since, FINALIZER, now, "accepted", Tally(3, 2, 0), MB)
    refused(stale, "tally-mismatch")


def test_changed_vote_counts_only_the_latest() -> None:
    # voter1 said Yes, then changed to No: the projection passes only the live No.
    first = ballots(("yes", HOUR), ("yes", HOUR), ("yes", HOUR))
    changed = [first[0], first[1], Ballot(first[2].voter, "no", T0 + 2 * HOUR)]
    now = T0 + 3 * HOUR
    assert outcome_at(claim(), first, now, MB) == "accepted"
    assert outcome_at(claim(), changed, now, MB) == "open"
    assert tally(changed) == Tally(yes=2, no=1, abstain=0)
    refused(check_finalize(claim(), changed, FINALIZER, now, "accepted", Tally(3, 0, 0), MB), "premature")


# --- vote, amend, withdraw ------------------------------------------------------------------


def test_check_vote() -> None:
    assert check_vote(claim(), "PUB_K1_voter", T0 + 1, MB).ok
    assert check_vote(claim(), "PUB_K1_voter", T0 + 30 * DAY, MB).ok  # votes count until finalised
    refused(check_vote(claim(), AUTHOR, T0 + 1, MB), "own-claim")
    for status in ("accepted", "rejected", "withdrawn"):
        refused(check_vote(claim(status=status), "PUB_K1_voter", T0 + 1, MB), "not-open")
    only = Rules(voters=frozenset({"PUB_K1_member"}))
    assert check_vote(claim(), "PUB_K1_member", T0 + 1, only).ok
    refused(check_vote(claim(), "PUB_K1_stranger", T0 + 1, only), "voter-not-allowed")


def test_check_amend() -> None:
    assert check_amend(claim(), AUTHOR, T0 + DAY, MB).ok
    assert check_amend(claim(), AUTHOR, T0 + 30 * DAY, MB).ok  # open until finalised
    refused(check_amend(claim(), "PUB_K1_other", T0 + DAY, MB), "not-author")
    refused(check_amend(claim("merge"), AUTHOR, T0 + DAY, MB), "not-amendable")
    refused(check_amend(claim("split"), AUTHOR, T0 + DAY, MB), "not-amendable")
    for status in ("accepted", "rejected", "withdrawn"):
        refused(check_amend(claim(status=status), AUTHOR, T0 + DAY, MB), "not-open")


def test_check_withdraw() -> None:
    assert check_withdraw(claim(), AUTHOR, T0 + DAY, MB).ok
    assert check_withdraw(claim("merge"), AUTHOR, T0 + DAY, MB).ok
    refused(check_withdraw(claim(), "PUB_K1_other", T0 + DAY, MB), "not-author")
    for status in ("accepted", "rejected", "withdrawn"):
        refused(check_withdraw(claim(status=status), AUTHOR, T0 + DAY, MB), "not-open")


# --- finalisation ---------------------------------------------------------------------------


def test_finalize_accepted_and_rejected() -> None:
    yes = ballots(("yes", 1), ("yes", 2), ("yes", 3))
    assert check_finalize(claim(), yes, FINALIZER, T0 + 3, "accepted", Tally(3, 0, 0), MB).ok
    no = ballots(("no", 1), ("no", 2), ("no", 3))
    assert check_finalize(claim(), no, FINALIZER, T0 + 1 + 72 * HOUR, "rejected", Tally(0, 3, 0), MB).ok
    # the author may finalise: the outcome is the rules', not theirs
    assert check_finalize(claim(), yes, AUTHOR, T0 + 3, "accepted", Tally(3, 0, 0), MB).ok


def test_premature_finalize_is_refused_with_the_time_it_could_close() -> None:
    decision = check_finalize(claim(), [], FINALIZER, T0 + 7 * DAY - 1, "accepted", Tally(0, 0, 0), MB)
    refused(decision, "premature")
    assert str(T0 + 7 * DAY) in (decision.detail or "")
    assert check_finalize(claim(), [], FINALIZER, T0 + 7 * DAY, "accepted", Tally(0, 0, 0), MB).ok


def test_forged_finalize_is_refused() -> None:
    live = ballots(("yes", 1), ("no", 2), ("no", 3))
    now = T0 + 7 * DAY
    assert check_finalize(claim(), live, FINALIZER, now, "rejected", Tally(1, 2, 0), MB).ok
    refused(check_finalize(claim(), live, FINALIZER, now, "accepted", Tally(1, 2, 0), MB), "outcome-mismatch")
    refused(check_finalize(claim(), live, FINALIZER, now, "accepted", Tally(3, 0, 0), MB), "tally-mismatch")
    refused(check_finalize(claim(), live, FINALIZER, now, "rejected", Tally(1, 2, 1), MB), "tally-mismatch")
    refused(check_finalize(claim(), live, FINALIZER, now, "open", Tally(1, 2, 0), MB), "bad-outcome")
    refused(check_finalize(claim(), live, FINALIZER, now, "withdrawn", Tally(1, 2, 0), MB), "bad-outcome")


def test_finalize_of_a_closed_claim_is_refused() -> None:
    for status in ("accepted", "rejected", "withdrawn"):
        decision = check_finalize(claim(status=status), [], FINALIZER, T0 + 8 * DAY, "accepted", Tally(0, 0, 0), MB)
        refused(decision, "not-open")
        assert status in (decision.detail or "")


def test_finalizers_can_be_restricted() -> None:
    only = Rules(finalizers=frozenset({FINALIZER}))
    now = T0 + 7 * DAY
    assert check_finalize(claim(), [], FINALIZER, now, "accepted", Tally(0, 0, 0), only).ok
    refused(check_finalize(claim(), [], "PUB_K1_other", now, "accepted", Tally(0, 0, 0), only), "finalizer-not-allowed")


def test_finalize_checks_run_in_the_documented_order() -> None:
    only = Rules(finalizers=frozenset({FINALIZER}))
    early = T0 + 1
    # closed beats everything, then the finaliser, the outcome word, the timing, the tally
    refused(check_finalize(claim(status="accepted"), [], "x", early, "open", Tally(9, 9, 9), only), "not-open")
    refused(check_finalize(claim(), [], "x", early, "open", Tally(9, 9, 9), only), "finalizer-not-allowed")
    refused(check_finalize(claim(), [], FINALIZER, early, "open", Tally(9, 9, 9), only), "bad-outcome")
    refused(check_finalize(claim(), [], FINALIZER, early, "rejected", Tally(9, 9, 9), only), "premature")
    late = T0 + 7 * DAY
    refused(check_finalize(claim(), [], FINALIZER, late, "rejected", Tally(9, 9, 9), only), "tally-mismatch")
    refused(check_finalize(claim(), [], FINALIZER, late, "rejected", Tally(0, 0, 0), only), "outcome-mismatch")


# --- rewards --------------------------------------------------------------------------------

PAYER = "PUB_K1_payer"
ALICE = "PUB_K1_alice"
BOB = "PUB_K1_bob"
PAYING = Rules(reward_distributors=frozenset({PAYER}))
ACCEPTED = {"c1": ALICE, "c2": ALICE, "c3": BOB}


def pay(recipient: str, amount: Any, *claim_ids: str) -> dict[str, Any]:
    return {"recipient": recipient, "amount": amount, "claim_ids": list(claim_ids)}


def test_rewards_valid() -> None:
    allocations = [pay(ALICE, 70, "c1", "c2"), pay(BOB, 30, "c3")]
    assert check_rewards(allocations, 100, ACCEPTED, {}, PAYER, PAYING).ok
    # someone else paid for the same claim earlier does not block this recipient
    assert check_rewards([pay(BOB, 1, "c3")], 1, ACCEPTED, {"c3": {ALICE}}, PAYER, PAYING).ok
    assert check_rewards([{"recipient": BOB, "amount": 1, "claim_ids": ("c3",)}], 5, ACCEPTED, {}, PAYER, PAYING).ok


@pytest.mark.parametrize(
    ("allocations", "pool", "already", "rule"),
    [
        ([pay(ALICE, 10, "c1")], -1, {}, "bad-pool"),
        ([pay(ALICE, 10, "c1")], True, {}, "bad-pool"),
        ([{"recipient": ALICE, "amount": 1}], 10, {}, "bad-allocation"),
        ([pay(ALICE, 1)], 10, {}, "bad-allocation"),
        ([{"recipient": 7, "amount": 1, "claim_ids": ["c1"]}], 10, {}, "bad-allocation"),
        ([{"recipient": ALICE, "amount": 1, "claim_ids": "c1"}], 10, {}, "bad-allocation"),
        ([pay(ALICE, 0, "c1")], 10, {}, "bad-amount"),
        ([pay(ALICE, True, "c1")], 10, {}, "bad-amount"),
        ([pay(ALICE, 1.5, "c1")], 10, {}, "bad-amount"),
        ([pay(ALICE, 1, "c1"), pay(ALICE, 1, "c2")], 10, {}, "duplicate-recipient"),
        ([pay(ALICE, 1, "c1", "c1")], 10, {}, "duplicate-claim"),
        ([pay(ALICE, 1, "c9")], 10, {}, "claim-not-accepted"),
        ([pay(BOB, 1, "c1")], 10, {}, "not-claim-author"),
        ([pay(ALICE, 1, "c1", "c3")], 10, {}, "not-claim-author"),
        ([pay(ALICE, 1, "c1")], 10, {"c1": {ALICE}}, "already-rewarded"),
        ([pay(ALICE, 60, "c1"), pay(BOB, 41, "c3")], 100, {}, "over-pool"),
    ],
)
def test_rewards_refused(allocations: list[dict[str, Any]], pool: Any, already: dict[str, set[str]], rule: str) -> None:
    refused(check_rewards(allocations, pool, ACCEPTED, already, PAYER, PAYING), rule)


def test_rewards_pool_bound_is_inclusive() -> None:
    assert check_rewards([pay(ALICE, 100, "c1")], 100, ACCEPTED, {}, PAYER, PAYING).ok
    refused(check_rewards([pay(ALICE, 101, "c1")], 100, ACCEPTED, {}, PAYER, PAYING), "over-pool")


def test_rewards_are_off_by_default_and_limited_to_distributors() -> None:
    allocations = [pay(ALICE, 1, "c1")]
    refused(check_rewards(allocations, 1, ACCEPTED, {}, PAYER, MB), "distributor-not-allowed")
    refused(check_rewards(allocations, 1, ACCEPTED, {}, ALICE, PAYING), "distributor-not-allowed")


def test_rewards_detail_names_the_allocation() -> None:
    decision = check_rewards([pay(ALICE, 1, "c1"), pay(BOB, 1, "c9")], 10, ACCEPTED, {}, PAYER, PAYING)
    refused(decision, "claim-not-accepted")
    assert "allocations[1].claim_ids[0]" in (decision.detail or "")


# --- properties -----------------------------------------------------------------------------

small_rules = st.builds(
    Rules,
    min_votes=st.integers(1, 4),
    voting_period=st.integers(0, 20),
    no_vote_extension=st.integers(0, 20),
    destructive_min_open=st.integers(0, 20),
    accept_unreviewed=st.booleans(),
    accept_unreviewed_destructive=st.booleans(),
)
vote_values = st.sampled_from(["yes", "no", "abstain"])


@st.composite
def claims_and_ballots(draw: st.DrawFn) -> tuple[Claim, list[Ballot]]:
    kind = draw(st.sampled_from(["claim", "merge", "split"]))
    opened = draw(st.integers(0, 10))
    amended = draw(st.none() | st.integers(opened, opened + 10))
    c = Claim(
        claim_id="c",
        kind=kind,
        author=AUTHOR,
        opened_at=opened,
        amended_at=amended,
        destructive=kind != "claim" or draw(st.booleans()),
        status="open",
    )
    start = opened if amended is None else amended
    votes = draw(st.lists(st.tuples(vote_values, st.integers(start, start + 40)), max_size=8))
    return c, [Ballot(voter=f"v{i}", vote=v, at=at) for i, (v, at) in enumerate(votes)]  # type: ignore[arg-type]


@settings(max_examples=400, deadline=None)
@given(claims_and_ballots(), small_rules, st.integers(0, 100), st.integers(0, 100))
def test_outcome_is_monotone_once_closed(cb: tuple[Claim, list[Ballot]], rules: Rules, t: int, dt: int) -> None:
    c, live = cb
    t += max([b.at for b in live] + [c.opened_at])  # no ballot arrives after t
    first = outcome_at(c, live, t, rules)
    if first != "open":
        assert outcome_at(c, live, t + dt, rules) == first


@settings(max_examples=400, deadline=None)
@given(claims_and_ballots(), small_rules)
def test_never_closes_before_closes_at(cb: tuple[Claim, list[Ballot]], rules: Rules) -> None:
    c, live = cb
    closing = closes_at(c, live, rules)
    start = c.opened_at if c.amended_at is None else c.amended_at
    assert start <= closing <= expires_at(c, live, rules)
    assert outcome_at(c, live, closing, rules) != "open"
    for t in range(start - 2, closing):
        assert outcome_at(c, live, t, rules) == "open"


@settings(max_examples=400, deadline=None)
@given(claims_and_ballots(), small_rules, st.integers(0, 80))
def test_destructive_claims_never_close_before_their_minimum(
    cb: tuple[Claim, list[Ballot]], rules: Rules, t: int
) -> None:
    c, live = cb
    assume(c.destructive)
    start = c.opened_at if c.amended_at is None else c.amended_at
    if t < start + rules.destructive_min_open:
        assert outcome_at(c, live, t, rules) == "open"


@settings(max_examples=400, deadline=None)
@given(claims_and_ballots(), small_rules, st.integers(0, 80))
def test_author_always_has_the_response_time_after_the_first_no(
    cb: tuple[Claim, list[Ballot]], rules: Rules, t: int
) -> None:
    c, live = cb
    counted_no = [b.at for b in live if b.vote == "no" and b.at <= t]
    if counted_no and outcome_at(c, live, t, rules) == "rejected":
        assert t >= min(counted_no) + rules.no_vote_extension


@settings(max_examples=400, deadline=None)
@given(
    claims_and_ballots(),
    small_rules,
    st.integers(0, 80),
    st.sampled_from(["accepted", "rejected"]),
    st.none() | st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)),
)
def test_finalize_accepts_exactly_the_ruled_outcome_with_the_recount(
    cb: tuple[Claim, list[Ballot]],
    rules: Rules,
    now: int,
    stated: str,
    other_tally: tuple[int, int, int] | None,
) -> None:
    c, live = cb
    recount = tally(b for b in live if b.at <= now)
    stated_tally = recount if other_tally is None else Tally(*other_tally)
    decision = check_finalize(c, live, FINALIZER, now, stated, stated_tally, rules)
    assert decision.ok == (outcome_at(c, live, now, rules) == stated and stated_tally == recount)
    if not decision.ok:
        assert decision.rule in REFUSALS


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), vote_values), max_size=20))
def test_tally_of_live_ballots_counts_each_voter_once_with_their_latest_vote(
    history: list[tuple[str, str]],
) -> None:
    latest: dict[str, Ballot] = {}
    for at, (voter, vote) in enumerate(history):
        latest[voter] = Ballot(voter=voter, vote=vote, at=at)  # type: ignore[arg-type]
    counted = tally(latest.values())
    assert counted.yes + counted.no + counted.abstain == len({voter for voter, _ in history})
    final = dict(history)  # the last vote of each voter
    for value in ("yes", "no", "abstain"):
        assert getattr(counted, value) == sum(1 for vote in final.values() if vote == value)
