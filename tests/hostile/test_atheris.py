"""The atheris (libFuzzer) targets of ``atheris_targets.py``, each in its own process.

In ``make test``: a fixed number of runs per target (seconds in all). Under ``make drill``
(``STAVE_FUZZ=drill``): ``STAVE_FUZZ_SECONDS`` per target (libFuzzer's ``-max_total_time``), so
the run always ends by itself. atheris is in the ``drill`` extra (``make drill`` installs it);
without it these tests are skipped and say why.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile.fuzzing import DRILL, DRILL_SECONDS

pytest.importorskip("atheris", reason="atheris is not installed: `make drill` installs the drill extra")

from tests.hostile.atheris_targets import TARGETS, write_seeds  # after the skip: it imports atheris

pytestmark = [pytest.mark.drill] if DRILL else []

ROOT = Path(__file__).resolve().parents[2]
CI_RUNS = 3000


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_atheris_target(target: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    assert write_seeds(target, corpus) > 0
    budget = [f"-max_total_time={round(DRILL_SECONDS)}"] if DRILL else [f"-runs={CI_RUNS}", "-seed=1"]
    command = [sys.executable, "-m", "tests.hostile.atheris_targets", target, str(corpus), *budget]
    command += ["-rss_limit_mb=2048", "-timeout=20", f"-artifact_prefix={tmp_path}/"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=DRILL_SECONDS + 300)
    crashes = sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(("crash-", "timeout-", "oom-")))
    assert done.returncode == 0, f"{target}: {crashes}\n{done.stderr[-4000:]}"
    runs = re.search(r"Done (\d+) runs in (\d+) second", done.stderr)
    assert runs is not None, done.stderr[-2000:]
    assert int(runs[1]) >= (1000 if DRILL else CI_RUNS)
    print(f"atheris {target}: {runs[1]} runs in {runs[2]} s, no finding")
    if DRILL:
        from tests.hostile.fuzzing import record_figures

        record_figures(f"atheris {target}", {"examples": int(runs[1]), "seconds": int(runs[2])})
