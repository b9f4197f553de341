"""Gates a variant must pass to be registered. Pure logic: no runtime, no MLflow."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GateConfig:
    max_accuracy_drop: float = 0.005
    """Largest allowed accuracy loss against the parent (0.005 = 0.5 pt)."""
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


def evaluate(
    config: GateConfig,
    *,
    accuracy_delta: float,
    latency_ratio: float,
    p50_ms: float,
    baseline_p50_ms: float,
    baseline_name: str,
    size_bytes: int,
) -> list[GateResult]:
    results = []
    drop = -accuracy_delta
    results.append(
        GateResult(
            "accuracy", drop <= config.max_accuracy_drop + 1e-12, drop, config.max_accuracy_drop,
            f"accuracy drop {drop * 100:.2f} pt {'≤' if drop <= config.max_accuracy_drop + 1e-12 else '>'} "
            f"{config.max_accuracy_drop * 100:.2f} pt",
        )
    )  # fmt: skip
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
