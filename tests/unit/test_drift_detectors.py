"""Drift detectors: unshifted windows rarely alarm (many seeds, binomial tolerance), shifts alarm,
small windows get no verdict, and the input test is Evidently's pinned ``ks`` stattest."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from lifecycle.names import Severity
from monitoring.detectors import DriftConfig, Outputs, Subspace, detect, ks_pvalues
from monitoring.shifts import NONE, Shift, window

FEATURES = [f"f{i}" for i in range(16)]
CLASSES = [str(i) for i in range(4)]


def _model(x: np.ndarray) -> Outputs:
    """A fixed linear 'model' over 16 features and 4 classes."""
    w = np.random.default_rng(42).normal(size=(16, 4)).astype(np.float32)
    return Outputs.from_logits(x.astype(np.float32), (x @ w).astype(np.float32))


def _pool(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(n, 16)).astype(np.float32)
    return x, _model(x).classes


def test_unshifted_windows_alarm_at_most_about_alpha() -> None:
    rng = np.random.default_rng(0)
    ref_x, _ = _pool(rng, 500)
    reference = _model(ref_x)
    trials, alarms = 200, 0
    for _ in range(trials):
        current, _ = _pool(rng, 150)  # fresh draws from the same distribution
        alarms += detect(reference, _model(current), DriftConfig(alpha=0.05), FEATURES, CLASSES).drift
    # a true rate of 5 % exceeds this bound with probability < 0.1 %; Bonferroni keeps it lower
    assert alarms <= binom.ppf(0.999, trials, 0.05), f"{alarms}/{trials} false alarms"


def test_a_strong_shift_alarms_critically_and_names_the_features() -> None:
    rng = np.random.default_rng(1)
    ref_x, _ = _pool(rng, 500)
    cur_x, _ = _pool(rng, 200)
    cur_x[:, 3] += 2.0
    verdict = detect(_model(ref_x), _model(cur_x), DriftConfig(), FEATURES, CLASSES)
    assert verdict.drift and verdict.severity is Severity.CRITICAL
    input_result = next(d for d in verdict.detectors if d.name == "input")
    assert input_result.drifted[0] == "f3"
    assert "input" in verdict.summary() and "f3" in verdict.summary()


def test_label_shift_shows_only_in_the_class_histogram() -> None:
    rng = np.random.default_rng(2)
    pool_x, pool_y = _pool(rng, 3000)
    reference = _model(pool_x[:600])
    x = window(pool_x[600:], pool_y[600:], 300, Shift("knockout", fraction=1.0), rng, knocked_out=0)
    verdict = detect(reference, _model(x), DriftConfig(), FEATURES, CLASSES)
    by_name = {d.name: d for d in verdict.detectors}
    assert by_name["classes"].drift and by_name["classes"].drifted[0].startswith("0 ")


def test_too_small_a_window_gets_no_verdict() -> None:
    rng = np.random.default_rng(3)
    ref_x, _ = _pool(rng, 300)
    verdict = detect(_model(ref_x), _model(ref_x[:10]), DriftConfig(min_window=30), FEATURES, CLASSES)
    assert not verdict.drift and verdict.detectors == [] and "needs 30" in verdict.summary()


def test_input_test_matches_evidentlys_ks_stattest() -> None:
    import pandas as pd
    from evidently.legacy.calculations.stattests.ks_stattest import _ks_stat_test
    from evidently.legacy.core import ColumnType

    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(300, 3)), rng.normal(0.2, 1, size=(200, 3))
    _, ours = ks_pvalues(a, b)
    theirs = [
        _ks_stat_test(pd.Series(a[:, j]), pd.Series(b[:, j]), ColumnType.Numerical, 0.05)[0] for j in range(3)
    ]
    assert ours == pytest.approx(theirs)


def test_shifts_stay_in_the_data_domain() -> None:
    rng = np.random.default_rng(5)
    pool = rng.integers(0, 17, size=(400, 64)).astype(np.float32)
    labels = rng.integers(0, 10, size=400)
    for shift in (Shift("noise", "large", 1.0), Shift("image", "large", 1.0)):
        x = window(pool, labels, 100, shift, rng, image_shape=(8, 8))
        assert x.min() >= 0 and x.max() <= 16 and np.all(x == np.round(x))
        assert not np.array_equal(x, window(pool, labels, 100, NONE, np.random.default_rng(5)))
    with pytest.raises(ValueError, match="image_shape"):
        window(pool, labels, 10, Shift("image"), rng)


def test_reconstruction_detector_sees_noise_spread_over_every_feature() -> None:
    rng = np.random.default_rng(6)
    latent = rng.normal(size=(1500, 3))
    mixing = rng.normal(size=(3, 16))
    x = (latent @ mixing).astype(np.float32)  # inputs on a 3-dimensional subspace
    subspace = Subspace.fit(x[:800])
    assert subspace.components.shape[0] <= 3
    reference = _model(x[800:1100])
    calm = detect(reference, _model(x[1100:1300]), DriftConfig(), FEATURES, CLASSES, subspace)
    assert {d.name: d.drift for d in calm.detectors}["reconstruction"] is False
    noisy = x[1300:1500] + rng.normal(0, 0.3, size=(200, 16)).astype(np.float32)  # 0.3 std in every feature
    verdict = detect(reference, _model(noisy), DriftConfig(), FEATURES, CLASSES, subspace)
    by_name = {d.name: d for d in verdict.detectors}
    assert by_name["reconstruction"].drift and by_name["reconstruction"].p_value < 1e-6
