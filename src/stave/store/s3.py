"""S3 driver (``s3://bucket/prefix?endpoint=…``) on obstore, the Python binding of Rust's object_store.

URL: ``s3://BUCKET[/PREFIX][?endpoint=URL&region=R&timeout=SECONDS&create_bucket=1]``.
Without ``endpoint`` it talks to AWS S3 (path-style requests); ``endpoint=http://host:8333``
reaches SeaweedFS, MinIO or any S3-compatible server (plain http only when the endpoint
says so). ``region`` defaults to ``AWS_REGION``, else us-east-1. ``timeout`` (default 10 s)
bounds connecting and every wait for data, so a hung server fails a call in about that time
without cutting off a long download, and retries of transient failures (3, backoff from
50 ms) stop once it has passed. ``create_bucket=1`` creates a missing bucket (tests,
development); it is off by default: production buckets carry policies made elsewhere.

Credentials, in order: ``access_key``/``secret_key`` query parameters (**for tests only**:
URLs end up in config files and logs, secrets must not), then the standard AWS environment
variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``; also
``AWS_ENDPOINT_URL``, ``AWS_REGION``), then boto3's chain when boto3 is installed (shared
``~/.aws`` config and profiles, SSO, …), else object_store's own (web identity, ECS, EC2
instance metadata). The store's name (``s3:bucket/prefix``) never contains a secret.

Layout: ``<prefix>/events/<id>.json`` and ``<prefix>/media/<sha256>`` (seed 000's keys).
Every object is immutable: ``Content-Type: application/json`` (media: the BlobInfo's type,
else ``application/octet-stream``), ``Cache-Control: public, max-age=31536000, immutable``,
and user metadata ``event-type``, ``event-author``, ``event-timestamp`` where the BlobInfo
has them.

Guarantees: a write is create-only (``If-None-Match: *``; a 412 means the address is taken,
and as the address is the content's hash that is idempotent success), so a copy is never
replaced unless ``replace=True`` asks for it (repair). ``put_path`` streams files over
8 MiB as a multipart upload that holds back its last part until the SHA-256 of what was
read matches the address: on a mismatch the upload is aborted and no object appears.
Multipart uploads cannot be conditional in object_store, so it checks with HEAD first
instead (a race can only write the same verified bytes twice). ``get_to_path`` streams to
the file and verifies as it goes; a bad or partial download is deleted. Errors: missing
→ BlobNotFound; no connection, timeouts, 5xx and throttling → BackendUnavailable; anything
else → StorageError; every message names ``s3://bucket/key``.

Verified against SeaweedFS 4.48 (``weed mini``; tests/store/test_s3.py): create-only puts
(412 on an existing key), the headers and user metadata as boto3 reads them back,
multipart upload and its abort (no upload left behind), paginated listing, deletion,
bucket creation by a presigned PUT (409 BucketAlreadyOwnedByYou when it exists), the
credential chain (URL, environment, shared config), and the failure modes (refused, 5xx,
hung by SIGSTOP, restarted). Nothing here is SeaweedFS-specific; AWS S3 (conditional
writes since 2024-08) and MinIO (recent releases) honour ``If-None-Match: *`` the same way.
Not verified here, to expect elsewhere: AWS may answer a concurrent create with 409
ConditionalRequestConflict (BackendUnavailable: the other write may yet fail), and 403 instead
of 404 for a missing key when the credentials lack ``s3:ListBucket`` (a StorageError, not
BlobNotFound). ``has`` cannot tell a missing bucket from a missing key (a HEAD response
has no body); ``get`` and ``health`` can.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import math
import os
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qs, unquote, urlsplit

import obstore
from obstore.exceptions import AlreadyExistsError, BaseError
from obstore.store import S3Store as _ObjectStore

from stave.errors import BackendUnavailable, BlobNotFound, ConfigError, IntegrityError, StorageError
from stave.store.base import BlobInfo, BlobKey, BlobStore, Namespace

if TYPE_CHECKING:
    from obstore import Attributes
    from obstore.store import ClientConfig, RetryConfig, S3Config, S3CredentialProvider

__all__ = ["S3Store"]

IMMUTABLE: Final = "public, max-age=31536000, immutable"
_PART: Final = 8 << 20  # multipart part size; files up to this size go up in one create-only PUT
_WORKERS: Final = 16  # put_many/get_many in parallel: S3 latency, not bandwidth, bounds small objects
_PARAMS: Final = frozenset({"endpoint", "region", "timeout", "create_bucket", "access_key", "secret_key"})
_DIGEST = re.compile(r"[0-9a-f]{64}\Z")
# object_store folds transport failures and retried-out server errors into one GenericError:
# only its text tells them apart. "HTTP error" = no response at all (refused, reset, timed out).
_TRANSIENT = re.compile(
    r"HTTP error|status code: (?:5\d\d|429)\b|<Code>(?:SlowDown|RequestTimeout|InternalError|ServiceUnavailable)<"
)


class S3Store(BlobStore):
    scheme = "s3"
    cost = 20
    # obstore's own exceptions are mapped in _errors; these catch what the stdlib might raise.
    transient_errors = (TimeoutError, ConnectionError)

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        name: str | None = None,
        *,
        endpoint: str | None = None,
        region: str | None = None,
        timeout: float = 10.0,
        create_bucket: bool = False,
        access_key: str | None = None,
        secret_key: str | None = None,
        **limits: int,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        super().__init__(name or f"s3:{bucket}/{self.prefix}".rstrip("/"), **limits)
        if not (math.isfinite(timeout) and timeout > 0):
            raise ConfigError(f"{self.name}: timeout must be a positive number of seconds")
        # object_store reads these variables itself; we look only to allow plain http and to name it.
        self.endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        self.timeout = timeout
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        config: S3Config = {}
        if endpoint:
            config["endpoint"] = endpoint
        if region:
            config["region"] = region
        if (access_key is None) != (secret_key is None):
            raise ConfigError(f"{self.name}: access_key and secret_key go together")
        provider: S3CredentialProvider | None = None
        if access_key is not None and secret_key is not None:
            config["access_key_id"] = access_key
            config["secret_access_key"] = secret_key
        elif "AWS_ACCESS_KEY_ID" not in os.environ:
            provider = _boto3_credentials()
        wait = timedelta(seconds=timeout)
        client: ClientConfig = {
            "connect_timeout": wait,
            # read_timeout restarts with every read, so it catches a stalled server without
            # cutting off a long media download; the whole-request deadline is only a backstop.
            "read_timeout": wait,
            "timeout": timedelta(hours=1),
        }
        if self.endpoint and self.endpoint.startswith("http://"):
            client["allow_http"] = True  # else left to AWS_ALLOW_HTTP
        # object_store keeps every idle connection (no per-host cap): no pool size to raise.
        retry: RetryConfig = {
            "max_retries": 3,
            "retry_timeout": wait,
            "backoff": {"init_backoff": timedelta(milliseconds=50), "max_backoff": timedelta(seconds=1)},
        }
        try:
            self._client = _ObjectStore(
                bucket, config=config, client_options=client, retry_config=retry, credential_provider=provider
            )
        except (BaseError, ValueError) as exc:
            raise ConfigError(f"{self.name}: {exc}") from None
        if create_bucket:
            self._create_bucket()

    @classmethod
    def from_url(cls, url: str, *, name: str | None = None) -> S3Store:
        """``s3://bucket/prefix?endpoint=…&region=…&timeout=10&create_bucket=1``; see the module docstring."""
        parts = urlsplit(url)
        if not parts.hostname or parts.username or parts.port:
            raise ConfigError(f"store URL {parts.scheme}://{parts.hostname}/…: expected s3://bucket/prefix")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        if unknown := sorted(set(query) - _PARAMS):
            raise ConfigError(f"store URL s3://{parts.hostname}: unknown parameter(s) {', '.join(unknown)}")
        try:
            timeout = float(query.get("timeout", "10"))
        except ValueError:
            raise ConfigError(f"store URL s3://{parts.hostname}: timeout must be a number of seconds") from None
        return cls(
            parts.hostname,
            unquote(parts.path),
            name,
            endpoint=query.get("endpoint") or None,
            region=query.get("region") or None,
            timeout=timeout,
            create_bucket=query.get("create_bucket", "0").lower() in ("1", "true", "yes"),
            access_key=query.get("access_key"),
            secret_key=query.get("secret_key"),
        )

    def key_path(self, key: BlobKey) -> str:
        """The object key of a blob (seed 000's layout)."""
        suffix = ".json" if key.namespace is Namespace.EVENTS else ""
        return f"{self._namespace_prefix(key.namespace)}{key.digest}{suffix}"

    def _namespace_prefix(self, namespace: Namespace) -> str:
        return f"{self.prefix}/{namespace.value}/" if self.prefix else f"{namespace.value}/"

    # --- the contract ------------------------------------------------------------------------

    def _put(self, key: BlobKey, data: bytes, info: BlobInfo, replace: bool) -> str | None:
        path = self.key_path(key)
        with self._errors("put", path):
            try:
                obstore.put(
                    self._client,
                    path,
                    data,
                    attributes=_attributes(key, info),
                    mode="overwrite" if replace else "create",
                    use_multipart=False,  # one request: atomic, and the only kind that can be conditional
                )
            except AlreadyExistsError as exc:
                # 412: the address is taken, and the address is the content: idempotent success.
                # AWS's 409 ConditionalRequestConflict is not that: a concurrent write of the key
                # is still in flight and may yet fail, so say "try again", not "stored".
                if "ConditionalRequestConflict" in str(exc):
                    raise BackendUnavailable(f"{self.name}: put s3://{self.bucket}/{path}: {_describe(exc)}") from exc
        return None

    def _get(self, key: BlobKey, locator: str | None) -> bytes:
        path = self.key_path(key)
        with self._errors("get", path):
            result = obstore.get(self._client, path)
            self._check_stored_size(key, result.meta["size"])  # before reading a body we would refuse
            return result.bytes().to_bytes()

    def _has(self, key: BlobKey, locator: str | None) -> bool:
        return self._exists(self.key_path(key))

    def _delete(self, key: BlobKey, locator: str | None) -> None:
        path = self.key_path(key)
        with self._errors("delete", path):
            obstore.delete(self._client, path)  # S3 answers 204 for a missing key too

    def _list(self, namespace: Namespace) -> Iterator[str]:
        prefix = self._namespace_prefix(namespace)
        with self._errors("list", prefix):
            # ListObjectsV2, one page (1000 keys) per request, continuation tokens inside.
            for page in obstore.list(self._client, prefix, chunk_size=1000):
                for meta in page:
                    name = meta["path"].rsplit("/", 1)[-1].removesuffix(".json")
                    if _DIGEST.match(name):
                        yield name

    def _get_many(self, keys: Sequence[BlobKey]) -> dict[BlobKey, bytes | None]:
        def one(key: BlobKey) -> bytes | None:
            try:
                return self._get(key, None)
            except BlobNotFound:
                return None

        return dict(zip(keys, self._executor().map(one, keys), strict=True))

    def _health(self) -> str:
        # HeadBucket is not in object_store's API; a delimited ListObjectsV2 of our prefix is
        # one small request that proves the same (bucket there, credentials good) and the
        # list permission scrub needs.
        where = self.prefix or "/"
        with self._errors("health", where):
            obstore.list_with_delimiter(self._client, f"{self.prefix}/" if self.prefix else None)
        return f"bucket {self.bucket} at {self.endpoint or 'AWS S3'}"

    def put_many(self, items: Sequence[tuple[BlobKey, bytes, BlobInfo]]) -> list[str | StorageError | None]:
        """Store several blobs in parallel (each create-only); per item None or its error."""

        def one(item: tuple[BlobKey, bytes, BlobInfo]) -> str | StorageError | None:
            try:
                return self.put(*item)
            except StorageError as exc:
                return exc

        return list(self._executor().map(one, items))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    # --- media, streamed -------------------------------------------------------------------

    def put_path(self, key: BlobKey, source: Path) -> str | None:
        """Upload a file without holding it in memory, verifying a media file's SHA-256 as it is read."""
        if key.namespace is Namespace.EVENTS:
            return super().put_path(key, source)  # at most 1 MiB, and verified by every reader
        size = source.stat().st_size
        self._check_size(key, size)
        self._call("put", key, lambda: self._upload(key, source, size))
        return None

    def get_to_path(self, key: BlobKey, destination: Path, locator: str | None = None) -> None:
        """Stream a media object to ``destination``, verifying as it arrives; a bad copy leaves no file."""
        if key.namespace is Namespace.EVENTS:
            super().get_to_path(key, destination, locator)
            return
        self._call("get", key, lambda: self._download(key, destination))

    def _upload(self, key: BlobKey, source: Path, size: int) -> None:
        info = BlobInfo(content_type="application/octet-stream")
        if size <= _PART:
            # One create-only PUT; a part's worth of memory, as a multipart upload would hold.
            data = _read(source)
            _check_digest(self.name, key, hashlib.sha256(data).hexdigest(), "file")
            self._put(key, data, info, replace=False)
            return
        path = self.key_path(key)
        with self._errors("put", path):
            if self._exists(path):
                return
            # The last part is held back until the hash matches: on a mismatch the generator
            # raises, obstore aborts the upload, and no object appears.
            chunks = _verified_chunks(self.name, key, source)
            obstore.put(self._client, path, chunks, attributes=_attributes(key, info), chunk_size=_PART)

    def _download(self, key: BlobKey, destination: Path) -> None:
        path = self.key_path(key)
        digest = hashlib.sha256()
        with self._errors("get", path):
            result = obstore.get(self._client, path)
            self._check_stored_size(key, result.meta["size"])
            try:
                with open(destination, "wb") as out:
                    for chunk in result.stream(min_chunk_size=1 << 20):
                        digest.update(chunk)
                        out.write(chunk)
                _check_digest(self.name, key, digest.hexdigest(), "copy")
            except BaseException:
                destination.unlink(missing_ok=True)  # a partial or wrong file must not look like media
                raise

    # --- helpers ---------------------------------------------------------------------------

    def _exists(self, path: str) -> bool:
        with self._errors("head", path):
            try:
                obstore.head(self._client, path)
            except FileNotFoundError:
                return False
            return True

    def _check_stored_size(self, key: BlobKey, size: int) -> None:
        if size > self._limit(key):
            raise IntegrityError(f"{self.name}: {key}: copy is {size} bytes, over the limit {self._limit(key)}")

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                # obstore releases the GIL while it waits on the network, so threads overlap.
                self._pool = concurrent.futures.ThreadPoolExecutor(_WORKERS, thread_name_prefix="stave-s3")
            return self._pool

    def _create_bucket(self) -> None:
        # object_store cannot create buckets; a presigned PUT of the bucket does, with the same
        # credentials and endpoint and no second S3 library.
        where = f"s3://{self.bucket}"
        url = obstore.sign(self._client, "PUT", "", timedelta(minutes=5))
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{self.name}: unexpected presigned URL scheme for {where}")
        region = self._client.config.get("region", "us-east-1")
        body = None
        if region != "us-east-1":  # AWS wants the region spelled out everywhere else
            body = (
                '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                f"<LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>"
            ).encode()
        request = urllib.request.Request(url, data=body, method="PUT")  # noqa: S310 (http(s), checked above)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout):  # noqa: S310
                return
        except urllib.error.HTTPError as exc:
            detail = exc.read(2000).decode(errors="replace")
            if exc.code == 409 and "BucketAlreadyOwnedByYou" in detail:
                return
            raise StorageError(f"{self.name}: create bucket {where}: HTTP {exc.code}: {detail[:300]}") from None
        except OSError as exc:
            raise BackendUnavailable(f"{self.name}: create bucket {where}: {exc}") from exc

    @contextlib.contextmanager
    def _errors(self, action: str, path: str) -> Iterator[None]:
        """Map obstore's exceptions onto stave's, naming the bucket and key."""
        where = f"s3://{self.bucket}/{path}"
        try:
            yield
        except StorageError:
            raise
        except FileNotFoundError as exc:  # obstore's "404"
            if "NoSuchBucket" in str(exc):
                raise StorageError(f"{self.name}: {action} {where}: the bucket does not exist") from None
            raise BlobNotFound(f"{self.name}: {where} not found") from None
        except BaseError as exc:
            kind = BackendUnavailable if _TRANSIENT.search(str(exc)) else StorageError
            raise kind(f"{self.name}: {action} {where}: {type(exc).__name__}: {_describe(exc)}") from exc


def _attributes(key: BlobKey, info: BlobInfo) -> Attributes:
    content_type = "application/json"
    if key.namespace is Namespace.MEDIA:
        # BlobInfo() defaults to JSON, which is right for events only: default media to bytes.
        content_type = info.content_type if info.content_type != "application/json" else "application/octet-stream"
    attributes: Attributes = {"Content-Type": content_type, "Cache-Control": IMMUTABLE}
    metadata = {"event-type": info.event_type, "event-author": info.author, "event-timestamp": info.created_at}
    for name, value in metadata.items():
        # HTTP headers carry ASCII only; EOS names and keys always are, anything else is dropped.
        if value is not None and str(value).isascii():
            attributes[name] = str(value)
    return attributes


def _verified_chunks(name: str, key: BlobKey, source: Path) -> Iterator[bytes]:
    """The file in parts, each yielded only once the next is read: the last goes out only if
    the SHA-256 of the whole file is the address."""
    digest = hashlib.sha256()
    try:
        with open(source, "rb") as reader:
            pending = reader.read(_PART)
            digest.update(pending)
            while chunk := reader.read(_PART):
                digest.update(chunk)
                yield pending
                pending = chunk
    except OSError as exc:  # the local file, not the server: not "S3 unavailable"
        raise StorageError(f"{name}: reading {source}: {exc}") from exc
    _check_digest(name, key, digest.hexdigest(), "file")
    yield pending


def _read(source: Path) -> bytes:
    try:
        return source.read_bytes()
    except OSError as exc:
        raise StorageError(f"reading {source}: {exc}") from exc


def _check_digest(name: str, key: BlobKey, actual: str, what: str) -> None:
    if key.namespace is Namespace.MEDIA and actual != key.digest:
        raise IntegrityError(f"{name}: {key}: {what} hashes to {actual}")


def _describe(exc: BaseException) -> str:
    """obstore's first line, plus the low-level cause it only prints in its debug dump."""
    text = str(exc)
    first = text.split("\n", 1)[0][:400]
    cause = re.search(r'message: "([^"]+)"|kind: (TimedOut|Timeout)\b', text)
    if cause and (detail := cause.group(1) or "timed out") not in first:
        first += f" ({detail})"
    return first


def _boto3_credentials() -> S3CredentialProvider | None:
    """boto3's credential chain (shared config, profiles, SSO) when it is installed and finds any."""
    try:
        from obstore.auth.boto3 import Boto3CredentialProvider
    except ImportError:
        return None
    try:
        return Boto3CredentialProvider()
    except ValueError:  # boto3 found nothing: let object_store try instance metadata and the rest
        return None
