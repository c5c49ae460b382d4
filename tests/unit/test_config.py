"""Configuration precedence: options > environment > file > defaults; typos are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from stave.config import load_settings
from stave.errors import ConfigError


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings(environ={}, cwd=tmp_path)
    assert settings.event.max_bytes == 1 << 20
    assert settings.data_path.name == "stave"


def test_precedence(tmp_path: Path) -> None:
    config = tmp_path / "stave.toml"
    config.write_text('data_dir = "/from/file"\n[event]\nmax_bytes = 2000\nmax_depth = 10\n')
    from_file = load_settings(environ={}, cwd=tmp_path)
    assert (from_file.data_dir, from_file.event.max_bytes, from_file.event.max_depth) == ("/from/file", 2000, 10)
    environ = {"STAVE_DATA_DIR": "/from/env", "STAVE_EVENT_MAX_BYTES": "3000"}
    from_env = load_settings(environ=environ, cwd=tmp_path)
    assert (from_env.data_dir, from_env.event.max_bytes, from_env.event.max_depth) == ("/from/env", 3000, 10)
    from_option = load_settings(environ=environ, cwd=tmp_path, overrides={"data_dir": "/from/option"})
    assert from_option.data_dir == "/from/option"
    policy = from_option.event.policy()
    assert (policy.limits.max_bytes, policy.limits.max_depth) == (3000, 10)


def test_explicit_and_env_config_files(tmp_path: Path) -> None:
    other = tmp_path / "other.toml"
    other.write_text("[event]\nmax_future_skew = 5\n")
    assert load_settings(other, environ={}, cwd=tmp_path).event.max_future_skew == 5
    assert load_settings(environ={"STAVE_CONFIG": str(other)}, cwd=tmp_path).event.max_future_skew == 5
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", environ={}, cwd=tmp_path)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[event]\nmax_bites = 1\n", "max_bites"),
        ('[event]\nmax_bytes = "big"\n', "max_bytes"),
        ("data_dir = \n", "not valid TOML"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, text: str, fragment: str) -> None:
    (tmp_path / "stave.toml").write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_settings(environ={}, cwd=tmp_path)


def test_bad_environment_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="max_depth"):
        load_settings(environ={"STAVE_EVENT_MAX_DEPTH": "deep"}, cwd=tmp_path)
