"""Hypothesis profiles for the fuzz targets: brief and deterministic in ``make test``, long in ``make drill``.

- ``stave-fuzz-ci`` (the default): ``max_examples`` per target as the target asks (a few hundred),
  ``derandomize=True`` so every run tries the same inputs and a failure reproduces at once.
- ``stave-fuzz-drill`` (``STAVE_FUZZ=drill``): random inputs, rounds of ``DRILL_EXAMPLES`` repeated
  until ``STAVE_FUZZ_SECONDS`` (default 60) per target have passed; it always stops by itself.

The profiles are applied per test with :func:`fuzz`, never loaded globally, so other property
tests keep their own settings.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings

__all__ = ["DRILL", "DRILL_SECONDS", "fuzz"]

DRILL = os.environ.get("STAVE_FUZZ", "ci") == "drill"
DRILL_SECONDS = float(os.environ.get("STAVE_FUZZ_SECONDS", "60"))
DRILL_EXAMPLES = 2000
_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much, HealthCheck.large_base_example]

settings.register_profile(
    "stave-fuzz-ci", derandomize=True, deadline=None, database=None, suppress_health_check=_QUIET, print_blob=True
)
settings.register_profile(
    "stave-fuzz-drill",
    max_examples=DRILL_EXAMPLES,
    derandomize=False,
    deadline=None,
    database=None,
    suppress_health_check=_QUIET,
    print_blob=True,
)

#: Examples run per target in this process (for the drill's figures).
FIGURES: dict[str, dict[str, float]] = {}


def fuzz(ci_examples: int) -> Callable[[Callable[..., Any]], Callable[[], None]]:
    """Apply the fuzz profile to a ``@given`` test (no fixtures); in drill mode run it for a while."""

    def decorate(test: Callable[..., Any]) -> Callable[[], None]:
        if not DRILL:
            configured: Callable[[], None] = settings(settings.get_profile("stave-fuzz-ci"), max_examples=ci_examples)(
                test
            )
            return configured
        long_run: Callable[[], None] = settings(settings.get_profile("stave-fuzz-drill"))(test)
        calls = [0]
        inner = test.hypothesis.inner_test  # type: ignore[attr-defined]

        def counted(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            return inner(*args, **kwargs)

        test.hypothesis.inner_test = counted  # type: ignore[attr-defined]

        def for_a_while() -> None:
            began = time.monotonic()
            rounds = 0
            while rounds == 0 or time.monotonic() - began < DRILL_SECONDS:
                long_run()
                rounds += 1
            name = test.__name__.removeprefix("test_")
            FIGURES[name] = {"examples": calls[0], "rounds": rounds, "seconds": round(time.monotonic() - began, 1)}
            print(f"fuzz {name}: {calls[0]} examples in {FIGURES[name]['seconds']} s, no finding")
            record_figures(name, FIGURES[name])

        for_a_while.__name__ = test.__name__
        for_a_while.__qualname__ = test.__qualname__
        for_a_while.__doc__ = test.__doc__
        for_a_while.__module__ = test.__module__
        return for_a_while

    return decorate


def record_figures(name: str, figures: dict[str, float]) -> None:
    """Into the drills' figures (``bench/results/drills.json``) when ``make drill`` asks for them."""
    if os.environ.get("STAVE_DRILL_REPORT") != "1":
        return
    from tests.drills.toolkit import record

    record(f"fuzz {name}", {**figures, "failures": 0})
