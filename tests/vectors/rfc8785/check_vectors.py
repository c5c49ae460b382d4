#!/usr/bin/env python3
"""Check the RFC 8785 (JCS) reference vectors in this directory.

Usage (from the repository root or anywhere):

    python tests/vectors/rfc8785/check_vectors.py

Standard library only; if the PyPI package ``rfc8785`` is importable it is
used as a second, independent canonicalizer. See README.md for provenance.

Checks:
  1. input/ and output/ files are byte-identical to the recorded SHA-256
     manifest (guards against editors adding newlines or re-encoding).
  2. every output/X.json equals the bytes listed in outhex/X.txt.
  3. every output/X.json is valid UTF-8 JSON with no trailing newline.
  4. a small stdlib reference canonicalizer (below) maps input/X.json to
     exactly output/X.json; the same with rfc8785.dumps() when available.
  5. numbers.json (RFC 8785 Appendix B): every non-null "expected" is
     produced from the IEEE-754 bits by the stdlib formatter and by
     rfc8785.dumps(); every null entry is a non-finite value that both
     reject.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAMES = ("arrays", "french", "structures", "unicode", "values", "weird")

# SHA-256 of the byte-exact files from cyberphone/json-canonicalization testdata/.
MANIFEST = {
    "input/arrays.json": "e503b6d71d1afa595b1c74b1016445c944cd89f90418066b23de1aeda7d17563",
    "input/french.json": "03676a951cd8753ac62589f72eb2105cc782c33425418cfe1d517c111f6e5d5a",
    "input/structures.json": "d66893805be1784116af50af3110d08766c70a6b4aad93374723f72346e7aaa6",
    "input/unicode.json": "4621864e014d4a805a563f55b9ea20aba4a2d2dc09c7394f625496998c00702c",
    "input/values.json": "c4a041b503d6bc236036ef44db4dac499272f60fc22c40dc3b7a54870ba6f1c3",
    "input/weird.json": "a3a905266bd4a49a969274ea69baa14ee0c4af0ead926d6fa2b7612b4af75387",
    "output/arrays.json": "099601b171cafed97c333f8878d68e7f8c8f795412adb34b2fdcf0e7c7beac42",
    "output/french.json": "d99d0ebdcb0033cb858cfa830ae46bc0fb3309413b271f1da828c89901a27ed5",
    "output/structures.json": "605f65004ec2db7692522a0852c22f1c989e036d547e88963d1a3143cf3195d5",
    "output/unicode.json": "0d99aad92a125196ff887876643fd3206786a84ddce2cee52ba4ad256d2381d3",
    "output/values.json": "2d5e01a318d0f0879ab568c4be289c8b1f64ef8921a53c6277d5e069978baacb",
    "output/weird.json": "6af595a9aa80110b964b4de3f82a05fa6ae7423005019bacfa2620dddc4e94d1",
}


# ---------------------------------------------------------------------------
# Minimal stdlib reference canonicalizer (independent of the rfc8785 package)
# ---------------------------------------------------------------------------


def es6_number(x: float) -> str:
    """ECMAScript Number::toString for a finite double (RFC 8785 3.2.2.3)."""
    if not math.isfinite(x):
        raise ValueError("non-finite numbers are not permitted in JCS")
    if x == 0:
        return "0"  # also for -0
    sign = "-" if x < 0 else ""
    # repr() gives the shortest round-tripping digit string, ties to the
    # closest (even) candidate, which is what ECMAScript "Note 2" requires.
    text = repr(abs(x))
    mantissa, _, exp = text.partition("e")
    exp10 = int(exp) if exp else 0
    int_part, _, frac_part = mantissa.partition(".")
    all_digits = int_part + frac_part
    lead = len(all_digits) - len(all_digits.lstrip("0"))
    digits = all_digits.lstrip("0").rstrip("0")
    k = len(digits)
    n = len(int_part) - lead + exp10  # value = 0.digits * 10**n
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        e_text = ("+" if e >= 0 else "-") + str(abs(e))
        body = digits + "e" + e_text if k == 1 else digits[0] + "." + digits[1:] + "e" + e_text
    return sign + body


_SHORT_ESCAPES = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"', "\\": "\\\\"}


def es6_string(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def canonicalize(value) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return es6_number(float(value))
    if isinstance(value, str):
        return es6_string(value)
    if isinstance(value, list):
        return "[" + ",".join(canonicalize(v) for v in value) + "]"
    if isinstance(value, dict):
        # Sort on UTF-16 code units: big-endian UTF-16 bytes compare the same way.
        keys = sorted(value, key=lambda k: k.encode("utf-16-be", "surrogatepass"))
        return "{" + ",".join(es6_string(k) + ":" + canonicalize(value[k]) for k in keys) + "}"
    raise TypeError(f"unsupported type: {type(value)!r}")


def stdlib_dumps(value) -> bytes:
    return canonicalize(value).encode("utf-8")


# ---------------------------------------------------------------------------


def main() -> int:
    try:
        import rfc8785  # type: ignore
    except ImportError:
        rfc8785 = None

    passed = 0
    failed = 0

    def check(ok: bool, what: str) -> None:
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print("FAIL:", what)

    for rel, digest in MANIFEST.items():
        data = (HERE / rel).read_bytes()
        check(hashlib.sha256(data).hexdigest() == digest, "sha256 of " + rel)

    for name in NAMES:
        raw_in = (HERE / "input" / (name + ".json")).read_bytes()
        raw_out = (HERE / "output" / (name + ".json")).read_bytes()
        hex_text = (HERE / "outhex" / (name + ".txt")).read_text(encoding="ascii")
        tokens = hex_text.split()
        check(all(len(t) == 2 for t in tokens), name + ": outhex tokens are single bytes")
        check(bytes.fromhex("".join(tokens)) == raw_out, name + ": output == outhex")
        check(not raw_out.endswith(b"\n"), name + ": output has no trailing newline")
        parsed_out = json.loads(raw_out.decode("utf-8"))
        parsed_in = json.loads(raw_in.decode("utf-8"))
        check(stdlib_dumps(parsed_in) == raw_out, name + ": stdlib canonicalize(input) == output")
        check(stdlib_dumps(parsed_out) == raw_out, name + ": stdlib canonicalize(output) == output")
        if rfc8785 is not None:
            check(rfc8785.dumps(parsed_in) == raw_out, name + ": rfc8785.dumps(input) == output")
            check(rfc8785.dumps(parsed_out) == raw_out, name + ": rfc8785.dumps(output) == output")

    rows = json.loads((HERE / "numbers.json").read_text(encoding="utf-8"))
    for row in rows:
        bits = row["ieee_hex"]
        value = struct.unpack(">d", bytes.fromhex(bits))[0]
        expected = row["expected"]
        if expected is None:
            check(not math.isfinite(value), bits + ": must-reject entry is non-finite")
            try:
                es6_number(value)
                check(False, bits + ": stdlib formatter rejects")
            except ValueError:
                check(True, "")
            if rfc8785 is not None:
                try:
                    rfc8785.dumps(value)
                    check(False, bits + ": rfc8785.dumps rejects")
                except Exception:  # rfc8785 raises its own FloatDomainError
                    check(True, "")
        else:
            check(es6_number(value) == expected, f"{bits}: stdlib {es6_number(value)!r} != {expected!r}")
            check(
                float(expected) == value or (value == 0 and float(expected) == 0),
                bits + ": expected text parses back to the same double",
            )
            if rfc8785 is not None:
                got = rfc8785.dumps(value)
                check(got == expected.encode("ascii"), f"{bits}: rfc8785 {got!r} != {expected!r}")

    version = getattr(rfc8785, "__version__", "?")
    print("rfc8785 package:", f"used (version {version})" if rfc8785 else "not installed (stdlib checks only)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
