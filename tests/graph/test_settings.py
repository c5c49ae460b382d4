"""The [graph] settings: the database URL and the governance rules, from a file or the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from stave.config import load_settings
from stave.errors import ConfigError
from stave.graph.rules import Rules


def test_defaults_are_musicbrainz_constants_and_a_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings(environ={}, overrides={"data_dir": str(tmp_path)}, cwd=tmp_path)
    assert settings.graph_url == f"sqlite:///{tmp_path / 'graph.db'}"
    assert settings.graph.rules() == Rules()


def test_file_and_environment_set_the_rules(tmp_path: Path) -> None:
    config = tmp_path / "stave.toml"
    config.write_text('[graph]\nurl = "postgresql://stave@db/stave"\nvoting_period = 3600\nfinalizers = ["PUB_K1_a"]\n')
    settings = load_settings(
        config,
        environ={"STAVE_GRAPH_MIN_VOTES": "5", "STAVE_GRAPH_REWARD_DISTRIBUTORS": "PUB_K1_x, PUB_K1_y"},
        cwd=tmp_path,
    )
    rules = settings.graph.rules()
    assert settings.graph_url == "postgresql://stave@db/stave"
    assert (rules.min_votes, rules.voting_period) == (5, 3600)
    assert rules.finalizers == frozenset({"PUB_K1_a"})
    assert rules.voters is None  # unset: anyone
    assert rules.reward_distributors == frozenset({"PUB_K1_x", "PUB_K1_y"})


def test_bad_values_name_the_setting(tmp_path: Path) -> None:
    settings = load_settings(environ={"STAVE_GRAPH_MIN_VOTES": "0"}, cwd=tmp_path)
    with pytest.raises(ConfigError, match=r"graph\.min_votes"):
        settings.graph.rules()
    with pytest.raises(ConfigError, match="graph"):
        load_settings(environ={"STAVE_GRAPH_VOTING_PERIOD": "soon"}, cwd=tmp_path)
