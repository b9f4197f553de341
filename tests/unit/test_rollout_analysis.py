"""Canary analysis: minimum samples, each check, and the statistics kept with a verdict."""

from __future__ import annotations

import numpy as np
import pytest

from rollout.analysis import ModelWindow, Outcome, Pairs, Window, analyse, ks_distance
from rollout.policy import RolloutPolicy

POLICY = RolloutPolicy(min_shadow_pairs=200, min_canary_requests=50, min_canary_pairs=30)
RNG = np.random.default_rng(0)


def window(
    n: int, *, agree: float = 1.0, errors: int = 0, slow: float = 1.0, conf_shift: float = 0.0
) -> Window:
    classes = RNG.integers(0, 10, n)
    other = classes.copy()
    flip = RNG.random(n) > agree
    other[flip] = (other[flip] + 1) % 10
    conf = RNG.uniform(0.6, 1.0, n)
    lat = RNG.gamma(4, 0.25, n)
    return Window(
        ModelWindow(lat, 0),
        ModelWindow(lat * slow, errors),
        Pairs(classes, other, conf, np.clip(conf - conf_shift, 0, 1)),
    )


def test_too_few_pairs_gives_no_verdict_and_says_how_many() -> None:
    verdict = analyse(window(150), POLICY, shadow=True)
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert "150 mirrored requests, the shadow gate needs 200" in verdict.summary()


def test_a_faithful_challenger_passes_with_statistics_recorded() -> None:
    verdict = analyse(window(400, agree=0.995), POLICY, shadow=True)
    assert verdict.outcome is Outcome.PASS, verdict.summary()
    by_name = {c.name: c for c in verdict.checks}
    assert set(by_name) == {"error_rate", "p99_latency_ms", "agreement", "confidence_ks"}
    assert by_name["agreement"].n == 400 and by_name["agreement"].value == pytest.approx(0.995, abs=0.01)
    assert verdict.to_json()["samples"] == {
        "champion_requests": 400,
        "challenger_requests": 400,
        "pairs": 400,
    }


@pytest.mark.parametrize(
    ("kwargs", "failed"),
    [
        ({"agree": 0.5}, "agreement"),
        ({"errors": 40}, "error_rate"),
        ({"conf_shift": 0.3}, "confidence_ks"),
    ],
)
def test_each_check_can_fail_the_step(kwargs: dict[str, float], failed: str) -> None:
    verdict = analyse(window(400, **kwargs), POLICY, shadow=True)  # type: ignore[arg-type]
    assert verdict.outcome is Outcome.FAIL
    assert [c.name for c in verdict.checks if c.passed is False] == [failed]
    assert failed in verdict.summary()


def test_canary_needs_challenger_requests_and_skips_agreement_on_few_pairs() -> None:
    few = Window(ModelWindow(np.ones(100), 0), ModelWindow(np.ones(20), 0), window(0).pairs)
    assert analyse(few, POLICY, shadow=False).outcome is Outcome.INCONCLUSIVE
    enough = Window(ModelWindow(np.ones(100), 0), ModelWindow(np.ones(60), 0), window(10).pairs)
    verdict = analyse(enough, POLICY, shadow=False)
    assert verdict.outcome is Outcome.PASS
    assert {c.name: c.passed for c in verdict.checks}["agreement"] is None


def test_a_challenger_that_only_fails_is_judged_on_errors() -> None:
    w = Window(ModelWindow(np.ones(100), 0), ModelWindow(np.array([]), 60), window(0).pairs)
    verdict = analyse(w, POLICY, shadow=False)
    assert verdict.outcome is Outcome.FAIL
    assert {c.name: c.passed for c in verdict.checks} == {
        "error_rate": False,
        "p99_latency_ms": None,
        "agreement": None,
    }


def test_ks_distance_matches_scipy() -> None:
    from scipy.stats import ks_2samp

    a, b = RNG.normal(0, 1, 300), RNG.normal(0.3, 1, 200)
    assert ks_distance(a, b) == pytest.approx(ks_2samp(a, b).statistic)
    assert ks_distance(a, a) == 0.0


def test_latency_is_gated_in_the_canary_and_only_reported_in_the_shadow() -> None:
    slow = window(400, slow=10.0)
    shadow = analyse(slow, POLICY, shadow=True)
    assert shadow.outcome is Outcome.PASS
    assert {c.name: c.passed for c in shadow.checks}["p99_latency_ms"] is None
    canary = analyse(slow, POLICY, shadow=False)
    assert canary.outcome is Outcome.FAIL
    assert [c.name for c in canary.checks if c.passed is False] == ["p99_latency_ms"]
