"""Gates a variant must pass to be registered. Pure logic: no runtime, no MLflow."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GateConfig:
    """One quality gate per task metric, plus latency and size."""

    max_accuracy_drop: float = 0.005
    """Classification with labels: largest allowed loss of accuracy, absolute (0.005 = 0.5 pt)."""
    max_agreement_drop: float = 0.01
    """Classification without labels: top-1 agreement with the parent at least 1 − this (99 %)."""
    max_map_drop: float = 0.01
    """Detection with labels: largest allowed loss of mAP@0.5, absolute."""
    min_box_agreement: float = 0.95
    """Detection without labels: IoU-matched box agreement with the parent's boxes, at least."""
    max_rmse_rise: float = 0.05
    """Regression: largest relative rise of RMSE (labels), or RMSE to the parent's predictions as a
    share of their standard deviation (no labels)."""
    min_cosine: float = 0.99
    """Embedding: mean cosine to the parent's vectors, at least."""
    max_tensor_error: float = 0.05
    """Generic tensors: largest absolute error as a share of the parent's largest magnitude."""
    max_latency_ratio: float = 1.10
    """Batch-1 latency at most this multiple of the parent's fastest FP32 runtime (median of paired
    per-round ratios; 1.10 absorbs residual noise)."""
    latency_slack_ms: float = 0.02
    """Absolute slack on the latency limit: below ~20 µs, timer and dispatch noise dominate the ratio."""
    max_size_bytes: int | None = None
    """Largest allowed artifact; None: no limit."""


@dataclass(frozen=True)
class GateResult:
    gate: str
    passed: bool
    value: float
    threshold: float
    message: str


@dataclass(frozen=True)
class Quality:
    """A variant's task metric beside its parent's, as the evaluation reported them."""

    metric: str
    parent: float
    value: float
    scale: float = 1.0
    """The parent's output scale, for metrics judged relative to it (rmse_to_reference: standard
    deviation; max_abs_error: largest magnitude)."""

    @classmethod
    def accuracy(cls, delta: float) -> Quality:
        """A classifier's accuracy change (the parent at 1.0, the variant ``delta`` from it)."""
        return cls("accuracy", 1.0, 1.0 + delta)


def quality_gate(config: GateConfig, q: Quality) -> GateResult:
    """Judge the task metric: a drop, a relative rise, or a floor, by metric."""
    m = q.metric
    if m in ("accuracy", "agreement", "map50"):
        limit = {"map50": config.max_map_drop, "agreement": config.max_agreement_drop}.get(
            m, config.max_accuracy_drop
        )
        drop = q.parent - q.value
        ok = drop <= limit + 1e-12
        label = {"accuracy": "accuracy", "agreement": "top-1 agreement", "map50": "mAP@0.5"}[m]
        return GateResult(
            m, ok, drop, limit, f"{label} drop {drop * 100:.2f} pt {'≤' if ok else '>'} {limit * 100:.2f} pt"
        )
    if m in ("cosine", "box_agreement"):
        floor = config.min_cosine if m == "cosine" else config.min_box_agreement
        ok = q.value >= floor - 1e-12
        label = "mean cosine to FP32" if m == "cosine" else "box agreement with FP32"
        return GateResult(m, ok, q.value, floor, f"{label} {q.value:.4f} {'≥' if ok else '<'} {floor:.4f}")
    if m == "rmse":
        rise = (q.value - q.parent) / q.parent if q.parent > 0 else float("inf") * (q.value > 0)
        ok = rise <= config.max_rmse_rise + 1e-12
        return GateResult(
            m,
            ok,
            rise,
            config.max_rmse_rise,
            f"RMSE {rise * 100:+.2f} % ({'≤' if ok else '>'} +{config.max_rmse_rise * 100:.1f} %)",
        )
    if m in ("rmse_to_reference", "max_abs_error"):
        limit = config.max_rmse_rise if m == "rmse_to_reference" else config.max_tensor_error
        share = q.value / q.scale if q.scale > 0 else float("inf") * (q.value > 0)
        ok = share <= limit + 1e-12
        label = "RMSE to FP32" if m == "rmse_to_reference" else "largest error against FP32"
        return GateResult(
            m,
            ok,
            share,
            limit,
            f"{label} {share * 100:.2f} % of its scale ({'≤' if ok else '>'} {limit * 100:.1f} %)",
        )
    raise ValueError(f"no gate for metric {m!r}")


def evaluate(
    config: GateConfig,
    *,
    quality: Quality,
    latency_ratio: float,
    p50_ms: float,
    baseline_p50_ms: float,
    baseline_name: str,
    size_bytes: int,
) -> list[GateResult]:
    results = [quality_gate(config, quality)]
    ratio = latency_ratio
    fast = ratio <= config.max_latency_ratio or p50_ms - baseline_p50_ms <= config.latency_slack_ms
    results.append(
        GateResult(
            "latency", fast, ratio, config.max_latency_ratio,
            f"batch-1 latency {ratio:.2f}× {baseline_name} (paired median; p50 {p50_ms:.3f} vs "
            f"{baseline_p50_ms:.3f} ms); limit {config.max_latency_ratio:.2f}× or +{config.latency_slack_ms * 1e3:.0f} µs",
        )
    )  # fmt: skip
    if config.max_size_bytes is not None:
        small = size_bytes <= config.max_size_bytes
        results.append(
            GateResult(
                "size", small, float(size_bytes), float(config.max_size_bytes),
                f"artifact {size_bytes / 1e6:.2f} MB {'≤' if small else '>'} {config.max_size_bytes / 1e6:.2f} MB",
            )
        )  # fmt: skip
    return results


def rejection_reason(results: list[GateResult]) -> str | None:
    failed = [r.message for r in results if not r.passed]
    return "; ".join(failed) if failed else None
