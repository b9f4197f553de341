"""Bundled data sets with fixed, seeded, stratified train / validation / test splits (no downloads)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float32]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class DataSplits:
    """Arrays a registered model carries: train for (re)training and calibration, val for the drift
    reference, test for the accuracy that gates use."""

    name: str
    x_train: FloatArray
    y_train: IntArray
    x_val: FloatArray
    y_val: IntArray
    x_test: FloatArray
    y_test: IntArray
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def calibration(self, n: int, seed: int = 0) -> FloatArray:
        """A seeded subset of the training inputs, for quantization calibration."""
        rng = np.random.default_rng(seed)
        idx = rng.choice(len(self.x_train), size=min(n, len(self.x_train)), replace=False)
        return self.x_train[np.sort(idx)]

    def fingerprint(self) -> str:
        """sha256 over every array, so a run records exactly which data it saw."""
        digest = hashlib.sha256()
        for arr in (self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test):
            digest.update(np.ascontiguousarray(arr).tobytes())
        return digest.hexdigest()


def split(
    name: str,
    x: NDArray[np.floating],
    y: NDArray[np.integer],
    feature_names: tuple[str, ...],
    class_names: tuple[str, ...],
    *,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> DataSplits:
    """Stratified split: every class keeps its share in each part."""
    if not 0 < val_fraction < 1 or not 0 < test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError(f"fractions val={val_fraction} test={test_fraction} must be in (0, 1) with sum < 1")
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
    rng = np.random.default_rng(seed)
    parts: dict[str, list[NDArray[np.intp]]] = {"train": [], "val": [], "test": []}
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        n_val = round(len(idx) * val_fraction)
        n_test = round(len(idx) * test_fraction)
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test : n_test + n_val])
        parts["train"].append(idx[n_test + n_val :])
    chosen = {k: rng.permutation(np.concatenate(v)) for k, v in parts.items()}
    xf = x.astype(np.float32)
    yi = y.astype(np.int64)
    return DataSplits(
        name=name,
        x_train=xf[chosen["train"]],
        y_train=yi[chosen["train"]],
        x_val=xf[chosen["val"]],
        y_val=yi[chosen["val"]],
        x_test=xf[chosen["test"]],
        y_test=yi[chosen["test"]],
        feature_names=feature_names,
        class_names=class_names,
    )


def load_digits_splits(seed: int = 0) -> DataSplits:
    """scikit-learn's bundled digits: 1,797 images of 8×8 pixels (0–16), flattened to 64 features."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    features = tuple(f"pixel_{r}_{c}" for r in range(8) for c in range(8))
    return split("digits", bunch.data, bunch.target, features, tuple(str(i) for i in range(10)), seed=seed)


def load_breast_cancer_splits(seed: int = 0) -> DataSplits:
    """scikit-learn's bundled Wisconsin breast cancer table: 569 rows, 30 real-valued features."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    features = tuple(str(n).replace(" ", "_") for n in bunch.feature_names)
    classes = tuple(str(n) for n in bunch.target_names)
    return split("breast-cancer", bunch.data, bunch.target, features, classes, seed=seed)
