"""Our Prometheus metrics, exported beside BentoML's on ``/metrics``.

Collectors are process-wide in prometheus_client (BentoML runs it in multiprocess mode and merges
the workers), so they are created once per process by :func:`serving_metrics`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


@dataclass(frozen=True)
class ServingMetrics:
    requests: Counter
    rows: Counter
    latency: Histogram
    confidence: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry = REGISTRY) -> ServingMetrics:
        labels = ("model", "version", "role")
        return cls(
            requests=Counter(
                "lifecycle_requests",
                "Predict requests by outcome (HTTP status).",
                (*labels, "status"),
                registry=registry,
            ),
            rows=Counter("lifecycle_predicted_rows", "Rows answered.", labels, registry=registry),
            latency=Histogram(
                "lifecycle_model_latency_seconds",
                "Model runtime time per request.",
                labels,
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            confidence=Histogram(
                "lifecycle_prediction_confidence",
                "Max softmax probability of each answered row.",
                labels,
                buckets=CONFIDENCE_BUCKETS,
                registry=registry,
            ),
        )


@functools.cache
def serving_metrics() -> ServingMetrics:
    return ServingMetrics.create()
