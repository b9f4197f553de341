"""Our Prometheus metrics, exported beside BentoML's on ``/metrics``.

Collectors are process-wide in prometheus_client (BentoML runs it in multiprocess mode and merges
the workers), so they are created once per process by :func:`serving_metrics`.

The request path pays little for them: labelled series come from a cache (``labels()`` takes a lock
and builds a key on every call), and a model call's observations (rows, latency, one confidence per
row) and each request's outcome are queued and written to the series by :meth:`ServingMetrics.flush`,
which a background thread calls every ``flush_interval_s`` (and shutdown calls once more). In
BentoML's multiprocess mode each write is a locked write to a memory-mapped file; five per request
cost the request path more than the rest of the metrics. So our series trail the requests by up to
``flush_interval_s`` (BentoML's own ``bentoml_service_request_total`` is written at once).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSeries:
    """One model version's series in one role."""

    rows: Counter
    latency: Histogram
    confidence: Histogram
    _pending: deque[tuple[float, Sequence[float], int | None]] = field(
        default_factory=deque, repr=False, compare=False
    )

    def observe(self, latency_s: float, confidences: Sequence[float], rows: int | None = None) -> None:
        """One model call: its time, and the confidence of each row it answered (queued; see
        :meth:`flush`); ``rows`` where they are not one per confidence (a regressor has none).
        Safe from any thread."""
        self._pending.append((latency_s, confidences, rows))

    def flush(self) -> None:
        """Write the queued observations to the series."""
        rows = 0
        while True:
            try:
                latency_s, confidences, n = self._pending.popleft()
            except IndexError:
                break
            rows += len(confidences) if n is None else n
            self.latency.observe(latency_s)
            for confidence in confidences:
                self.confidence.observe(confidence)
        if rows:
            self.rows.inc(rows)


@dataclass(frozen=True)
class ServingMetrics:
    requests: Counter
    rows: Counter
    latency: Histogram
    confidence: Histogram
    _series: dict[tuple[str, str, str], ModelSeries] = field(default_factory=dict, repr=False, compare=False)
    _flusher: list[threading.Thread] = field(default_factory=list, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _outcomes: dict[tuple[str, str, str, str], Counter] = field(
        default_factory=dict, repr=False, compare=False
    )
    _requests: deque[tuple[str, str, str, str]] = field(default_factory=deque, repr=False, compare=False)

    def series(self, model: str, version: str, role: str) -> ModelSeries:
        key = (model, version, role)
        found = self._series.get(key)
        if found is None:  # setdefault: threads racing here all get the one series that is flushed
            found = self._series.setdefault(
                key,
                ModelSeries(self.rows.labels(*key), self.latency.labels(*key), self.confidence.labels(*key)),
            )
        return found

    def request(self, model: str, version: str, role: str, status: str) -> None:
        """Count one request's outcome (HTTP status); queued, see :meth:`flush`. Safe from any thread."""
        self._requests.append((model, version, role, status))

    def flush(self) -> None:
        """Write every series' queued observations and the queued request outcomes."""
        for series in list(self._series.values()):
            series.flush()
        counts: dict[tuple[str, str, str, str], int] = {}
        while True:
            try:
                key = self._requests.popleft()
            except IndexError:
                break
            counts[key] = counts.get(key, 0) + 1
        for key, n in counts.items():
            self.outcome(*key).inc(n)

    def start_flusher(self, interval_s: float = 1.0) -> None:
        """Flush every ``interval_s`` on a daemon thread (once per process; later calls do nothing)."""
        with self._lock:
            if self._flusher:
                return
            thread = threading.Thread(
                target=self._flush_every, args=(interval_s,), name="metrics-flush", daemon=True
            )
            self._flusher.append(thread)
        thread.start()

    def _flush_every(self, interval_s: float) -> None:
        while True:
            time.sleep(interval_s)
            try:
                self.flush()
            except Exception:  # a metrics failure must not stop the flushing (nor serving)
                log.exception("writing the serving metrics failed")

    def outcome(self, model: str, version: str, role: str, status: str) -> Counter:
        """The request counter of one outcome (HTTP status)."""
        key = (model, version, role, status)
        found = self._outcomes.get(key)
        if found is None:
            found = self._outcomes[key] = self.requests.labels(*key)
        return found

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
