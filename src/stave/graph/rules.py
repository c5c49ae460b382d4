"""The governance rules of the music graph: every decision about claims, votes and rewards.

Pure: no I/O and no clock. Time is always a parameter, in **log time** (the running maximum of
``created_at`` over the log up to an entry, computed by the projection), so every replica that
replays the log reaches the same decisions. The projection loads claim and ballot state from
its tables, asks these functions, and stores what they answer. ``docs/governance.md`` states
every rule in prose and lists every refusal's ``rule`` name; the two must agree.

The timing rules follow MusicBrainz's edit system (3 unanimous votes close early, 7 days open,
at least 72 h to respond after the first No, destructive edits open at least 48 h).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from stave.errors import ConfigError

__all__ = [
    "REFUSALS",
    "Ballot",
    "Claim",
    "ClaimKind",
    "ClaimStatus",
    "Decision",
    "Rules",
    "Tally",
    "VoteValue",
    "check_amend",
    "check_finalize",
    "check_rewards",
    "check_vote",
    "check_withdraw",
    "closes_at",
    "expires_at",
    "is_destructive",
    "outcome_at",
    "tally",
    "unknown_claim",
]

ClaimKind = Literal["claim", "merge", "split"]
ClaimStatus = Literal["open", "withdrawn", "accepted", "rejected"]
VoteValue = Literal["yes", "no", "abstain"]

# Every ``Decision.rule`` a refusal can carry, with its meaning (docs/governance.md lists the same).
REFUSALS: Mapping[str, str] = {
    "unknown-claim": "the event names a claim id that is not a proposal in the log before it",
    "not-open": "the claim is already withdrawn, accepted or rejected",
    "own-claim": "the author of a claim may not vote on it",
    "voter-not-allowed": "graph.voters is set and the voter is not in it",
    "not-author": "only the claim's author may amend or withdraw it",
    "not-amendable": "merges and splits cannot be amended; withdraw and propose again",
    "finalizer-not-allowed": "graph.finalizers is set and the finaliser is not in it",
    "bad-outcome": "the stated outcome is not 'accepted' or 'rejected'",
    "premature": "the rules do not allow the claim to close yet at this log time",
    "tally-mismatch": "the stated tally differs from the recount of live ballots",
    "outcome-mismatch": "the stated outcome differs from the outcome the rules give",
    "distributor-not-allowed": "the author is not in graph.reward_distributors",
    "bad-pool": "the pool is not a non-negative integer",
    "bad-allocation": "an allocation is not {recipient, amount, claim_ids[]} of the right types",
    "bad-amount": "an allocation's amount is not a positive integer",
    "duplicate-recipient": "a recipient appears in two allocations of one distribution",
    "duplicate-claim": "an allocation names the same claim twice",
    "claim-not-accepted": "an allocation names a claim that is not accepted",
    "not-claim-author": "an allocation pays someone who did not author the claim it names",
    "already-rewarded": "the recipient was already rewarded for that claim",
    "over-pool": "the allocations add up to more than the pool",
}

_DESTRUCTIVE_OPS = frozenset({"unset", "remove"})
_KNOWN_OPS = frozenset({"set", "unset", "add", "remove"})
_OUTCOMES = ("accepted", "rejected")


@dataclass(frozen=True, slots=True)
class Rules:
    """The governance constants; MusicBrainz's by default, set from the ``[graph]`` settings.

    Every replica must use the same rules to derive the same graph: they are part of what the
    projection means, and changing them needs a rebuild. ``None`` in a key set means anyone,
    an empty set means nobody.
    """

    min_votes: int = 3
    """Unanimous Yes votes that accept a claim early (and unanimous No votes that reject it)."""
    voting_period: int = 7 * 86400
    """Seconds of log time a claim stays open, counted from its opening or latest amendment."""
    no_vote_extension: int = 72 * 3600
    """After the first live No, the claim stays open at least this long."""
    destructive_min_open: int = 48 * 3600
    """Merges, splits and removals are never closed earlier than this after their start."""
    accept_unreviewed: bool = True
    """Outcome at expiry of a non-destructive claim nobody voted Yes or No on (MusicBrainz: accept)."""
    accept_unreviewed_destructive: bool = False
    """The same for destructive claims: a merge nobody looked at does not fold nodes."""
    voters: frozenset[str] | None = None
    """Public keys allowed to vote; ``None``: anyone but the claim's author."""
    finalizers: frozenset[str] | None = None
    """Public keys allowed to finalise; ``None``: anyone (the outcome is re-checked anyway)."""
    reward_distributors: frozenset[str] = frozenset()
    """Public keys allowed to distribute rewards; empty (the default): rewards are off."""

    def __post_init__(self) -> None:
        for name in ("min_votes", "voting_period", "no_vote_extension", "destructive_min_open"):
            value = getattr(self, name)
            least = 1 if name == "min_votes" else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigError(f"graph.{name}: expected an integer >= {least}, got {value!r}")
        for name in ("accept_unreviewed", "accept_unreviewed_destructive"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise ConfigError(f"graph.{name}: expected true or false, got {value!r}")
        for name in ("voters", "finalizers", "reward_distributors"):
            value = getattr(self, name)
            if value is None and name != "reward_distributors":
                continue
            if not isinstance(value, frozenset) or not all(isinstance(k, str) for k in value):
                raise ConfigError(f"graph.{name}: expected a set of public keys, got {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class Claim:
    """A proposal (ADD_CLAIM, MERGE_NODE or SPLIT_NODE) as the projection stores it."""

    claim_id: str
    kind: ClaimKind
    author: str
    opened_at: int
    amended_at: int | None
    destructive: bool
    status: ClaimStatus


@dataclass(frozen=True, slots=True)
class Ballot:
    """A voter's live (latest) vote on a claim since its latest amendment."""

    voter: str
    vote: VoteValue
    at: int


@dataclass(frozen=True, slots=True)
class Tally:
    yes: int
    no: int
    abstain: int


@dataclass(frozen=True, slots=True)
class Decision:
    """``ok``, or a refusal with a stable machine-readable ``rule`` and a human ``detail``."""

    ok: bool
    rule: str | None = None
    detail: str | None = None


_ALLOWED = Decision(ok=True)


def _refuse(rule: str, detail: str) -> Decision:
    assert rule in REFUSALS, rule  # every refusal is listed and documented
    return Decision(ok=False, rule=rule, detail=detail)


def unknown_claim(claim_id: str) -> Decision:
    """The refusal for an event naming a claim the log does not hold (checked by the projection)."""
    return _refuse("unknown-claim", f"no proposal with id {claim_id} precedes this event")


def tally(ballots: Iterable[Ballot]) -> Tally:
    """Count the ballots given (the caller passes only live ones)."""
    counts = {"yes": 0, "no": 0, "abstain": 0}
    for ballot in ballots:
        counts[ballot.vote] += 1
    return Tally(yes=counts["yes"], no=counts["no"], abstain=counts["abstain"])


def is_destructive(kind: ClaimKind, changes: Sequence[Mapping[str, Any]]) -> bool:
    """Merges and splits always; a claim that unsets, removes or sets a field to null.

    An unknown op counts as destructive, so a malformed claim gets the stricter timing.
    """
    if kind != "claim":
        return True
    for change in changes:
        op = change.get("op")
        if op in _DESTRUCTIVE_OPS or op not in _KNOWN_OPS:
            return True
        if op == "set" and change.get("value") is None:
            return True
    return False


def _start(claim: Claim) -> int:
    # An amendment restarts the clock: voters get a full period to review the new changes.
    return claim.opened_at if claim.amended_at is None else claim.amended_at


def _first_no(ballots: Sequence[Ballot]) -> int | None:
    return min((b.at for b in ballots if b.vote == "no"), default=None)


def _expiry(claim: Claim, ballots: Sequence[Ballot], rules: Rules) -> int:
    start = _start(claim)
    expiry = start + rules.voting_period
    if claim.destructive:
        expiry = max(expiry, start + rules.destructive_min_open)
    first_no = _first_no(ballots)
    if first_no is not None:
        expiry = max(expiry, first_no + rules.no_vote_extension)
    return expiry


def expires_at(claim: Claim, ballots: Sequence[Ballot], rules: Rules) -> int:
    """Log time at which the claim's voting period ends with these ballots (No votes extend it).

    A claim may close earlier by unanimous votes; see ``closes_at``.
    """
    return _expiry(claim, ballots, rules)


def _rule_outcome(claim: Claim, ballots: Sequence[Ballot], now: int, rules: Rules) -> ClaimStatus:
    """What the timing and vote rules give at ``now``, ignoring the stored status."""
    counted = [b for b in ballots if b.at <= now]
    votes = tally(counted)
    start = _start(claim)
    # (0) Nothing closes before the start; a destructive claim, before its minimum open time.
    if now < start + (rules.destructive_min_open if claim.destructive else 0):
        return "open"
    # (1) Unanimous Yes closes early.
    if votes.yes >= rules.min_votes and votes.no == 0:
        return "accepted"
    # (2) Unanimous No closes early, but the author keeps time to respond to the first No.
    first_no = _first_no(counted)
    if (
        votes.no >= rules.min_votes
        and votes.yes == 0
        and first_no is not None
        and now >= first_no + rules.no_vote_extension
    ):
        return "rejected"
    # (3) At expiry: a majority of Yes over No accepts; a tie or more No rejects; no Yes or No
    #     at all (abstentions only, or no ballot) takes the configured unreviewed outcome.
    if now < _expiry(claim, counted, rules):
        return "open"
    if votes.yes or votes.no:
        return "accepted" if votes.yes > votes.no else "rejected"
    accept = rules.accept_unreviewed_destructive if claim.destructive else rules.accept_unreviewed
    return "accepted" if accept else "rejected"


def outcome_at(claim: Claim, ballots: Sequence[Ballot], now: int, rules: Rules) -> ClaimStatus:
    """The claim's status by the rules at log time ``now``, counting ballots cast by then.

    A claim already withdrawn or finalised keeps its stored status; an open one is ``"open"``
    while undecided, else the outcome a FINALIZE at ``now`` must state.
    """
    if claim.status != "open":
        return claim.status
    return _rule_outcome(claim, ballots, now, rules)


def closes_at(claim: Claim, ballots: Sequence[Ballot], rules: Rules) -> int:
    """The earliest log time at which the rules decide the claim, given these ballots.

    The outcome only changes when a ballot arrives or a deadline passes, so the earliest
    decided moment is one of those times.
    """
    start = _start(claim)
    candidates = {start, start + rules.voting_period}
    if claim.destructive:
        candidates.add(start + rules.destructive_min_open)
    for ballot in ballots:
        candidates.add(ballot.at)
        if ballot.vote == "no":
            candidates.add(ballot.at + rules.no_vote_extension)
    for moment in sorted(candidates):
        if _rule_outcome(claim, ballots, moment, rules) != "open":
            return moment
    # Unreachable: at the expiry computed from every ballot the rules always decide.
    return _expiry(claim, ballots, rules)


def _require_open(claim: Claim) -> Decision | None:
    if claim.status != "open":
        return _refuse("not-open", f"claim {claim.claim_id} is {claim.status}, not open")
    return None


def check_vote(claim: Claim, voter: str, now: int, rules: Rules) -> Decision:
    """A VOTE counts while the claim is open (until finalisation), by anyone but its author."""
    if refused := _require_open(claim):
        return refused
    if voter == claim.author:
        return _refuse("own-claim", f"{voter} wrote claim {claim.claim_id} and may not vote on it")
    if rules.voters is not None and voter not in rules.voters:
        return _refuse("voter-not-allowed", f"{voter} is not in graph.voters")
    return _ALLOWED


def check_amend(claim: Claim, editor: str, now: int, rules: Rules) -> Decision:
    """An EDIT_CLAIM: by the author, while open, of an ADD_CLAIM (votes and clock restart)."""
    if refused := _require_open(claim):
        return refused
    if editor != claim.author:
        return _refuse("not-author", f"claim {claim.claim_id} was written by {claim.author}, not {editor}")
    if claim.kind != "claim":
        return _refuse(
            "not-amendable",
            f"claim {claim.claim_id} is a {claim.kind}; only ADD_CLAIM proposals can be amended",
        )
    return _ALLOWED


def check_withdraw(claim: Claim, author: str, now: int, rules: Rules) -> Decision:
    """A DELETE_CLAIM: by the author, while the claim is open."""
    if refused := _require_open(claim):
        return refused
    if author != claim.author:
        return _refuse("not-author", f"claim {claim.claim_id} was written by {claim.author}, not {author}")
    return _ALLOWED


def _show(t: Tally) -> str:
    return f"yes={t.yes} no={t.no} abstain={t.abstain}"


def check_finalize(
    claim: Claim,
    ballots: Sequence[Ballot],
    finalizer: str,
    now: int,
    stated_outcome: str,
    stated_tally: Tally,
    rules: Rules,
) -> Decision:
    """A FINALIZE is valid only if it states exactly what the rules give at its log time."""
    # (1) Only an open claim can be closed.
    if refused := _require_open(claim):
        return refused
    # (2) The finaliser must be allowed (anyone, unless graph.finalizers is set).
    if rules.finalizers is not None and finalizer not in rules.finalizers:
        return _refuse("finalizer-not-allowed", f"{finalizer} is not in graph.finalizers")
    # (3) The outcome must be a closing one.
    if stated_outcome not in _OUTCOMES:
        return _refuse("bad-outcome", f"outcome must be 'accepted' or 'rejected', got {stated_outcome!r}")
    # (4) The rules must have decided by now.
    ruled = _rule_outcome(claim, ballots, now, rules)
    if ruled == "open":
        earliest = closes_at(claim, ballots, rules)
        return _refuse(
            "premature",
            f"claim {claim.claim_id} cannot close before log time {earliest} "
            f"({earliest - now} s later than this FINALIZE at {now})",
        )
    # (5) The stated tally must equal the recount of live ballots.
    recount = tally(b for b in ballots if b.at <= now)
    if stated_tally != recount:
        return _refuse("tally-mismatch", f"stated {_show(stated_tally)}, recounted {_show(recount)}")
    # (6) The stated outcome must be the one the rules give.
    if stated_outcome != ruled:
        return _refuse(
            "outcome-mismatch",
            f"stated {stated_outcome}, but the rules give {ruled} with {_show(recount)}",
        )
    return _ALLOWED


def _as_count(value: object) -> int | None:
    """``value`` if it is an integer (JSON booleans are not), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def check_rewards(
    allocations: Sequence[Mapping[str, Any]],
    pool: int,
    accepted: Mapping[str, str],
    already_rewarded: Mapping[str, set[str]],
    distributor: str,
    rules: Rules,
) -> Decision:
    """A DISTRIBUTE_REWARDS pays authors of accepted claims, each claim once, within the pool.

    ``accepted`` maps the id of every accepted claim to its author; ``already_rewarded`` the
    claim ids to the recipients earlier valid distributions paid for them.
    """
    if distributor not in rules.reward_distributors:
        return _refuse("distributor-not-allowed", f"{distributor} is not in graph.reward_distributors")
    if _as_count(pool) is None or pool < 0:
        return _refuse("bad-pool", f"pool must be a non-negative integer, got {pool!r}")
    recipients: set[str] = set()
    total = 0
    for i, allocation in enumerate(allocations):
        where = f"allocations[{i}]"
        recipient = allocation.get("recipient")
        raw_amount = allocation.get("amount")
        claim_ids = allocation.get("claim_ids")
        if (
            not isinstance(recipient, str)
            or not isinstance(claim_ids, list | tuple)
            or not claim_ids
            or not all(isinstance(c, str) for c in claim_ids)
        ):
            return _refuse(
                "bad-allocation",
                f"{where}: expected recipient (string) and claim_ids (non-empty list of ids)",
            )
        amount = _as_count(raw_amount)
        if amount is None or amount < 1:
            return _refuse("bad-amount", f"{where}.amount: expected an integer >= 1, got {raw_amount!r}")
        if recipient in recipients:
            return _refuse("duplicate-recipient", f"{where}: {recipient} already has an allocation")
        recipients.add(recipient)
        seen: set[str] = set()
        for j, claim_id in enumerate(claim_ids):
            at = f"{where}.claim_ids[{j}]"
            if claim_id in seen:
                return _refuse("duplicate-claim", f"{at}: claim {claim_id} is named twice")
            seen.add(claim_id)
            author = accepted.get(claim_id)
            if author is None:
                return _refuse("claim-not-accepted", f"{at}: claim {claim_id} is not accepted")
            if author != recipient:
                return _refuse(
                    "not-claim-author",
                    f"{at}: claim {claim_id} was written by {author}, not {recipient}",
                )
            if recipient in already_rewarded.get(claim_id, ()):
                return _refuse(
                    "already-rewarded",
                    f"{at}: {recipient} was already rewarded for claim {claim_id}",
                )
        total += amount
    if total > pool:
        return _refuse("over-pool", f"allocations total {total}, more than the pool of {pool}")
    return _ALLOWED
