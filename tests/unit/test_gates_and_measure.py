from __future__ import annotations

import time

import numpy as np
import pytest

from lifecycle.optimize.gates import GateConfig, evaluate, rejection_reason
from lifecycle.optimize.measure import quality, time_interleaved
from lifecycle.optimize.report import Row, markdown


def _gates(config: GateConfig, **kw: float) -> dict[str, bool]:
    args = {
        "accuracy_delta": 0.0,
        "latency_ratio": 1.0,
        "p50_ms": 1.0,
        "baseline_p50_ms": 1.0,
        "size_bytes": 10,
    }
    args.update(kw)
    results = evaluate(config, baseline_name="ort-fp32", **args)  # type: ignore[arg-type]
    return {r.gate: r.passed for r in results}


def test_a_less_accurate_variant_is_rejected() -> None:
    assert _gates(GateConfig(), accuracy_delta=-0.004)["accuracy"]
    assert not _gates(GateConfig(), accuracy_delta=-0.006)["accuracy"]


def test_a_slower_variant_is_rejected_unless_within_noise() -> None:
    assert not _gates(GateConfig(), latency_ratio=1.5, p50_ms=1.5, baseline_p50_ms=1.0)["latency"]
    assert _gates(GateConfig(), latency_ratio=1.08, p50_ms=1.08, baseline_p50_ms=1.0)["latency"]
    # microsecond models: the absolute slack absorbs timer noise
    assert _gates(GateConfig(), latency_ratio=1.5, p50_ms=0.015, baseline_p50_ms=0.010)["latency"]


def test_size_gate_and_reason() -> None:
    config = GateConfig(max_size_bytes=1_000_000)
    results = evaluate(
        config, accuracy_delta=-0.02, latency_ratio=3.0, p50_ms=3.0, baseline_p50_ms=1.0,
        baseline_name="ort-fp32", size_bytes=2_000_000,
    )  # fmt: skip
    assert [r.passed for r in results] == [False, False, False]
    reason = rejection_reason(results)
    assert reason is not None
    assert "accuracy drop 2.00 pt" in reason and "3.00× ort-fp32" in reason and "2.00 MB > 1.00 MB" in reason


class _Sleeper:
    runtime, precision = "fake", "fp32"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def run(self, x: np.ndarray) -> np.ndarray:
        time.sleep(self.seconds * (len(x) if len(x) > 1 else 1) / 8)
        return np.zeros((len(x), 2), dtype=np.float32)


def test_interleaved_timing_orders_runners_by_speed() -> None:
    x = np.zeros((4, 3), dtype=np.float32)
    timings = time_interleaved(
        {"fast": _Sleeper(0.001), "slow": _Sleeper(0.004)}, x, rounds=20, batch_rounds=3, warmup=1
    )
    assert timings["slow"].p50_ms > 2 * timings["fast"].p50_ms
    assert timings["slow"].paired_ratio(timings["fast"]) > 2
    assert timings["fast"].throughput > timings["slow"].throughput
    assert len(timings["fast"].samples_ms) == 20


def test_quality_against_the_parent() -> None:
    parent = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]], dtype=np.float32)
    variant = np.array([[1.5, 0.0], [0.0, 2.0], [0.0, 1.0]], dtype=np.float32)
    q = quality(variant, parent, np.array([0, 1, 1]))
    assert q.accuracy == pytest.approx(1.0) and q.accuracy_delta == pytest.approx(1 / 3)
    assert q.agreement == pytest.approx(2 / 3) and q.max_abs_diff == pytest.approx(2.0)


def test_markdown_table_lists_reasons_and_notes() -> None:
    rows = [
        Row("ort-fp32", "baseline", "onnxruntime", "fp32", "baseline", p50_ms=1.0, accuracy=0.9),
        Row("x", "variant", "onnxruntime", "int8", "rejected", reason="too slow", notes=["note"]),
    ]
    text = markdown(rows)
    assert "| ort-fp32 | onnxruntime | fp32 | baseline |" in text
    assert "**x** (rejected): too slow" in text and "**x**: note" in text
