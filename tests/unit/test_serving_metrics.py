"""Serving metrics off the request path: observations queue, the flush writes each one exactly once;
and the model answer those observations come from (classes and confidences without a softmax pass)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from serving.metrics import ServingMetrics
from serving.predictor import Answer


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return (
        registry.get_sample_value(name, {"model": "m", "version": "1", "role": "champion", **labels}) or 0.0
    )


def test_observations_reach_the_series_at_the_flush_each_exactly_once() -> None:
    registry = CollectorRegistry()
    metrics = ServingMetrics.create(registry)
    series = metrics.series("m", "1", "champion")
    assert metrics.series("m", "1", "champion") is series  # cached: no labels() per request
    series.observe(0.003, [0.95, 0.4])
    series.observe(0.0004, [0.99])
    assert _value(registry, "lifecycle_predicted_rows_total") == 0  # queued, not written yet
    metrics.flush()
    assert _value(registry, "lifecycle_predicted_rows_total") == 3
    assert _value(registry, "lifecycle_model_latency_seconds_count") == 2
    assert _value(registry, "lifecycle_model_latency_seconds_bucket", le="0.0005") == 1
    assert _value(registry, "lifecycle_prediction_confidence_bucket", le="0.5") == 1
    assert _value(registry, "lifecycle_prediction_confidence_count") == 3
    metrics.flush()  # nothing is written twice
    assert _value(registry, "lifecycle_predicted_rows_total") == 3


def test_request_outcomes_are_counted_at_the_flush_each_exactly_once() -> None:
    registry = CollectorRegistry()
    metrics = ServingMetrics.create(registry)
    for status in ("200", "200", "400"):
        metrics.request("m", "1", "champion", status)
    assert _value(registry, "lifecycle_requests_total", status="200") == 0  # queued
    metrics.flush()
    metrics.flush()
    assert _value(registry, "lifecycle_requests_total", status="200") == 2
    assert _value(registry, "lifecycle_requests_total", status="400") == 1


def test_observing_from_many_threads_while_flushing_loses_nothing() -> None:
    registry = CollectorRegistry()
    metrics = ServingMetrics.create(registry)
    stop = threading.Event()

    def flusher() -> None:
        while not stop.is_set():
            metrics.flush()

    def observer() -> None:
        for _ in range(2000):
            metrics.series("m", "1", "champion").observe(0.001, [0.9])
            metrics.request("m", "1", "champion", "200")

    flushing = threading.Thread(target=flusher)
    flushing.start()
    observers = [threading.Thread(target=observer) for _ in range(4)]
    for t in observers:
        t.start()
    for t in observers:
        t.join()
    stop.set()
    flushing.join()
    metrics.flush()
    assert _value(registry, "lifecycle_predicted_rows_total") == 8000
    assert _value(registry, "lifecycle_model_latency_seconds_count") == 8000
    assert _value(registry, "lifecycle_requests_total", status="200") == 8000


def test_the_flusher_thread_writes_without_being_asked() -> None:
    registry = CollectorRegistry()
    metrics = ServingMetrics.create(registry)
    metrics.start_flusher(0.05)
    metrics.start_flusher(0.05)  # once per process
    assert len(metrics._flusher) == 1
    metrics.series("m", "1", "champion").observe(0.001, [0.9])
    deadline = time.monotonic() + 5
    while _value(registry, "lifecycle_predicted_rows_total") == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _value(registry, "lifecycle_predicted_rows_total") == 1


def test_the_answer_matches_a_softmax_without_computing_one() -> None:
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((7, 10)) * 4).astype(np.float32)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = shifted / shifted.sum(axis=1, keepdims=True)
    answer = Answer.of(logits)
    assert answer.classes == probs.argmax(axis=1).tolist()
    assert answer.confidences == probs.max(axis=1).tolist()  # exactly: 1 / total is the top's probability
    np.testing.assert_allclose(answer.probs, probs, rtol=1e-6)
    part = answer.rows(2, 5)
    assert part.classes == answer.classes[2:5] and part.probs.shape == (3, 10)
    np.testing.assert_allclose(part.probs, probs[2:5], rtol=1e-6)
    for i in range(7):  # one row takes a plain-Python path: the same answer
        one = Answer.of(logits[i : i + 1])
        assert one.classes == [answer.classes[i]]
        assert one.confidences == pytest.approx([answer.confidences[i]], rel=1e-6)
        np.testing.assert_allclose(one.probs, probs[i : i + 1], rtol=1e-6)
