"""The deployment files in ``deploy/`` agree with the code: settings, commands, URLs and limits.

No container runtime or cluster runs here, so the images are not built and nothing is applied;
what can drift silently is checked instead: every configuration file loads with stave's own
strict loader, every ``STAVE_*`` variable names a real setting, every command line parses with
stave's own CLI, every backend URL names a known driver, and the manifests build with kustomize.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import typer.main
import yaml

from stave.anchor.urls import DRIVERS as LEDGER_DRIVERS
from stave.cli.main import app
from stave.config import _env_names, load_settings
from stave.store.urls import DRIVERS as STORE_DRIVERS

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CONFIGS = [DEPLOY / "stave.toml", DEPLOY / "k8s" / "stave.toml"]
MEMORY_LIMIT_MIB = 512  # seed 004's container limit


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _containers() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in _documents(path):
            if doc.get("kind") == "Deployment":
                for container in doc["spec"]["template"]["spec"]["containers"]:
                    yield f"{path.name}:{container['name']}", container


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def _parse_cli(args: list[str]) -> tuple[str, dict[str, Any]]:
    """Parse a stave command line as the real CLI would, without running it: (command path, its params)."""
    command: Any = typer.main.get_command(app)  # typer's own (vendored) click group
    names: list[str] = []
    with contextlib.ExitStack() as stack:
        context = stack.enter_context(command.make_context("stave", list(args)))
        while hasattr(command, "resolve_command"):  # a group: descend into the subcommand
            # The subcommand and its arguments, as click's Group.invoke takes them.
            name, command, rest = command.resolve_command(context, [*context._protected_args, *context.args])
            assert command is not None
            names.append(name)
            context = stack.enter_context(command.make_context(name, rest, parent=context))
        return " ".join(names), dict(context.params)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_config_file_loads_strictly_and_names_known_drivers(path: Path) -> None:
    settings = load_settings(path, environ={})
    assert settings.auth.relays_only  # apps reach the servers through relays in both layouts
    assert settings.store.min_redundancy <= len(settings.store.durable)
    for url in [*settings.store.durable, settings.store.cache]:
        assert urlsplit(url).scheme in STORE_DRIVERS, url
        if url.startswith("s3://"):
            from stave.store.s3 import _PARAMS

            assert set(parse_qs(urlsplit(url).query)) <= _PARAMS, url
    for url in settings.anchor.ledgers:
        assert urlsplit(url).scheme in LEDGER_DRIVERS, url


def test_environment_variables_name_real_settings() -> None:
    known = _env_names()
    found = []
    for _, container in _containers():
        found += [item["name"] for item in container.get("env", []) if item["name"].startswith("STAVE_")]
    for service in _compose()["services"].values():
        found += [name for name in (service.get("environment") or {}) if name.startswith("STAVE_")]
    found += [name for name in _compose()["x-stave-server"]["environment"] if name.startswith("STAVE_")]
    assert found, "the deployment sets no STAVE_ variable: the check would be empty"
    unknown = sorted(set(found) - set(known) - {"STAVE_DATA_DIR", "STAVE_CONFIG"})
    assert unknown == []


def test_every_command_line_parses_with_the_real_cli() -> None:
    commands = []
    for where, container in _containers():
        commands.append((where, container["args"]))
    for name, service in _compose()["services"].items():
        if str(service.get("image", "")).startswith("stave:") and "command" in service:
            commands.append((f"compose:{name}", service["command"]))
    commands.append(("compose:x-stave-server", _compose()["x-stave-server"]["command"]))
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    cmd = next(line for line in dockerfile.splitlines() if line.startswith("CMD "))
    commands.append(("Dockerfile CMD", json.loads(cmd.removeprefix("CMD "))))
    parsed = {where: _parse_cli(args) for where, args in commands}
    assert {name for name, _ in parsed.values()} == {"serve", "relay", "project follow"}
    for where, (name, params) in parsed.items():
        if name == "project follow":
            continue
        assert params["host"] == "0.0.0.0", where  # noqa: S104 - containers listen on their own interface
        if name == "relay":
            assert params["upstream"], where
    with pytest.raises(Exception, match="no-such-option"):  # the check can fail: an unknown option is refused
        _parse_cli(["serve", "--no-such-option"])


def test_servers_fit_the_container_memory_limit_and_are_probed() -> None:
    units = {"Mi": 1, "Gi": 1024}
    for where, container in _containers():
        limit = container["resources"]["limits"]["memory"]
        assert int(limit[:-2]) * units[limit[-2:]] <= MEMORY_LIMIT_MIB, where
        assert "readinessProbe" in container, where
    servers = [c for w, c in _containers() if w.startswith("server.yaml")]
    assert servers[0]["readinessProbe"]["httpGet"]["path"] == "/health"
    assert _compose()["x-stave-server"]["deploy"]["resources"]["limits"]["memory"] == f"{MEMORY_LIMIT_MIB}M"


def test_the_dockerfile_copies_what_exists() -> None:
    root = DEPLOY.parent
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for source in shlex.split(line)[1:-1]:
                assert (root / source).exists(), line


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with its built-in kustomize) is not installed")
def test_the_manifests_build_with_kustomize() -> None:
    built = subprocess.run(
        ["kubectl", "kustomize", str(DEPLOY / "k8s")], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    documents = [doc for doc in yaml.safe_load_all(built) if doc]
    kinds = sorted(doc["kind"] for doc in documents)
    assert kinds == ["ConfigMap", "Deployment", "Deployment", "Deployment", "Namespace", "Service", "Service"]
    [config_map] = [doc for doc in documents if doc["kind"] == "ConfigMap"]
    generated = config_map["metadata"]["name"]  # kustomize adds a content hash and rewrites the references
    [server] = [doc for doc in documents if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "stave-server"]
    volumes = {v["name"]: v for v in server["spec"]["template"]["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == generated
    assert all(doc["metadata"].get("namespace") == "stave" for doc in documents if doc["kind"] != "Namespace")
