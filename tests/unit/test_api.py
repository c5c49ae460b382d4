"""The public surface: ``__all__`` is exactly the public names, and the error tree is as documented."""

from __future__ import annotations

import importlib
import inspect

import pytest

import stave.errors as errors

PUBLIC_MODULES = [
    "stave.errors",
    "stave.event",
    "stave.event.strictjson",
    "stave.event.keys",
    "stave.event.base58",
    "stave.event.envelope",
    "stave.event.admission",
    "stave.event.types",
    "stave.config",
]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_is_exactly_the_public_definitions(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    assert len(exported) == len(module.__all__), "duplicates in __all__"
    for item in exported:
        assert hasattr(module, item), f"{name}.__all__ names missing {item}"
    defined_here = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", None) == name
    }
    assert defined_here <= exported, f"public but not exported: {defined_here - exported}"


def test_error_tree() -> None:
    data_errors = [
        errors.JSONError,
        errors.CanonicalizationError,
        errors.SchemaError,
        errors.KeyFormatError,
        errors.SignatureError,
        errors.DigestMismatchError,
        errors.ProofError,
    ]
    for error in data_errors:
        assert issubclass(error, errors.VerificationError)
        assert issubclass(error, ValueError)
    for error in (errors.BlobNotFound, errors.IntegrityError, errors.BackendUnavailable):
        assert issubclass(error, errors.StorageError)
    for error in (errors.VerificationError, errors.StorageError, errors.LedgerError, errors.ConfigError):
        assert issubclass(error, errors.StaveError)
    assert not issubclass(errors.StorageError, errors.VerificationError)


def test_error_messages_carry_their_location() -> None:
    error = errors.JSONError("$.a[1]", "duplicate-key", "duplicate object key 'x'", 17)
    assert str(error) == "$.a[1] (byte 17): duplicate object key 'x' [duplicate-key]"
    assert str(errors.BlobNotFound("event abc not found")) == "event abc not found"
    assert errors.BackendUnavailable("down", retry_after=2.0).retry_after == 2.0


def test_event_core_is_pure() -> None:
    """The import contract in pyproject (lint-imports) is the mechanism; this is its witness."""
    import sys

    for name in list(sys.modules):
        module = sys.modules[name]
        spec = getattr(module, "__spec__", None)
        origin = spec.origin if spec else None
        if name.startswith("stave.event") and origin and origin.endswith(".py"):
            source = inspect.getsource(module)
            for banned in ("import os", "import socket", "import time", "from pathlib", "import datetime"):
                assert banned not in source, f"{name} has {banned!r}"
