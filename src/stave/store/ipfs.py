"""IPFS driver over the Kubo RPC API (``ipfs+http://127.0.0.1:5001?timeout=10&pin=1``).

**Events** are stored as raw blocks: CIDv1, codec raw (0x55), sha2-256, pinned. ``put`` computes
the CID locally, checks that the node's answer decodes to the same CID, and returns it (base32,
``bafkrei…``) as the *locator*, which the caller keeps and hands back to ``get``: a raw block's
CID is the hash of the signed bytes, not the event id, so without it the copy cannot be found.

**The id-addressed block.** ``put`` of an event also stores, pinned, the event's *unsigned*
canonical bytes as a second raw block. Its CID's sha2-256 digest **is** the event id, so anyone
can find an event's content on IPFS by id alone (``bafkrei`` + base32 of ``0x01 0x55 0x12 0x20 ||
id``). It carries no signature, so ``get`` never serves it: without a locator an event is
``BlobNotFound``. Skipped (``?unsigned=0``, or for bytes that do not admit under their key).
It is published *after* ``put`` returns, by a background thread: a second round trip doubled
the write latency on js-ipfs (measured: 11 ms → 24 ms median), and the acknowledgement of an
event waits for every backend, while the id-addressed block is a convenience, not a copy. A
failed publication is logged; ``flush()`` waits for the pending ones.

**Media** go through ``/api/v0/add`` (CIDv1, raw leaves, 256 KiB chunks, pinned), streamed from
the file and hashed on the way; the locator is the root CID. A file of at most one chunk is a
single raw block whose CID digest is its SHA-256, so it is also found without a locator, and
its CID is checked; a bigger file is a dag-pb tree whose CID cannot be checked without
rebuilding the tree, so only the bytes are (every read hashes them).

**Missing blocks fail fast.** Lookups send ``offline=true`` (Kubo answers at once for a block
it does not hold instead of asking the network) and ``timeout=<lookup_timeout>`` (js-ipfs
ignores ``offline`` and would wait forever: its "request timed out" then means "not here").
A read of a stored copy never fetches from the network: the copy this backend counts is the
one pinned on this node.

**Deleting** unpins and removes the blocks from this node (the event's, its unsigned block, a
media root; a media tree's other blocks are unpinned and go at the node's next garbage
collection). Other IPFS nodes that fetched the content may still hold it: IPFS cannot recall.

**Listing** must map pins (keyed by CID) back to addresses, which needs the bytes: ``list``
reads every recursively pinned CIDv1 block (events: ``admit(block).id``; media: the SHA-256 of
the raw block or of the whole ``cat`` of a dag-pb root). It costs a read of everything pinned,
which ``scrub`` pays anyway. Raw blocks that admit as events, and the unsigned event blocks, are
not listed as media.

**Repairs.** A node skips writing a block it believes it has (it does not re-hash on write or
read), so ``put(..., replace=True)`` first unpins and removes the block, then writes it again.

Differences between Kubo and js-ipfs (0.66, the test node) this driver handles:

- ``block/put``: Kubo takes ``cid-codec=raw``; js-ipfs ignores it and wants ``format=raw`` (else
  it stores dag-pb CIDv0). Both are sent with ``mhtype=sha2-256``; Kubo accepts ``format=raw``
  next to ``cid-codec=raw``.
- CID text: Kubo answers CIDv1 in base32, js-ipfs often in base58btc (``zb2…``) even when
  asked for ``cid-base=base32`` (which is sent). CIDs are always compared decoded.
- ``offline=true`` per request works on Kubo; js-ipfs needs the daemon in ``--offline`` mode
  and still waits for absent blocks, hence the ``timeout`` parameter on every lookup.
- Pins: ``block/put`` with ``pin=true`` makes a recursive pin on both (Kubo ≥ 0.13); listing
  uses ``pin/ls?type=recursive``, answered as ``{"Keys": {cid: {"Type"}}}`` by both.
- Errors: both answer HTTP 500 with ``{"Message", "Code", "Type": "error"}``; ``block/rm``
  answers 200 with an ``Error`` field per block. 502/503/504 (a proxy in front) are transient.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, BinaryIO, Final
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import orjson
from multiformats import CID, multihash

from stave.errors import BackendUnavailable, BlobNotFound, ConfigError, IntegrityError, StorageError, VerificationError
from stave.event import admit, check_event
from stave.store.base import BlobInfo, BlobKey, BlobStore, Namespace
from stave.store.urls import redact

_log = logging.getLogger(__name__)

__all__ = ["IpfsApiError", "IpfsStore"]

_CHUNK: Final = 1 << 20
_CHUNKER_SIZE: Final = 262_144  # Kubo's and js-ipfs's default, sent explicitly so CIDs agree
_RAW: Final = 0x55
_DAG_PB: Final = 0x70
# What the nodes say for a block they do not hold (Kubo offline, Kubo/js-ipfs timeouts, rm).
_MISSING: Final = ("not found", "could not find", "timed out", "deadline exceeded", "not pinned")
_TRANSIENT_STATUS: Final = frozenset({502, 503, 504})


class IpfsApiError(StorageError):
    """The node refused a command; ``message`` is its own words."""

    def __init__(self, command: str, status: int, message: str) -> None:
        self.command = command
        self.status = status
        self.message = message
        super().__init__(f"{command}: HTTP {status}: {message}")

    @property
    def missing(self) -> bool:
        return any(phrase in self.message.lower() for phrase in _MISSING)


def raw_cid(digest: bytes) -> CID:
    """CIDv1 raw sha2-256 with this digest (of a raw block's bytes)."""
    return CID("base32", 1, "raw", multihash.wrap(digest, "sha2-256"))


def unsigned_cid(event_id: str) -> CID:
    """The CID of an event's unsigned canonical bytes: its digest is the event id."""
    return raw_cid(bytes.fromhex(event_id))


class IpfsStore(BlobStore):
    scheme = "ipfs+http"
    cost = 30
    # a stopped node, a refused connection, a timeout: try again later
    transient_errors = (httpx.TransportError, OSError, TimeoutError)

    def __init__(
        self,
        api_url: str,
        name: str | None = None,
        *,
        timeout: float = 10.0,
        lookup_timeout: float = 2.0,
        pin: bool = True,
        publish_unsigned: bool = True,
        auth: tuple[str, str] | None = None,
        **limits: int,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        super().__init__(name or f"ipfs:{redact(self.api_url)}", **limits)
        self.timeout = timeout
        self.lookup_timeout = min(lookup_timeout, timeout)
        self.pin = pin
        self.durable = pin  # an unpinned block is garbage-collected: not a copy
        self.publish_unsigned = publish_unsigned
        self._publisher = ThreadPoolExecutor(max_workers=2, thread_name_prefix="stave-ipfs-publish")
        self._pending: list[Future[None]] = []
        self._client = httpx.Client(
            base_url=f"{self.api_url}/api/v0/",
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
            transport=httpx.HTTPTransport(retries=1),  # retries the connect only, never a sent request
            auth=auth,
        )

    @classmethod
    def from_url(cls, url: str, *, name: str | None = None) -> IpfsStore:
        """``ipfs+http[s]://[user:password@]host:port[/prefix]?timeout=10&lookup_timeout=2&pin=1&unsigned=1``."""
        parts = urlsplit(url)
        if parts.scheme not in ("ipfs+http", "ipfs+https") or not parts.hostname:
            raise ConfigError(f"store URL {redact(url)!r}: expected ipfs+http://host:port")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        unknown = set(query) - {"timeout", "lookup_timeout", "pin", "unsigned"}
        if unknown:
            raise ConfigError(f"store URL {redact(url)!r}: unknown parameters {', '.join(sorted(unknown))}")
        try:
            timeout = float(query.get("timeout", "10"))
            lookup_timeout = float(query.get("lookup_timeout", "2"))
        except ValueError:
            raise ConfigError(f"store URL {redact(url)!r}: timeouts are seconds") from None
        netloc = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        if ":" in parts.hostname:  # an IPv6 literal
            netloc = f"[{parts.hostname}]" + (f":{parts.port}" if parts.port else "")
        auth = (unquote(parts.username), unquote(parts.password or "")) if parts.username else None
        base = f"{parts.scheme.removeprefix('ipfs+')}://{netloc}{parts.path.rstrip('/')}"
        return cls(
            base,
            name=name,
            timeout=timeout,
            lookup_timeout=lookup_timeout,
            pin=_flag(query.get("pin", "1")),
            publish_unsigned=_flag(query.get("unsigned", "1")),
            auth=auth,
        )

    def close(self) -> None:
        self.flush(timeout=self.timeout)
        self._publisher.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    # --- the contract ------------------------------------------------------------------------

    def _put(self, key: BlobKey, data: bytes, info: BlobInfo, replace: bool) -> str | None:
        if key.namespace is Namespace.MEDIA:
            return self._add(key, data, replace)
        cid = raw_cid(hashlib.sha256(data).digest())
        if replace:
            self._remove(cid)
        self._block_put(data, cid)
        if self.publish_unsigned:
            self._pending.append(self._publisher.submit(self._publish_unsigned, key, data))
        return cid.encode("base32")

    def _publish_unsigned(self, key: BlobKey, data: bytes) -> None:
        try:
            unsigned = admit(data, expected_id=key.digest).unsigned_bytes
        except VerificationError:
            return  # not this event: the read will refuse the copy; publish nothing
        try:
            self._block_put(unsigned, unsigned_cid(key.digest))
        except Exception:
            _log.warning("%s: publishing the id-addressed block of %s failed", self.name, key, exc_info=True)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every id-addressed block queued so far is published (or has failed)."""
        pending, self._pending = self._pending, []
        wait(pending, timeout=timeout)

    def _get(self, key: BlobKey, locator: str | None) -> bytes:
        cid = self._cid_for(key, locator)
        if cid is None:
            raise BlobNotFound(f"{self.name}: {key}: no CID recorded for it (an IPFS copy is found by its CID)")
        if cid.codec.code == _RAW:
            data = self._lookup("block/get", key, cid).content
            digest = hashlib.sha256(data).digest()
            if cid.hashfun.name == "sha2-256" and digest != cid.raw_digest:
                served = cid.encode("base32")
                raise IntegrityError(f"{self.name}: {key}: the node served bytes that do not match {served}")
            return data
        self._lookup("block/stat", key, cid)  # a missing root fails fast; cat has no short timeout
        buffer = bytearray()
        for chunk in self._cat(cid):
            buffer += chunk
            if len(buffer) > self._limit(key):
                break  # the base class reports the oversize copy
        return bytes(buffer)

    def _has(self, key: BlobKey, locator: str | None) -> bool:
        cid = self._cid_for(key, locator)
        if cid is None:
            return False
        try:
            self._lookup("block/stat", key, cid)
        except BlobNotFound:
            return False
        return True

    def _delete(self, key: BlobKey, locator: str | None) -> None:
        cid = self._cid_for(key, locator)
        if cid is not None:
            self._remove(cid)  # a media tree's other blocks are unpinned with it: the node's GC takes them
        if key.namespace is Namespace.EVENTS:
            self._remove(unsigned_cid(key.digest))

    def _list(self, namespace: Namespace) -> Iterator[str]:
        """Read every pinned block to learn its address (see the module docstring for the cost)."""
        keys = self._json("pin/ls", {"type": "recursive"}).get("Keys") or {}
        seen: set[str] = set()
        for text in sorted(keys):
            cid = CID.decode(text)
            if cid.version != 1 or cid.codec.code not in (_RAW, _DAG_PB):
                continue  # CIDv0 pins are not ours (js-ipfs pins its init docs)
            address = self._address_of(cid, namespace)
            if address is not None and address not in seen:
                seen.add(address)
                yield address

    def _health(self) -> str:
        identity = self._json("id", {})
        return f"{identity.get('AgentVersion', 'unknown agent')} (peer {str(identity.get('ID', '?'))[:16]}…)"

    # --- media, streamed ---------------------------------------------------------------------

    def put_path(self, key: BlobKey, source: Path) -> str | None:
        """Upload a file as a stream (never whole in memory), hashing it on the way."""
        if key.namespace is Namespace.EVENTS:
            return super().put_path(key, source)
        self._check_size(key, source.stat().st_size)

        def upload() -> str:
            with open(source, "rb", buffering=0) as handle:
                return self._add(key, handle, replace=False)

        return self._call("put", key, upload)

    def get_to_path(self, key: BlobKey, destination: Path, locator: str | None = None) -> None:
        """Stream ``cat`` into the file while hashing; a copy that does not hash to its key is deleted."""
        if key.namespace is Namespace.EVENTS:
            super().get_to_path(key, destination, locator)
            return

        def download() -> str:
            cid = self._cid_for(key, locator)
            if cid is None:
                raise BlobNotFound(f"{self.name}: {key}: no CID recorded for it")
            self._lookup("block/stat", key, cid)
            digest = hashlib.sha256()
            with open(destination, "wb") as out:
                for chunk in self._cat(cid):
                    digest.update(chunk)
                    out.write(chunk)
            return digest.hexdigest()

        try:
            actual = self._call("get", key, download)
        except BaseException:
            destination.unlink(missing_ok=True)
            raise
        if actual != key.digest:
            destination.unlink(missing_ok=True)
            raise IntegrityError(f"{self.name}: {key}: copy hashes to {actual}")

    # --- RPC calls ---------------------------------------------------------------------------

    def _post(self, command: str, params: Mapping[str, str], **kwargs: Any) -> httpx.Response:
        response = self._client.post(command, params=params, **kwargs)
        _raise_for(command, response)
        return response

    def _json(self, command: str, params: Mapping[str, str], **kwargs: Any) -> dict[str, Any]:
        body = self._post(command, params, **kwargs).content
        try:
            value = orjson.loads(body.splitlines()[-1] if body.strip() else b"{}")  # ndjson: the last line
        except orjson.JSONDecodeError as exc:
            raise StorageError(f"{self.name}: {command}: not JSON ({exc}): {body[:200]!r}") from None
        if not isinstance(value, dict):
            raise StorageError(f"{self.name}: {command}: unexpected answer {body[:200]!r}")
        return value

    def _lookup(self, command: str, key: BlobKey | str, cid: CID) -> httpx.Response:
        """``block/get`` or ``block/stat`` that fails fast and maps an absent block to BlobNotFound."""
        params = {"arg": cid.encode("base32"), "offline": "true", "timeout": f"{int(self.lookup_timeout * 1000)}ms"}
        try:
            return self._post(command, params)
        except IpfsApiError as exc:
            if exc.missing:
                raise BlobNotFound(f"{self.name}: {key}: block {cid.encode('base32')} is not on the node") from None
            raise

    def _block_put(self, data: bytes, expected: CID) -> None:
        params = {
            "format": "raw",  # js-ipfs
            "cid-codec": "raw",  # Kubo
            "mhtype": "sha2-256",
            "pin": _bool(self.pin),
            "cid-base": "base32",
        }
        answer = self._json("block/put", params, files={"file": ("block", data, "application/octet-stream")})
        self._check_cid("block/put", answer.get("Key"), expected)

    def _add(self, key: BlobKey, source: bytes | BinaryIO, replace: bool) -> str:
        """``add`` a media file, hashed as httpx streams it; pinned only once it hashes to the key.

        Pinning after the check means a file under the wrong key leaves nothing pinned (the
        node's garbage collector takes it) and never unpins an identical earlier copy.
        """
        if replace:
            assert isinstance(source, bytes)  # only put() replaces, and it has the bytes
            self._remove_tree(self._add_call(source, only_hash=True)[0])
        added, digest, size = self._add_call(source)
        if digest != key.digest:
            raise IntegrityError(f"{self.name}: {key}: file hashes to {digest}")
        if size <= _CHUNKER_SIZE:  # one chunk: a raw block whose CID we know
            self._check_cid("add", added.encode("base32"), raw_cid(bytes.fromhex(key.digest)))
        if self.pin:
            self._post("pin/add", {"arg": added.encode("base32"), "recursive": "true"})
        return added.encode("base32")

    def _add_call(self, source: bytes | BinaryIO, *, only_hash: bool = False) -> tuple[CID, str, int]:
        """One ``add`` request: (root CID, SHA-256 of what was sent, its size)."""
        # bytes go through the reader too (sent chunked: a BytesIO has no fileno for a length)
        reader = _HashingReader(io.BytesIO(source) if isinstance(source, bytes) else source)
        params = {
            "cid-version": "1",
            "raw-leaves": "true",
            "chunker": f"size-{_CHUNKER_SIZE}",  # the default of both, explicit so CIDs agree
            "hash": "sha2-256",
            "pin": "false",
            "only-hash": _bool(only_hash),
            "progress": "false",
            "cid-base": "base32",
        }
        body = io.BufferedReader(reader, _CHUNK)
        answer = self._json("add", params, files={"file": ("media", body, "application/octet-stream")})
        return _decode_cid("add", answer.get("Hash")), reader.digest.hexdigest(), reader.size

    def _cat(self, cid: CID) -> Iterator[bytes]:
        params = {"arg": cid.encode("base32"), "offline": "true"}
        with self._client.stream("POST", "cat", params=params) as response:
            if response.status_code != 200:
                response.read()
                _raise_for("cat", response)
            yield from response.iter_bytes(_CHUNK)

    def _remove(self, cid: CID) -> None:
        """Unpin and delete a block on this node; absent or still pinned by others is fine."""
        arg = {"arg": cid.encode("base32")}
        try:
            self._post("pin/rm", arg)
        except IpfsApiError as exc:
            if not exc.missing:
                raise
        with contextlib.suppress(IpfsApiError):  # 'not found', or pinned by another tree: leave it
            self._post("block/rm", arg)

    def _remove_tree(self, root: CID) -> None:
        """``_remove`` a media tree: its root and every block below it the node can still list."""
        blocks = [root]
        if root.codec.code == _DAG_PB:
            params = {"arg": root.encode("base32"), "recursive": "true", "unique": "true", "offline": "true"}
            with contextlib.suppress(IpfsApiError):  # a corrupt root lists nothing: remove what we know
                lines = self._post("refs", {**params, "timeout": f"{int(self.lookup_timeout * 1000)}ms"})
                for line in lines.content.splitlines():
                    ref = orjson.loads(line).get("Ref")
                    if ref:
                        blocks.append(CID.decode(ref))
        for cid in blocks:
            self._remove(cid)

    def _check_cid(self, command: str, answered: object, expected: CID) -> None:
        got = _decode_cid(command, answered)
        if got != expected:
            raise StorageError(
                f"{self.name}: {command}: the node stored the block as {got.encode('base32')}, "
                f"expected {expected.encode('base32')} (CIDv1 raw sha2-256)"
            )

    def _cid_for(self, key: BlobKey, locator: str | None) -> CID | None:
        """The CID to read: the locator, else for media of one chunk the one its key implies."""
        if locator is not None:
            try:
                return CID.decode(locator)
            except Exception as exc:  # multiformats raises several types for a bad string
                raise StorageError(f"{self.name}: {key}: locator {locator!r} is not a CID ({exc})") from None
        if key.namespace is Namespace.MEDIA:
            return raw_cid(bytes.fromhex(key.digest))
        return None  # an event's raw block is named by the hash of the signed bytes, not the id

    def _address_of(self, cid: CID, namespace: Namespace) -> str | None:
        """The digest a pinned block is stored under in ``namespace``, or None if it is not one."""
        try:
            if cid.codec.code == _DAG_PB:  # a media tree: hash the whole file
                if namespace is Namespace.EVENTS:
                    return None
                digest = hashlib.sha256()
                for chunk in self._cat(cid):
                    digest.update(chunk)
                return digest.hexdigest()
            data = self._lookup("block/get", "a pinned block", cid).content
        except (IpfsApiError, BlobNotFound):
            return None  # pinned but unreadable: scrub's reads report the copies that matter
        try:
            event_id: str | None = admit(data).id
        except VerificationError:
            event_id = None
        if namespace is Namespace.EVENTS:
            return event_id
        if event_id is not None or _is_unsigned_event(data):
            return None
        return hashlib.sha256(data).hexdigest()


class _HashingReader(io.RawIOBase):
    """A file as httpx reads it for the upload, hashed on the way (one pass, bounded memory)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        self.digest.update(data)
        self.size += size
        return size

    def fileno(self) -> int:
        return self._raw.fileno()  # lets httpx send a Content-Length: fstat, not a read


def _raise_for(command: str, response: httpx.Response) -> None:
    if response.status_code == 200:
        return
    try:
        message = str(orjson.loads(response.content).get("Message", ""))
    except (orjson.JSONDecodeError, AttributeError):
        message = response.text[:500]
    if response.status_code in _TRANSIENT_STATUS:
        raise BackendUnavailable(f"{command}: HTTP {response.status_code}: {message}", retry_after=5.0)
    raise IpfsApiError(command, response.status_code, message or response.reason_phrase)


def _decode_cid(command: str, answered: object) -> CID:
    try:
        return CID.decode(str(answered))
    except Exception as exc:  # multiformats raises several types for a bad string
        raise StorageError(f"{command}: the node answered {answered!r}, not a CID ({exc})") from None


def _is_unsigned_event(data: bytes) -> bool:
    """True for the id-addressed unsigned form of an event (see the module docstring)."""
    try:
        value, _ = check_event(data)
    except VerificationError:
        return False
    return "sig" not in value


def _flag(text: str) -> bool:
    return text.lower() not in ("0", "false", "no", "off")


def _bool(value: bool) -> str:
    return "true" if value else "false"
