"""S3Store against the contract on SeaweedFS, plus headers, create-only writes and failures."""

from __future__ import annotations

import hashlib
import http.server
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pytest

from stave.errors import BackendUnavailable, BlobNotFound, ConfigError, IntegrityError, StorageError
from stave.store import BlobInfo, BlobKey, BlobStore, Namespace, open_store
from stave.store.s3 import IMMUTABLE, S3Store
from tests.servers.seaweed import SeaweedServer
from tests.store.contract import BlobStoreContract, Corrupt
from tests.store.events import event

pytestmark = pytest.mark.s3

BUCKET = "stave-test"
TIMEOUT = 2.0
T = TypeVar("T")


def make_store(server: SeaweedServer, bucket: str = BUCKET, **kwargs: Any) -> S3Store:
    """A store on a prefix of its own, so tests can share the session's server and bucket."""
    return S3Store(
        bucket,
        f"t/{uuid.uuid4().hex}",
        endpoint=server.endpoint_url,
        region=server.region,
        access_key=server.access_key,
        secret_key=server.secret_key,
        **{"timeout": TIMEOUT, "create_bucket": True, **kwargs},
    )


@pytest.fixture(scope="session")
def s3_client(s3_server: SeaweedServer) -> Any:
    return boto3.client("s3", **s3_server.boto3_kwargs)


@pytest.fixture
def store(s3_server: SeaweedServer) -> Iterator[S3Store]:
    store = make_store(s3_server)
    yield store
    store.close()


@pytest.fixture
def corrupt(s3_client: Any) -> Corrupt:
    def overwrite(store: BlobStore, key: BlobKey, locator: str | None, data: bytes) -> None:
        assert isinstance(store, S3Store)
        s3_client.put_object(Bucket=store.bucket, Key=store.key_path(key), Body=data)

    return overwrite


class TestS3Store(BlobStoreContract):
    seed = 3


def _media(tag: str, size: int = 2000) -> tuple[BlobKey, bytes]:
    data = os.urandom(size) + tag.encode()
    return BlobKey.media(hashlib.sha256(data).hexdigest()), data


def _event_key_and_bytes(number: int) -> tuple[BlobKey, bytes]:
    signed = event(number)
    return BlobKey.event(signed.id), signed.canonical_bytes()


# --- what is stored --------------------------------------------------------------------


def test_layout_headers_and_metadata(store: S3Store, s3_client: Any, tmp_path: Path) -> None:
    signed = event(300_001)
    key = BlobKey.event(signed.id)
    store.put(key, signed.canonical_bytes(), BlobInfo(event_type="VOTE", author=signed.author, created_at=123))
    assert store.key_path(key) == f"{store.prefix}/events/{signed.id}.json"
    head = s3_client.head_object(Bucket=BUCKET, Key=store.key_path(key))
    assert head["ContentType"] == "application/json"
    assert head["CacheControl"] == IMMUTABLE == "public, max-age=31536000, immutable"
    assert head["Metadata"] == {"event-type": "VOTE", "event-author": signed.author, "event-timestamp": "123"}

    png_key, png = _media("png")
    store.put(png_key, png, BlobInfo(content_type="image/png"))
    assert store.key_path(png_key) == f"{store.prefix}/media/{png_key.digest}"
    head = s3_client.head_object(Bucket=BUCKET, Key=store.key_path(png_key))
    assert (head["ContentType"], head["CacheControl"], head["Metadata"]) == ("image/png", IMMUTABLE, {})

    raw_key, raw = _media("raw")
    store.fill(raw_key, raw)  # a BlobInfo() without a type: media default to bytes, not JSON
    assert s3_client.head_object(Bucket=BUCKET, Key=store.key_path(raw_key))["ContentType"] == (
        "application/octet-stream"
    )
    source = tmp_path / "big"
    source.write_bytes(os.urandom(9 << 20))  # over a part: the multipart path
    big_key = BlobKey.media(hashlib.sha256(source.read_bytes()).hexdigest())
    store.put_path(big_key, source)
    head = s3_client.head_object(Bucket=BUCKET, Key=store.key_path(big_key))
    assert (head["ContentType"], head["CacheControl"], head["ContentLength"]) == (
        "application/octet-stream",
        IMMUTABLE,
        9 << 20,
    )


def test_writes_are_create_only(store: S3Store) -> None:
    key = BlobKey.event(event(300_002).id)
    original = event(300_002).canonical_bytes()
    store.put(key, original, BlobInfo())
    store.put(key, event(300_003).canonical_bytes(), BlobInfo())  # other bytes, same address: no error...
    assert store.get_unverified(key) == original  # ...and the first copy stays
    media_key, media = _media("create-only")
    store.put(media_key, media, BlobInfo())
    store.put(media_key, b"not it", BlobInfo())
    assert store.get(media_key) == media
    store.put(key, b"{}", BlobInfo(), replace=True)  # replace does overwrite (repair)
    assert store.get_unverified(key) == b"{}"


# --- streaming media -------------------------------------------------------------------


@pytest.mark.parametrize("size", [3000, 9 << 20], ids=["one-put", "multipart"])
def test_put_path_refuses_a_file_that_is_not_its_address(
    store: S3Store, s3_client: Any, tmp_path: Path, size: int
) -> None:
    source = tmp_path / "media"
    source.write_bytes(os.urandom(size))
    key = BlobKey.media(hashlib.sha256(b"something else").hexdigest())
    with pytest.raises(IntegrityError, match="file hashes to"):
        store.put_path(key, source)
    assert not store.has(key)  # nothing was written...
    uploads = s3_client.list_multipart_uploads(Bucket=BUCKET, Prefix=store.prefix).get("Uploads")
    assert not uploads  # ...and the multipart upload was aborted, not left holding parts


def test_put_path_is_idempotent_and_get_to_path_streams(store: S3Store, tmp_path: Path) -> None:
    source = tmp_path / "media"
    source.write_bytes(os.urandom(9 << 20))
    key = BlobKey.media(hashlib.sha256(source.read_bytes()).hexdigest())
    store.put_path(key, source)
    store.put_path(key, source)
    store.get_to_path(key, tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == source.read_bytes()


def test_get_to_path_removes_a_corrupt_download(store: S3Store, s3_client: Any, tmp_path: Path) -> None:
    key, data = _media("corrupt-download", 3 << 20)
    store.put(key, data, BlobInfo())
    s3_client.put_object(Bucket=BUCKET, Key=store.key_path(key), Body=data[:-1] + b"!")
    with pytest.raises(IntegrityError, match="copy hashes to"):
        store.get_to_path(key, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(BlobNotFound):
        store.get_to_path(BlobKey.media("0" * 64), tmp_path / "missing")
    assert not (tmp_path / "missing").exists()


# --- listing, batches, URLs --------------------------------------------------------------


def test_list_pages_and_put_many(store: S3Store) -> None:
    items = [(*_media(f"many-{i}", 16), BlobInfo()) for i in range(1100)]  # over one 1000-key page
    assert store.put_many(items) == [None] * len(items)
    assert set(store.list(Namespace.MEDIA)) == {key.digest for key, _, _ in items}
    assert list(store.list(Namespace.EVENTS)) == []


def test_open_store_from_url(s3_server: SeaweedServer) -> None:
    url = (
        f"s3://{BUCKET}/url/{uuid.uuid4().hex}?endpoint={s3_server.endpoint_url}&region={s3_server.region}"
        f"&timeout=5&create_bucket=1&access_key={s3_server.access_key}&secret_key={s3_server.secret_key}"
    )
    store = open_store(url)
    assert isinstance(store, S3Store)
    assert store.name.startswith(f"s3:{BUCKET}/url/")
    assert s3_server.secret_key not in repr(store)
    assert store.timeout == 5
    signed = event(300_004)
    store.put(BlobKey.event(signed.id), signed.canonical_bytes(), BlobInfo())
    assert store.get(BlobKey.event(signed.id)) == signed.canonical_bytes()
    assert open_store(url, name="primary").name == "primary"
    with pytest.raises(ConfigError, match="unknown parameter"):
        open_store(f"s3://{BUCKET}/x?endpiont=http://127.0.0.1:1")
    with pytest.raises(ConfigError, match="timeout"):
        open_store(f"s3://{BUCKET}/x?timeout=0")
    with pytest.raises(ConfigError, match="together"):
        open_store(f"s3://{BUCKET}/x?access_key=a")


_AWS_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL")


@pytest.mark.parametrize("source", ["environment", "shared-config"])
def test_credentials_without_the_url(
    s3_server: SeaweedServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    source: str,
) -> None:
    for name in _AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata probes from a test
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    if source == "environment":
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    else:  # ~/.aws/credentials, through boto3's chain
        (tmp_path / "credentials").write_text(
            f"[default]\naws_access_key_id = {s3_server.access_key}\naws_secret_access_key = {s3_server.secret_key}\n"
        )
    store = open_store(f"s3://{BUCKET}/creds/{source}?endpoint={s3_server.endpoint_url}&create_bucket=1")
    key, data = _event_key_and_bytes(300_010)
    store.put(key, data, BlobInfo())
    assert store.get(key) == data


def test_missing_bucket_is_not_a_missing_blob(s3_server: SeaweedServer) -> None:
    store = make_store(s3_server, f"absent-{uuid.uuid4().hex[:12]}", create_bucket=False)
    with pytest.raises(StorageError, match="bucket does not exist") as info:
        store.get(BlobKey.event(event(300_005).id))
    assert not isinstance(info.value, BlobNotFound)
    report = store.health()
    assert not report.ok
    assert report.detail


def test_create_bucket(s3_server: SeaweedServer, s3_client: Any) -> None:
    bucket = f"created-{uuid.uuid4().hex[:12]}"
    make_store(s3_server, bucket)
    make_store(s3_server, bucket)  # again: the bucket is ours already, fine
    s3_client.head_bucket(Bucket=bucket)


# --- failures ----------------------------------------------------------------------------


def _eventually(call: Callable[[], T], within: float = 15.0) -> T:
    """call() once the server serves again: a restarted SeaweedFS answers ListBuckets (the
    harness's readiness probe) before its volume server has rejoined, and 500 until then."""
    deadline = time.monotonic() + within
    while True:
        try:
            return call()
        except BackendUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_stopped_server_is_unavailable_then_back(fresh_s3_server: SeaweedServer) -> None:
    store = make_store(fresh_s3_server)
    signed = event(300_006)
    key = BlobKey.event(signed.id)
    store.put(key, signed.canonical_bytes(), BlobInfo())
    fresh_s3_server.stop()
    for call in (lambda: store.get(key), lambda: store.put(key, signed.canonical_bytes(), BlobInfo())):
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match=f"s3://{BUCKET}/"):
            call()
        assert time.monotonic() - started < TIMEOUT + 1
    assert not store.health().ok
    assert isinstance(store.get_many([key])[key], BackendUnavailable)
    fresh_s3_server.start()
    assert _eventually(lambda: store.get(key)) == signed.canonical_bytes()
    assert store.health().ok


def test_hung_server_fails_within_the_timeout(fresh_s3_server: SeaweedServer) -> None:
    store = make_store(fresh_s3_server)
    signed = event(300_007)
    key = BlobKey.event(signed.id)
    store.put(key, signed.canonical_bytes(), BlobInfo())
    assert fresh_s3_server.pid is not None
    os.killpg(fresh_s3_server.pid, signal.SIGSTOP)  # the process group: weed and anything it runs
    try:
        calls = {
            "get": lambda: store.get(key),
            "put": lambda: store.put(BlobKey.event(event(300_008).id), event(300_008).canonical_bytes(), BlobInfo()),
            "has": lambda: store.has(key),
        }
        for action, call in calls.items():
            started = time.monotonic()
            with pytest.raises(BackendUnavailable):
                call()
            elapsed = time.monotonic() - started
            assert TIMEOUT * 0.8 < elapsed < TIMEOUT * 3 + 2, f"{action} took {elapsed:.1f}s"
    finally:
        os.killpg(fresh_s3_server.pid, signal.SIGCONT)
    # Resumed, SeaweedFS may answer 500 for a moment while its parts reconnect.
    assert _eventually(lambda: store.get(key)) == signed.canonical_bytes()


class _Status(http.server.BaseHTTPRequestHandler):
    """Answers every request with the status code at the end of its path."""

    def _answer(self) -> None:
        code = int(self.path.split("?")[0].rsplit("-", 1)[1])
        codes = {503: b"SlowDown", 409: b"ConditionalRequestConflict", 412: b"PreconditionFailed"}
        body = b"<Error><Code>%s</Code></Error>" % codes[code] if code in codes else b""
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_HEAD = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_s3() -> Iterator[S3Store]:
    """An S3Store on a fake server that answers with the status code its key ends in."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Status)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_port}"
    yield S3Store("fake", endpoint=endpoint, access_key="a", secret_key="b", timeout=TIMEOUT)  # noqa: S106
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("status", "error"),
    [(503, BackendUnavailable), (500, BackendUnavailable), (429, BackendUnavailable), (400, StorageError)],
)
def test_server_errors_are_mapped(fake_s3: S3Store, status: int, error: type[StorageError]) -> None:
    fake_s3.key_path = lambda key: f"k-{status}"  # type: ignore[method-assign]
    with pytest.raises(StorageError, match=f"s3://fake/k-{status}") as info:
        fake_s3.get(BlobKey.event(event(300_009).id))
    assert type(info.value) is error


def test_create_conflicts_are_mapped(fake_s3: S3Store) -> None:
    """412 on a create-only PUT is success (the address is taken); AWS's 409 is "try again"."""
    key, data = BlobKey.event(event(300_011).id), event(300_011).canonical_bytes()
    fake_s3.key_path = lambda key: "k-412"  # type: ignore[method-assign]
    assert fake_s3.put(key, data, BlobInfo()) is None
    fake_s3.key_path = lambda key: "k-409"  # type: ignore[method-assign]
    with pytest.raises(BackendUnavailable, match="ConditionalRequestConflict"):
        fake_s3.put(key, data, BlobInfo())
