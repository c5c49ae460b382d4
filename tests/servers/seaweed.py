"""S3: SeaweedFS `weed mini` (master, volume, filer and S3 gateway in one process)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import shutil
import sys
import urllib.request
from pathlib import Path

import orjson

from ._process import HOST, Server, ServerNotInstalled, free_ports

GRPC_OFFSET = 10000  # weed derives each gRPC port as http port + 10000
# weed mini's components: each gets an http port P, and P + GRPC_OFFSET for gRPC.
COMPONENTS = ("master", "volume", "filer", "s3", "admin")


class SeaweedServer(Server):
    """`weed -logdir=LOG mini -dir=DATA -ip=127.0.0.1 ...` with an S3 identity of our own.

    Attributes: endpoint_url (http://127.0.0.1:P), access_key, secret_key, region, port
    (S3), ports (every http port by component; gRPC is each + 10000), data_dir,
    boto3_kwargs (for boto3.client("s3", **kwargs)), env (AWS_* variables).

    Every port weed opens is set explicitly (gRPC too, and the admin UI's worker dials
    admin port + 10000 whatever admin.port.grpc says, so both must be free); WebDAV,
    Iceberg and Lance are off. `weed mini` stops cleanly on SIGTERM in about a second
    (`weed server` ignores SIGTERM). Requests need SigV4 signatures with our key pair:
    anonymous requests get 403. Create-only writes (If-None-Match: *) get 412 when the
    key exists.
    """

    name = "s3"
    start_timeout = 30.0

    def __init__(self, *, region: str = "us-east-1", extra_args: tuple[str, ...] = (), base_dir: Path | None = None):
        self.extra_args = extra_args
        self.host = HOST
        self.region = region
        self.access_key = "stave" + secrets.token_hex(6)
        self.secret_key = secrets.token_hex(20)
        self.ports: dict[str, int] = {}
        super().__init__(base_dir=base_dir)
        self.log_dir = self.tmp_dir / "weed-logs"
        self.config_path = self.tmp_dir / "s3.json"

    @classmethod
    def binary(cls) -> str:
        # The venv's bin is not on PATH when pytest is run as .venv/bin/pytest.
        beside_python = Path(sys.executable).parent / "weed"
        path = str(beside_python) if beside_python.exists() else shutil.which("weed")
        if path is None:
            raise ServerNotInstalled(cls.name, f"SeaweedFS's weed is neither in {beside_python.parent} nor on PATH")
        return path

    @classmethod
    def check_installed(cls) -> None:
        cls.binary()

    @property
    def port(self) -> int:
        return self.ports["s3"]

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def boto3_kwargs(self) -> dict[str, str]:
        return {
            "endpoint_url": self.endpoint_url,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            "region_name": self.region,
        }

    @property
    def env(self) -> dict[str, str]:
        """What boto3, obstore and the aws CLI read from the environment."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ALLOW_HTTP": "true",
        }

    def _allocate_ports(self) -> None:
        self.ports = dict(zip(COMPONENTS, free_ports(len(COMPONENTS), also_free_at=GRPC_OFFSET), strict=True))

    def all_ports(self) -> list[int]:
        return [p + offset for p in self.ports.values() for offset in (0, GRPC_OFFSET)]

    def _prepare(self) -> None:
        self.log_dir.mkdir(exist_ok=True)
        identity = {
            "name": "stave",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
        self.config_path.write_bytes(orjson.dumps({"identities": [identity]}))

    def _command(self) -> list[str]:
        ports = [f"-{c}.port={p}" for c, p in self.ports.items()]
        ports += [f"-{c}.port.grpc={p + GRPC_OFFSET}" for c, p in self.ports.items()]
        return [
            self.binary(),
            f"-logdir={self.log_dir}",  # a global flag: before the subcommand
            "mini",
            f"-dir={self.data_dir}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            *ports,
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            f"-s3.config={self.config_path}",
            f"-filer.localSocket={self.tmp_dir / 'filer.sock'}",  # default: /tmp/seaweedfs-filer-<port>.sock
            f"-s3.localSocket={self.tmp_dir / 's3.sock'}",
            "-master.telemetry=false",  # no reports to the internet
            "-volume.preStopSeconds=0",  # stop in ~1 s instead of ~4 s
            *self.extra_args,
        ]

    def _ready(self) -> bool:
        # A signed ListBuckets: the gateway is up, it reaches the filer, and our key works.
        with urllib.request.urlopen(self.signed_request("GET", "/"), timeout=2) as response:  # noqa: S310 (our http URL)
            return bool(response.status == 200)

    def _after_stop(self) -> None:
        # weed puts its gRPC unix sockets in /tmp whatever TMPDIR says, and removes them only
        # on a clean shutdown: after a kill they are ours to remove.
        for component, port in self.ports.items():
            Path(f"/tmp/seaweedfs-{component}-grpc-{port + GRPC_OFFSET}.sock").unlink(missing_ok=True)  # noqa: S108

    def signed_request(self, method: str, path: str, body: bytes = b"") -> urllib.request.Request:
        """A SigV4-signed request for `path` (no query string), for dependency-free probes."""
        now = dt.datetime.now(dt.UTC)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        scope = f"{amz_date[:8]}/{self.region}/s3/aws4_request"
        payload_hash = hashlib.sha256(body).hexdigest()
        host = f"{self.host}:{self.port}"
        headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
        signed_headers = ";".join(headers)
        canonical = "\n".join(
            [method, path, "", *(f"{k}:{v}" for k, v in headers.items()), "", signed_headers, payload_hash]
        )
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key = ("AWS4" + self.secret_key).encode()
        for part in (amz_date[:8], self.region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
            f"SignedHeaders={signed_headers}, Signature={signature}"
        )
        del headers["host"]  # urllib sets it
        url = self.endpoint_url + path
        return urllib.request.Request(url, data=body or None, method=method, headers=headers)  # noqa: S310 (http)
