"""C2SP signed notes and checkpoints, held to Go's sumdb/note vectors and the C2SP examples."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stave.errors import KeyFormatError, ProofError, SignatureError, VerificationError
from stave.log.merkle import EMPTY_ROOT
from stave.log.note import (
    MAX_SIGNATURES,
    Checkpoint,
    Signer,
    Verifier,
    key_id,
    open_checkpoint,
    open_note,
    sign_note,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "note" / "vectors.json").read_text(encoding="utf-8")
)
TEXT: str = VECTORS["text"]


@pytest.fixture(scope="module")
def peter() -> Signer:
    return Signer.from_private_key_text(VECTORS["peter_private_key"])


@pytest.fixture(scope="module")
def enoch() -> Verifier:
    return Verifier.from_key(VECTORS["enoch_verifier_key"])


def test_go_keys_parse_and_print_back(peter: Signer, enoch: Verifier) -> None:
    assert peter.name == "PeterNeumann"
    assert peter.key_id == 0xC74F20A3
    assert peter.verifier_key() == VECTORS["peter_verifier_key"]
    assert peter.private_key_text() == VECTORS["peter_private_key"]
    assert Verifier.from_key(VECTORS["peter_verifier_key"]) == peter.verifier()
    assert enoch.name == "EnochRoot"
    assert enoch.key_id == 0xAF0CFE78
    assert enoch.verifier_key() == VECTORS["enoch_verifier_key"]
    assert key_id("PeterNeumann", b"\x01" + peter.public_key) == 0xC74F20A3


def test_signing_reproduces_go_signature_bytes(peter: Signer) -> None:
    assert sign_note(TEXT, [peter]) == VECTORS["signed_by_peter"]
    line = VECTORS["peter_signature_line"]
    raw = base64.b64decode(line.split(" ")[2])
    assert raw[4:] == peter.sign(TEXT.encode())


def test_open_go_notes(peter: Signer, enoch: Verifier) -> None:
    both = VECTORS["signed_by_peter_and_enoch"]
    assert open_note(VECTORS["signed_by_peter"], [peter.verifier()]) == (TEXT, ("PeterNeumann",))
    assert open_note(both, [peter.verifier()]) == (TEXT, ("PeterNeumann",))  # Enoch's is unknown: skipped
    assert open_note(both, [enoch]) == (TEXT, ("EnochRoot",))
    assert open_note(both, [peter.verifier(), enoch]) == (TEXT, ("PeterNeumann", "EnochRoot"))
    assert open_note(both.encode(), [enoch, peter.verifier()]) == (TEXT, ("PeterNeumann", "EnochRoot"))
    # Repeated identical lines (Go's "duplicated verified and unverified signatures" case) are fine.
    doubled = TEXT + "\n" + VECTORS["peter_signature_line"] * 2 + VECTORS["enoch_signature_line"] * 2
    assert open_note(doubled, [peter.verifier()]) == (TEXT, ("PeterNeumann",))


def test_no_known_signature_is_refused(peter: Signer) -> None:
    with pytest.raises(SignatureError, match="no signature from a known key"):
        open_note(VECTORS["signed_by_peter_and_enoch"], [])
    stranger = Signer.generate("PeterNeumann")  # same name, other key: another key ID, so unknown
    with pytest.raises(SignatureError, match="no signature from a known key"):
        open_note(VECTORS["signed_by_peter"], [stranger.verifier()])


@pytest.mark.parametrize("name", sorted(VECTORS["malformed_notes"]))
def test_go_malformed_notes(name: str, peter: Signer) -> None:
    with pytest.raises(VerificationError):
        open_note(VECTORS["malformed_notes"][name], [peter.verifier()])


def test_go_invalid_utf8_note(peter: Signer) -> None:
    note = base64.b64decode(VECTORS["invalid_utf8_note_base64"])
    with pytest.raises(VerificationError, match="not valid UTF-8"):
        open_note(note, [peter.verifier()])


def test_go_invalid_signature(peter: Signer) -> None:
    with pytest.raises(SignatureError, match="does not verify"):
        open_note(VECTORS["invalid_signature"], [peter.verifier()])


@pytest.mark.parametrize("key", sorted(VECTORS["bad_verifier_keys"].values()))
def test_go_bad_verifier_keys(key: str) -> None:
    with pytest.raises(KeyFormatError):
        Verifier.from_key(key)


def _manglings(text: str) -> list[str]:
    """Every proper substring and every one-character increment, as Go's key tests try."""
    cut = {text[i:j] for i in range(len(text) + 1) for j in range(i + 1, len(text) + 1)} - {text}
    bumped = {text[:i] + chr(ord(text[i]) + 1) + text[i + 1 :] for i in range(len(text))}
    return sorted(cut | bumped)


def test_mangled_verifier_keys_are_refused() -> None:
    for text in _manglings(VECTORS["peter_verifier_key"]):
        with pytest.raises(KeyFormatError):
            Verifier.from_key(text)


def test_mangled_signer_keys_are_refused() -> None:
    for text in _manglings(VECTORS["peter_private_key"]):
        with pytest.raises(KeyFormatError) as caught:
            Signer.from_private_key_text(text)
        assert "AYEKFALV" not in str(caught.value), "errors must not quote the secret"


def test_every_changed_character_is_refused(peter: Signer) -> None:
    note = VECTORS["signed_by_peter"]
    for position, char in enumerate(note):
        for replacement in {"x" if char != "x" else "y", "\n"} - {char}:
            mutated = note[:position] + replacement + note[position + 1 :]
            with pytest.raises(VerificationError):
                open_note(mutated, [peter.verifier()])


def test_a_bad_known_signature_rejects_the_whole_note(peter: Signer) -> None:
    bad = base64.b64decode(VECTORS["peter_signature_line"].split(" ")[2])
    bad = bad[:-1] + bytes([bad[-1] ^ 1])
    line = f"— PeterNeumann {base64.b64encode(bad).decode()}\n"
    with pytest.raises(SignatureError, match="known key PeterNeumann\\+c74f20a3 does not verify"):
        open_note(VECTORS["signed_by_peter"] + line, [peter.verifier()])
    short = base64.b64encode(bad[:20]).decode()
    with pytest.raises(SignatureError, match="does not verify"):
        open_note(VECTORS["signed_by_peter"] + f"— PeterNeumann {short}\n", [peter.verifier()])


@pytest.mark.parametrize(
    ("suffix", "error"),
    [
        ("— PeterNeumann\n", VerificationError),  # no signature
        ("— PeterNeumann \n", VerificationError),
        ("— Peter+Neumann x08go/ZJ\n", VerificationError),  # '+' in the name
        ("-- PeterNeumann x08go/ZJ\n", VerificationError),  # not an em dash
        ("— PeterNeumann AAAAAA==\n", SignatureError),  # 4 bytes: no room for a signature
        ("— PeterNeumann x08go/ZJ=\n", SignatureError),  # not canonical base64
        ("— PeterNeumann x08go/Z\n", SignatureError),
        ("— PeterNeumann x08go/ZJ x08go/ZJ\n", SignatureError),
    ],
)
def test_malformed_signature_lines(peter: Signer, suffix: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        open_note(VECTORS["signed_by_peter"] + suffix, [peter.verifier()])


def test_too_many_signatures(peter: Signer) -> None:
    lines = VECTORS["peter_signature_line"] * (MAX_SIGNATURES + 1)
    with pytest.raises(VerificationError, match="at most 100"):
        open_note(TEXT + "\n" + lines, [peter.verifier()])
    assert open_note(TEXT + "\n" + VECTORS["peter_signature_line"] * MAX_SIGNATURES, [peter.verifier()])


def test_conflicting_verifiers_are_a_programming_error(peter: Signer) -> None:
    impostor = Verifier.__new__(Verifier)
    impostor.name, impostor.key_id, impostor.public_key = peter.name, peter.key_id, bytes(32)
    with pytest.raises(ValueError, match="share the name and ID"):
        open_note(VECTORS["signed_by_peter"], [peter.verifier(), impostor])
    assert open_note(VECTORS["signed_by_peter"], [peter.verifier(), peter.verifier()])[1] == ("PeterNeumann",)


def test_sign_note_refuses_bad_bodies(peter: Signer) -> None:
    for body in ["", "no newline", "tab\there\n", "nul\x00\n", "surrogate \ud800\n"]:
        with pytest.raises(ValueError, match="note body"):
            sign_note(body, [peter])
    with pytest.raises(ValueError, match="at least one signer"):
        sign_note(TEXT, [])
    with pytest.raises(ValueError, match="share the key"):
        sign_note(TEXT, [peter, peter])


def test_keys_refuse_bad_names() -> None:
    for name in ["", "a b", "a+b", "a\u00a0b", "a\u2003b", "tab\t", "a\x00"]:
        with pytest.raises(ValueError, match="key name"):
            Signer(name, bytes(32))
    with pytest.raises(ValueError, match="32 bytes"):
        Signer("ok", bytes(31))
    with pytest.raises(KeyFormatError, match="8 lowercase hex digits"):
        Verifier.from_key(VECTORS["peter_verifier_key"].replace("c74f20a3", "C74F20A3"))


def test_signer_repr_hides_the_secret(peter: Signer) -> None:
    assert "AYEKFALV" not in repr(peter)
    assert repr(peter) == "Signer(name='PeterNeumann', key_id=c74f20a3)"


def test_generated_keys_round_trip() -> None:
    signer = Signer.generate("example.com/log")
    again = Signer.from_private_key_text(signer.private_key_text())
    assert again.public_key == signer.public_key
    assert Verifier.from_key(signer.verifier_key()) == signer.verifier()
    note = sign_note("hello\n", [signer])
    assert open_note(note, [again.verifier()]) == ("hello\n", ("example.com/log",))


def test_c2sp_example_note_is_parsed_but_unknown() -> None:
    note = VECTORS["c2sp"]["example_note"]
    stranger = Signer.generate("quasimodo.example/salvatore")
    with pytest.raises(SignatureError, match="no signature from a known key"):
        open_note(note, [stranger.verifier()])


body_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters=[chr(c) for c in range(32) if c != 10]),
    max_size=200,
).map(lambda text: text + "\n")


@settings(max_examples=200, deadline=None)
@given(body_text, st.integers(1, 3))
def test_sign_and_open_round_trip(body: str, count: int) -> None:
    signers = [Signer(f"log{n}.example", bytes([n]) * 32) for n in range(count)]
    note = sign_note(body, signers)
    assert open_note(note, [signer.verifier() for signer in signers]) == (body, tuple(s.name for s in signers))
    assert open_note(note.encode("utf-8"), [signers[-1].verifier()]) == (body, (signers[-1].name,))


# Checkpoints


def test_c2sp_example_checkpoint() -> None:
    text = VECTORS["c2sp"]["example_checkpoint"]
    body = text[: text.rindex("\n\n") + 1]
    checkpoint = Checkpoint.from_body(body)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert checkpoint.root_hash == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert checkpoint.extensions == ()
    assert checkpoint.to_body() == body
    with pytest.raises(SignatureError):
        open_checkpoint(
            text, [Signer.generate("example.com/behind-the-sofa").verifier()], "example.com/behind-the-sofa"
        )


ROOT = bytes(range(32))
ROOT64 = base64.b64encode(ROOT).decode()


def test_checkpoint_with_extensions() -> None:
    checkpoint = Checkpoint("log.example/a", 5, ROOT, ("ext one", "— ext two"))
    body = checkpoint.to_body()
    assert body == f"log.example/a\n5\n{ROOT64}\next one\n— ext two\n"
    assert Checkpoint.from_body(body) == checkpoint
    assert Checkpoint.from_body(f"log\n0\n{base64.b64encode(EMPTY_ROOT).decode()}\n").size == 0


@pytest.mark.parametrize(
    "body",
    [
        f"log\n5\n{ROOT64}",  # no final newline
        f"log\n5\n{ROOT64}\n\n",  # empty extension line
        f"log\n5\n{ROOT64}\n\next\n",
        "log\n5\n",  # too few lines
        f"\n5\n{ROOT64}\n",  # empty origin
        f"log\n05\n{ROOT64}\n",  # leading zero
        f"log\n+5\n{ROOT64}\n",
        f"log\n 5\n{ROOT64}\n",
        f"log\n5 \n{ROOT64}\n",
        f"log\n5_0\n{ROOT64}\n",
        f"log\n\u0665\n{ROOT64}\n",  # an Arabic-Indic five
        f"log\n-1\n{ROOT64}\n",
        f"log\n18446744073709551616\n{ROOT64}\n",  # 2^64
        f"log\n\n{ROOT64}\n",
        "log\n5\nAAAA\n",  # 3 bytes
        f"log\n5\n{ROOT64[:-1]}\n",  # unpadded
        f"log\n5\n{ROOT64[:-2]}B=\n",  # stray bits: not canonical
        f"log\n5\n{ROOT64} \n",
        f"log\n0\n{ROOT64}\n",  # an empty tree has the empty root
        f"log\tx\n5\n{ROOT64}\n",  # control character
    ],
)
def test_checkpoint_refuses_malformed_bodies(body: str) -> None:
    with pytest.raises(VerificationError):
        Checkpoint.from_body(body)


def test_checkpoint_refuses_bad_fields() -> None:
    for origin, size, root, extensions in [
        ("", 1, ROOT, ()),
        ("a\nb", 1, ROOT, ()),
        ("log", -1, ROOT, ()),
        ("log", 2**64, ROOT, ()),
        ("log", True, ROOT, ()),
        ("log", 1, ROOT[:31], ()),
        ("log", 0, ROOT, ()),
        ("log", 1, ROOT, ("",)),
        ("log", 1, ROOT, ["list"]),
    ]:
        with pytest.raises(ValueError, match=r"checkpoint|empty tree"):
            Checkpoint(origin, size, root, extensions)  # type: ignore[arg-type]


def test_open_checkpoint_checks_the_origin() -> None:
    signer = Signer.generate("log.example/a")
    note = sign_note(Checkpoint("log.example/a", 7, ROOT).to_body(), [signer])
    assert open_checkpoint(note, [signer.verifier()], "log.example/a") == Checkpoint("log.example/a", 7, ROOT)
    with pytest.raises(ProofError, match=r"expected origin 'log\.example/b', got 'log\.example/a'"):
        open_checkpoint(note, [signer.verifier()], "log.example/b")


lines = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters=[chr(c) for c in range(32)]),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(lines, st.integers(1, 2**64 - 1), st.binary(min_size=32, max_size=32), st.lists(lines, max_size=3))
def test_checkpoint_round_trip(origin: str, size: int, root: bytes, extensions: list[str]) -> None:
    checkpoint = Checkpoint(origin, size, root, tuple(extensions))
    assert Checkpoint.from_body(checkpoint.to_body()) == checkpoint
