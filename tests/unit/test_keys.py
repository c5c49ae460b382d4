"""EOS/Antelope K1 keys and signatures against eosjs-made vectors and the base58 reference."""

from __future__ import annotations

import hashlib
from typing import Any

import base58
import coincurve
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stave.errors import KeyFormatError, SignatureError, VerificationError
from stave.event import PrivateKey, PublicKey, Signature
from stave.event.base58 import b58decode, b58encode
from stave.event.keys import CURVE_ORDER, is_eos_canonical


@settings(max_examples=300)
@given(st.binary(max_size=80))
def test_base58_matches_reference(data: bytes) -> None:
    encoded = b58encode(data)
    assert encoded == base58.b58encode(data).decode()
    assert b58decode(encoded) == data


def test_base58_names_the_bad_character() -> None:
    with pytest.raises(ValueError, match=r"invalid base58 character '0' at position 2"):
        b58decode("110")


def test_keys_match_eosjs(eosjs_vectors: dict[str, Any]) -> None:
    for vector in eosjs_vectors["keys"]:
        key = PrivateKey(bytes.fromhex(vector["private_hex"]))
        assert key.to_string() == vector["private_pvt_k1"]
        assert key.to_wif() == vector["private_wif"]
        assert key.public_key.to_string() == vector["public_pub_k1"]
        assert key.public_key.to_legacy_string() == vector["public_legacy"]
        assert key.public_key.data.hex() == vector["public_hex"]
        assert PrivateKey.from_string(vector["private_pvt_k1"]).secret == key.secret
        assert PrivateKey.from_string(vector["private_wif"]).secret == key.secret
        assert PublicKey.from_string(vector["public_legacy"]) == key.public_key
        assert PublicKey.from_string(vector["public_pub_k1"]) == key.public_key


def test_eosjs_signatures_verify(eosjs_vectors: dict[str, Any]) -> None:
    for vector in eosjs_vectors["signatures"]:
        digest = bytes.fromhex(vector["digest_hex"])
        signature = Signature.from_string(vector["sig"])
        assert signature.data.hex() == vector["sig_hex"]
        assert signature.to_string() == vector["sig"]
        signature.verify(digest, PublicKey.from_string(vector["public_pub_k1"]))


def test_our_signatures_are_canonical_deterministic_and_recover(eosjs_vectors: dict[str, Any]) -> None:
    for vector in eosjs_vectors["signatures"]:
        key = PrivateKey.from_string(eosjs_vectors["keys"][vector["key_index"]]["private_pvt_k1"])
        digest = bytes.fromhex(vector["digest_hex"])
        signature = key.sign_digest(digest)
        assert is_eos_canonical(signature.data)
        assert 31 <= signature.data[0] <= 34
        assert key.sign_digest(digest) == signature  # RFC 6979: same key and digest, same signature
        assert signature.recover(digest) == key.public_key


NEGATIVE_SIGNATURE_CASES = [
    "sig-k1-bad-checksum",
    "high-s",
    "non-canonical-r",
    "sig-r1-type",
    "truncated-sig",
    "sig-64-bytes",
]


@pytest.mark.parametrize("name", NEGATIVE_SIGNATURE_CASES)
def test_negative_signature_vectors_are_refused(eosjs_vectors: dict[str, Any], name: str) -> None:
    case = _negative(eosjs_vectors, name)
    digest = bytes.fromhex(case["digest_hex"])
    with pytest.raises(VerificationError) as info:
        Signature.from_string(case["sig"]).verify(digest, PublicKey.from_string(case["public_pub_k1"]))
    assert isinstance(info.value, (KeyFormatError, SignatureError))


def test_high_s_is_refused_for_the_right_reason(eosjs_vectors: dict[str, Any]) -> None:
    case = _negative(eosjs_vectors, "high-s")
    signature = Signature.from_string(case["sig"])
    with pytest.raises(SignatureError, match="high"):
        signature.recover(bytes.fromhex(case["digest_hex"]))
    # It is still valid ECDSA: only the low-S rule refuses it.
    raw = signature.data
    recovered = coincurve.PublicKey.from_signature_and_message(
        raw[1:] + bytes([raw[0] - 31]), bytes.fromhex(case["digest_hex"]), hasher=None
    )
    assert recovered.format() == PublicKey.from_string(case["public_pub_k1"]).data


@pytest.mark.parametrize("name", ["pub-k1-bad-checksum", "legacy-pub-bad-checksum", "pub-r1-type"])
def test_negative_public_key_vectors_are_refused(eosjs_vectors: dict[str, Any], name: str) -> None:
    with pytest.raises(KeyFormatError):
        PublicKey.from_string(_negative(eosjs_vectors, name)["pubkey"])


@pytest.mark.parametrize("name", ["pvt-k1-bad-checksum", "wif-bad-checksum"])
def test_negative_private_key_vectors_are_refused(eosjs_vectors: dict[str, Any], name: str) -> None:
    case = _negative(eosjs_vectors, name)
    with pytest.raises(KeyFormatError, match="checksum"):
        PrivateKey.from_string(case["private"])
    PrivateKey.from_string(case["valid_form"])  # the unmutated form parses


def _negative(vectors: dict[str, Any], name: str) -> dict[str, Any]:
    case: dict[str, Any] = next(item for item in vectors["negative"] if item["name"] == name)
    return case


def test_wrong_key_is_named() -> None:
    signer, other = PrivateKey(b"\x01" * 32), PrivateKey(b"\x02" * 32)
    digest = hashlib.sha256(b"x").digest()
    with pytest.raises(SignatureError, match=other.public_key.to_string()):
        signer.sign_digest(digest).verify(digest, other.public_key)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "PUB_K1_",
        "PUB_K1_0OIl",
        "EOS1111",
        "XYZ6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV",
        "1PUB_K1_78RGsjnJ9VzYgbCooYAPcLeR6MqjtB24fpTdfULcJyCWKSjbA1",
        "PUB_K1_178RGsjnJ9VzYgbCooYAPcLeR6MqjtB24fpTdfULcJyCWKSjbA1",  # an extra leading '1' eosjs accepts
    ],
)
def test_malformed_public_keys(text: str) -> None:
    with pytest.raises(KeyFormatError):
        PublicKey.from_string(text)


def test_signature_header_must_be_compressed_form(eosjs_vectors: dict[str, Any]) -> None:
    vector = eosjs_vectors["signatures"][0]
    data = bytes.fromhex(vector["sig_hex"])
    uncompressed_header = Signature(bytes([data[0] - 4]) + data[1:])  # 27-30: eosjs accepts it
    with pytest.raises(SignatureError, match="header"):
        uncompressed_header.recover(bytes.fromhex(vector["digest_hex"]))


def test_private_key_out_of_range() -> None:
    for secret in [b"\0" * 32, CURVE_ORDER.to_bytes(32, "big")]:
        with pytest.raises(KeyFormatError, match="range"):
            PrivateKey(secret)


def test_private_key_repr_hides_the_secret() -> None:
    key = PrivateKey(b"\x07" * 32)
    assert key.to_string() not in repr(key)
    assert b58encode(key.secret) not in repr(key)


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_sign_recover_round_trip(secret: bytes, digest: bytes) -> None:
    if not 0 < int.from_bytes(secret, "big") < CURVE_ORDER:
        return
    key = PrivateKey(secret)
    signature = key.sign_digest(digest)
    assert Signature.from_string(signature.to_string()) == signature
    assert signature.recover(digest) == key.public_key


def test_base58_c_and_python_decoders_agree() -> None:
    from stave.event import base58 as module

    assert module._b58decode_c is not None, "the C accelerator was not built"
    for text in ["", "1", "111", "1112", "z" * 120, "5KXW2qTBXWy8CRdhPyBYQNveHJZza77cy6AeYr3Sazy5Y6ZtjAM"]:
        assert module._b58decode_c(text) == module._b58decode_python(text) == base58.b58decode(text)
    for bad in ["0", "abc0", "Il", "é1"]:
        with pytest.raises(ValueError, match="invalid base58 character") as c_error:
            module._b58decode_c(bad)
        with pytest.raises(ValueError, match="invalid base58 character") as py_error:
            module._b58decode_python(bad)
        if bad.isascii():
            assert str(c_error.value) == str(py_error.value)


@settings(max_examples=300)
@given(st.binary(max_size=100))
def test_base58_c_decoder_matches_reference(data: bytes) -> None:
    from stave.event import base58 as module

    assert module._b58decode_c is not None
    assert module._b58decode_c(base58.b58encode(data).decode()) == data
