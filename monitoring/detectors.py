"""Drift detectors as plain functions: reference vs current window → a verdict with its statistics.

- **input**: per-feature two-sample Kolmogorov–Smirnov p-values — Evidently's ``ks`` stattest
  (``scipy.stats.ks_2samp``), pinned so that its default does not switch to Wasserstein at 1,000 rows
  — with a Bonferroni correction over the features that vary.
- **confidence**: black-box shift detection (BBSD, "Failing Loudly"): KS on the model's max-softmax
  probability and on its entropy.
- **classes**: a chi-square test of the predicted-class histogram against the reference's (label
  shift, e.g. a class knocked out, shows only there).

- **reconstruction** (when the training inputs are known): KS on each row's distance from their
  principal subspace (PCA).

The family-wise error rate is split evenly (Bonferroni) over the detectors, so an unshifted
window alarms at most about ``alpha`` of the time. No verdict below ``min_window``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.stats import chi2_contingency, ks_2samp

from lifecycle.names import Severity


@dataclass(frozen=True)
class Outputs:
    """A model's inputs and class probabilities on some rows."""

    x: NDArray[np.float32]
    probabilities: NDArray[np.float32]

    @property
    def confidence(self) -> NDArray[np.float64]:
        return np.asarray(self.probabilities.max(axis=1), dtype=np.float64)

    @property
    def entropy(self) -> NDArray[np.float64]:
        p = np.clip(self.probabilities.astype(np.float64), 1e-12, 1.0)
        return np.asarray(-(p * np.log(p)).sum(axis=1))

    @property
    def classes(self) -> NDArray[np.int64]:
        return np.asarray(self.probabilities.argmax(axis=1), dtype=np.int64)

    @classmethod
    def from_logits(cls, x: NDArray[np.float32], logits: NDArray[np.float32]) -> Outputs:
        shifted = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        return cls(x, np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float32))


@dataclass(frozen=True)
class DetectorResult:
    name: str
    p_value: float
    """The detector's smallest corrected p-value (already multiplied by its number of tests)."""
    threshold: float
    drift: bool
    statistic: float
    """Largest KS distance (input, confidence) or Cramér's V (classes): how large the shift is."""
    drifted: list[str] = field(default_factory=list)
    """Which features (input) or signals (confidence) or classes fired."""


@dataclass(frozen=True)
class DriftVerdict:
    n_reference: int
    n_current: int
    severity: Severity
    detectors: list[DetectorResult]
    note: str = ""

    @property
    def drift(self) -> bool:
        return any(d.drift for d in self.detectors)

    def summary(self) -> str:
        if self.note:
            return self.note
        fired = [d for d in self.detectors if d.drift]
        if not fired:
            return f"no drift (n={self.n_current})"
        parts = [
            f"{d.name} p={d.p_value:.2g}" + (f" on {', '.join(d.drifted[:5])}" if d.drifted else "")
            for d in fired
        ]
        return f"{self.severity.value}: " + "; ".join(parts) + f" (n={self.n_current})"


@dataclass(frozen=True)
class DriftConfig:
    alpha: float = 0.05
    """Family-wise false-alarm rate of the combined verdict on an unshifted window."""
    min_window: int = 30
    """Below this many rows no verdict is given."""
    critical_p: float = 1e-6
    """A detector whose corrected p-value is below this makes the verdict critical."""


def ks_pvalues(
    reference: NDArray[np.floating], current: NDArray[np.floating]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-column two-sample KS (Evidently's ``ks`` stattest): statistics and p-values."""
    result = ks_2samp(reference, current, axis=0)
    return np.atleast_1d(np.asarray(result.statistic, dtype=np.float64)), np.atleast_1d(
        np.asarray(result.pvalue, dtype=np.float64)
    )


def input_drift(
    reference: NDArray[np.floating], current: NDArray[np.floating], alpha: float, names: list[str]
) -> DetectorResult:
    varying = ~(
        (reference.min(axis=0) == reference.max(axis=0))
        & (current.min(axis=0) == current.max(axis=0))
        & (reference[0] == current[0])
    )
    if not varying.any():
        return DetectorResult("input", 1.0, alpha, False, 0.0)
    stats, p = ks_pvalues(reference[:, varying], current[:, varying])
    corrected = np.minimum(p * varying.sum(), 1.0)
    cols = [n for n, keep in zip(names, varying, strict=True) if keep]
    fired = [cols[i] for i in np.argsort(corrected) if corrected[i] <= alpha]
    return DetectorResult("input", float(corrected.min()), alpha, bool(fired), float(stats.max()), fired)


def confidence_drift(reference: Outputs, current: Outputs, alpha: float) -> DetectorResult:
    signals = {
        "max_softmax": (reference.confidence, current.confidence),
        "entropy": (reference.entropy, current.entropy),
    }
    results = {name: ks_2samp(r, c) for name, (r, c) in signals.items()}
    corrected = {name: min(float(res.pvalue) * len(signals), 1.0) for name, res in results.items()}
    fired = [name for name, p in corrected.items() if p <= alpha]
    stat = max(float(res.statistic) for res in results.values())
    return DetectorResult("confidence", min(corrected.values()), alpha, bool(fired), stat, fired)


def class_drift(reference: Outputs, current: Outputs, alpha: float, class_names: list[str]) -> DetectorResult:
    k = reference.probabilities.shape[1]
    table = np.stack([np.bincount(reference.classes, minlength=k), np.bincount(current.classes, minlength=k)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return DetectorResult("classes", 1.0, alpha, False, 0.0)
    chi2, p, _, _ = chi2_contingency(table)
    n = table.sum()
    cramers_v = float(np.sqrt(chi2 / (n * (min(table.shape) - 1))))
    drift = bool(p <= alpha)
    ref_share = np.bincount(reference.classes, minlength=k) / len(reference.classes)
    cur_share = np.bincount(current.classes, minlength=k) / len(current.classes)
    order = np.argsort(-np.abs(cur_share - ref_share))
    fired = [f"{class_names[i]} {ref_share[i]:.0%}→{cur_share[i]:.0%}" for i in order[:3]] if drift else []
    return DetectorResult("classes", float(p), alpha, drift, cramers_v, fired)


@dataclass(frozen=True)
class Subspace:
    """The principal subspace of the training inputs (PCA), for a reconstruction-error detector."""

    mean: NDArray[np.float64]
    components: NDArray[np.float64]
    scale: NDArray[np.float64]

    @classmethod
    def fit(cls, x: NDArray[np.floating], variance: float = 0.9) -> Subspace:
        """Keep the components that explain ``variance`` of the (standardised) training inputs."""
        x = np.asarray(x, dtype=np.float64)
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale == 0] = 1.0
        _, singular, vt = np.linalg.svd((x - mean) / scale, full_matrices=False)
        explained = np.cumsum(singular**2) / np.sum(singular**2)
        k = int(np.searchsorted(explained, variance) + 1)
        return cls(mean, vt[:k], scale)

    def residuals(self, x: NDArray[np.floating]) -> NDArray[np.float64]:
        """Squared distance of each row from the subspace."""
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.scale
        return np.asarray(np.sum((z - (z @ self.components.T) @ self.components) ** 2, axis=1))


def reconstruction_drift(
    reference: Outputs, current: Outputs, subspace: Subspace, alpha: float
) -> DetectorResult:
    """KS on the rows' distance from the training inputs' principal subspace: noise and corruption
    move whole rows off it, a little in every feature — too little for any one per-feature test."""
    result = ks_2samp(subspace.residuals(reference.x), subspace.residuals(current.x))
    p = float(result.pvalue)
    return DetectorResult("reconstruction", p, alpha, p <= alpha, float(result.statistic))


def detect(
    reference: Outputs,
    current: Outputs,
    config: DriftConfig,
    feature_names: list[str],
    class_names: list[str],
    subspace: Subspace | None = None,
) -> DriftVerdict:
    n_ref, n_cur = len(reference.x), len(current.x)
    if n_cur < config.min_window:
        return DriftVerdict(
            n_ref,
            n_cur,
            Severity.NONE,
            [],
            f"{n_cur} rows in the window; a verdict needs {config.min_window}",
        )
    each = config.alpha / (3 if subspace is None else 4)  # Bonferroni over the detectors
    detectors = [
        input_drift(reference.x, current.x, each, feature_names),
        confidence_drift(reference, current, each),
        class_drift(reference, current, each, class_names),
    ]
    if subspace is not None:
        detectors.append(reconstruction_drift(reference, current, subspace, each))
    fired = [d for d in detectors if d.drift]
    if not fired:
        severity = Severity.NONE
    elif len(fired) >= 2 or min(d.p_value for d in fired) <= config.critical_p:
        severity = Severity.CRITICAL
    else:
        severity = Severity.WARNING
    return DriftVerdict(n_ref, n_cur, severity, detectors)
