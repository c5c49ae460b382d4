"""Coverage-guided fuzzing (atheris, libFuzzer) of the event core's parsers and of admission.

    python -m tests.hostile.atheris_targets TARGET CORPUS_DIR [libFuzzer flags, e.g. -max_total_time=60]

Targets (the same properties as the hypothesis targets in ``test_fuzz.py``):

- ``json``: strict JSON; both paths and the reference agree, accepted values canonicalise as ``rfc8785``;
- ``keys``: ``PUB_K1_``/``EOS``/``PVT_K1_``/WIF strings parse or raise a ``stave.errors`` error;
- ``signatures``: ``SIG_K1_`` strings parse and recover a key from a digest, or raise one;
- ``admission``: any bytes are admitted as an event that re-admits to itself, or refused with a
  ``VerificationError``.

Anything else raised is a finding: libFuzzer stops, writes the input to ``-artifact_prefix`` and
exits non-zero. ``write_seeds`` fills a corpus directory with valid inputs to mutate from.
``test_atheris.py`` runs each target briefly in ``make test`` and for a bounded time in ``make drill``.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["stave"]):
    from stave.errors import JSONError, StaveError, VerificationError
    from stave.event import PrivateKey, PublicKey, Signature, admit, strictjson
    from stave.event.strictjson import DEFAULT_LIMITS

import rfc8785

from tests.hostile.reference import reference_loads, same

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
_DIGEST = hashlib.sha256(b"stave atheris digest").digest()


def _outcome(parse: Callable[[], strictjson.ParsedJson]) -> tuple[bool, object, bool]:
    try:
        parsed = parse()
    except JSONError:
        return False, None, False
    return True, parsed.value, parsed.sorted_is_canonical


def fuzz_json(data: bytes) -> None:
    fast = _outcome(lambda: strictjson.parse(data))
    slow = _outcome(lambda: strictjson._parse_slow(data, DEFAULT_LIMITS, None))
    accepted, value = reference_loads(data)
    if not fast[0] == slow[0] == accepted:
        raise AssertionError(f"paths disagree: fast {fast[0]}, slow {slow[0]}, reference {accepted}")
    if accepted:
        if not (same(fast[1], value) and same(slow[1], value)):
            raise AssertionError(f"values differ: {fast[1]!r} {slow[1]!r} {value!r}")
        expected = rfc8785.dumps(value)
        for flag in (fast[2], slow[2]):
            if strictjson.canonicalize(value, sorted_is_canonical=flag) != expected:
                raise AssertionError(f"canonical form differs from rfc8785 (sorted_is_canonical={flag})")


def fuzz_keys(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    for parse in (PublicKey.from_string, PrivateKey.from_string):
        try:
            parsed = parse(text)
        except StaveError:
            continue
        if isinstance(parsed, PublicKey) and PublicKey.from_string(parsed.to_string()) != parsed:
            raise AssertionError("a parsed public key does not round-trip")


def fuzz_signatures(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    try:
        signature = Signature.from_string(text)
        signature.recover(_DIGEST)
    except StaveError:
        return
    if Signature.from_string(signature.to_string()) != signature:
        raise AssertionError("a parsed signature does not round-trip")


def fuzz_admission(data: bytes) -> None:
    try:
        event = admit(data)
    except VerificationError:
        return
    if admit(event.canonical_bytes()).id != event.id:
        raise AssertionError("an admitted event does not re-admit to itself")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "json": fuzz_json,
    "keys": fuzz_keys,
    "signatures": fuzz_signatures,
    "admission": fuzz_admission,
}


def write_seeds(target: str, corpus: Path) -> int:
    """Valid inputs for ``target`` in ``corpus`` (libFuzzer mutates from them); returns how many."""
    corpus.mkdir(parents=True, exist_ok=True)
    examples = sorted(EXAMPLES.glob("[0-9]*.json"))
    key = PrivateKey(hashlib.sha256(b"stave atheris key").digest())
    seeds: list[bytes]
    if target in ("json", "admission"):
        seeds = [path.read_bytes() for path in examples if path.stat().st_size < 8192]
        seeds += [b'{"a":[1,2.5,"\\u00e9",null,true]}', b"[9007199254740991]"] if target == "json" else []
    elif target == "keys":
        public = key.public_key
        seeds = [s.encode() for s in (public.to_string(), public.to_legacy_string(), key.to_string(), key.to_wif())]
    else:
        seeds = [key.sign_digest(_DIGEST).to_string().encode()]
    for index, seed in enumerate(seeds):
        (corpus / f"seed-{index:03d}").write_bytes(seed)
    return len(seeds)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: python -m tests.hostile.atheris_targets {{{','.join(TARGETS)}}} [CORPUS] [libFuzzer flags]")
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
