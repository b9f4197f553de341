from __future__ import annotations

import time

import numpy as np
import pytest

from optimize.gates import GateConfig, Quality, evaluate, quality_gate, rejection_reason
from optimize.measure import time_interleaved
from optimize.table import Row, markdown


def _gates(config: GateConfig, **kw: float) -> dict[str, bool]:
    delta = kw.pop("accuracy_delta", 0.0)
    args = {
        "latency_ratio": 1.0,
        "p50_ms": 1.0,
        "baseline_p50_ms": 1.0,
        "size_bytes": 10,
    }
    args.update(kw)
    results = evaluate(config, quality=Quality.accuracy(delta), baseline_name="ort-fp32", **args)  # type: ignore[arg-type]
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
        config, quality=Quality.accuracy(-0.02), latency_ratio=3.0, p50_ms=3.0, baseline_p50_ms=1.0,
        baseline_name="ort-fp32", size_bytes=2_000_000,
    )  # fmt: skip
    assert [r.passed for r in results] == [False, False, False]
    reason = rejection_reason(results)
    assert reason is not None
    assert "accuracy drop 2.00 pt" in reason and "3.00× ort-fp32" in reason and "2.00 MB > 1.00 MB" in reason


@pytest.mark.parametrize(
    ("quality", "passed", "message"),
    [
        (Quality("map50", 0.60, 0.595), True, "mAP@0.5 drop 0.50 pt ≤ 1.00 pt"),
        (Quality("map50", 0.60, 0.58), False, "mAP@0.5 drop 2.00 pt > 1.00 pt"),
        (Quality("box_agreement", 1.0, 0.96), True, "box agreement with FP32 0.9600 ≥ 0.9500"),
        (Quality("cosine", 1.0, 0.985), False, "mean cosine to FP32 0.9850 < 0.9900"),
        (Quality("rmse", 50.0, 51.0), True, "RMSE +2.00 % (≤ +5.0 %)"),
        (Quality("rmse", 50.0, 55.0), False, "RMSE +10.00 % (> +5.0 %)"),
        (Quality("rmse_to_reference", 0.0, 3.0, scale=20.0), False, "RMSE to FP32 15.00 % of its scale"),
        (
            Quality("max_abs_error", 0.0, 0.01, scale=4.0),
            True,
            "largest error against FP32 0.25 % of its scale",
        ),
        (Quality("agreement", 1.0, 0.99), True, "top-1 agreement drop 1.00 pt ≤ 1.00 pt"),
        (Quality("agreement", 1.0, 0.985), False, "top-1 agreement drop 1.50 pt > 1.00 pt"),
    ],
)
def test_each_task_metric_has_its_gate(quality: Quality, passed: bool, message: str) -> None:
    result = quality_gate(GateConfig(), quality)
    assert result.passed is passed and message in result.message


class _Sleeper:
    runtime, precision = "fake", "fp32"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def run_named(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(feeds["x"])
        time.sleep(self.seconds * (n if n > 1 else 1) / 8)
        return {"logits": np.zeros((n, 2), dtype=np.float32)}


def test_interleaved_timing_orders_runners_by_speed() -> None:
    x = {"x": np.zeros((4, 3), dtype=np.float32)}
    timings = time_interleaved(
        {"fast": _Sleeper(0.001), "slow": _Sleeper(0.004)}, x, rounds=20, batch_rounds=3, warmup=1
    )
    assert timings["slow"].p50_ms > 2 * timings["fast"].p50_ms
    assert timings["slow"].paired_ratio(timings["fast"]) > 2
    assert timings["fast"].throughput > timings["slow"].throughput
    assert len(timings["fast"].samples_ms) == 20


def test_markdown_table_lists_reasons_and_notes() -> None:
    rows = [
        Row("ort-fp32", "baseline", "onnxruntime", "fp32", "baseline", p50_ms=1.0, value=0.9),
        Row("x", "variant", "onnxruntime", "int8", "rejected", reason="too slow", notes=["note"]),
    ]
    text = markdown(rows)
    assert "| ort-fp32 | onnxruntime | fp32 | baseline |" in text
    assert "**x** (rejected): too slow" in text and "**x**: note" in text
