from __future__ import annotations

import numpy as np
import pytest

from lifecycle.data import load_breast_cancer_splits, load_digits_splits, split


def test_digits_split_is_fixed_disjoint_and_stratified() -> None:
    a, b = load_digits_splits(0), load_digits_splits(0)
    assert a.fingerprint() == b.fingerprint()
    assert load_digits_splits(1).fingerprint() != a.fingerprint()
    assert (len(a.x_train), len(a.x_val), len(a.x_test)) == (1079, 359, 359)
    assert a.n_features == 64 and a.n_classes == 10
    assert a.x_train.dtype == np.float32 and a.x_train.min() >= 0 and a.x_train.max() <= 16
    total = len(a.x_train) + len(a.x_val) + len(a.x_test)
    assert total == 1797
    for part in (a.y_train, a.y_val, a.y_test):
        shares = np.bincount(part, minlength=10) / len(part)
        assert np.all(np.abs(shares - 0.1) < 0.02)


def test_tabular_data_set() -> None:
    data = load_breast_cancer_splits(0)
    assert data.n_features == 30 and data.class_names == ("malignant", "benign")
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 569


def test_calibration_subset_is_seeded() -> None:
    data = load_digits_splits(0)
    assert np.array_equal(data.calibration(32, seed=3), data.calibration(32, seed=3))
    assert data.calibration(10_000).shape == data.x_train.shape


def test_bad_fractions_and_lengths() -> None:
    x, y = np.zeros((10, 2)), np.zeros(10, dtype=int)
    with pytest.raises(ValueError, match="fractions"):
        split("t", x, y, ("a", "b"), ("c",), val_fraction=0.6, test_fraction=0.5)
    with pytest.raises(ValueError, match="10 rows but y has 9"):
        split("t", x, y[:9], ("a", "b"), ("c",))
