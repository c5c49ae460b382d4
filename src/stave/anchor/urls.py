"""Opening a ledger from a URL, through a registry of schemes.

``witness:///var/lib/stave/witness.log`` (a local witness file, not a blockchain),
``evm+http://127.0.0.1:8545?key_file=/etc/stave/evm.key&confirmations=12&chain_id=1`` (also
``evm+https``), ``hedera://testnet/0.0.1234?operator_id=0.0.5678&key_file=/etc/stave/hedera.key``.
Secrets never go in a URL: keys are read from the file ``key_file`` names. Drivers are
imported on first use, so a missing optional SDK only matters to its users, and its absence
produces an error naming the install command.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Final
from urllib.parse import parse_qsl, urlsplit

from stave.anchor.base import Ledger
from stave.errors import ConfigError

__all__ = ["DRIVERS", "open_ledger", "query_params"]

# scheme → (module, class, pip package that provides its SDK)
DRIVERS: Final[dict[str, tuple[str, str, str | None]]] = {
    "witness": ("stave.anchor.witness", "WitnessLedger", None),
    "evm+http": ("stave.anchor.evm", "EvmLedger", "web3"),
    "evm+https": ("stave.anchor.evm", "EvmLedger", "web3"),
    "hedera": ("stave.anchor.hedera", "HederaLedger", None),  # its SDK is needed only to submit
}

# Parameter names that would put a secret in a URL (and so in logs, argv and receipts).
_SECRET_PARAMS: Final = frozenset({"key", "private_key", "privkey", "secret", "password", "mnemonic", "operator_key"})


def open_ledger(url: str) -> Ledger:
    """Open the ledger a URL names."""
    scheme = urlsplit(url).scheme
    if scheme not in DRIVERS:
        raise ConfigError(
            f"ledger URL {_public(url)!r}: unknown scheme {scheme!r}; known: {', '.join(sorted(DRIVERS))}"
        )
    module_name, class_name, package = DRIVERS[scheme]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f"pip install {package}" if package else "reinstall stave"
        raise ConfigError(f"ledger URL {_public(url)!r} needs {exc.name}: {hint}") from None
    ledger: Ledger = getattr(module, class_name).from_url(url)
    return ledger


def query_params(url: str, allowed: Mapping[str, str]) -> dict[str, str]:
    """The URL's query as a dict; unknown or repeated names are errors, so a typo
    (``confirmation=``) is not silently ignored. ``allowed`` maps each name to its help."""
    parts = urlsplit(url)
    params: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query)):
        if name in _SECRET_PARAMS:
            raise ConfigError(
                f"ledger URL {_public(url)!r}: secrets never go in a URL; put the key in a file and pass key_file="
            )
        if name not in allowed:
            known = "; ".join(f"{k}: {v}" for k, v in allowed.items()) or "none"
            raise ConfigError(f"ledger URL {_public(url)!r}: unknown parameter {name!r} (known: {known})")
        if name in params:
            raise ConfigError(f"ledger URL {_public(url)!r}: parameter {name!r} given twice")
        params[name] = value
    return params


def _public(url: str) -> str:
    """The URL without its query and user info: enough to name it in a message, nothing secret."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"
