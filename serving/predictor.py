"""Request handling as plain Python: validate against the contract, run, log. No web framework."""

from __future__ import annotations

import time
import uuid

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict

from lifecycle.db.types import utcnow
from serving.metrics import ServingMetrics
from serving.prediction_log import PredictionLog, PredictionRecord
from serving.slot import ModelSlot, Served


class Prediction(BaseModel):
    """The answer to one request (also the JSON response body of the predict API)."""

    model_config = ConfigDict(frozen=True)

    request_id: str
    model: str
    version: str
    role: str
    classes: list[int]
    labels: list[str]
    confidences: list[float]
    probabilities: list[list[float]] | None = None


def softmax(logits: NDArray[np.float32]) -> NDArray[np.float32]:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True), dtype=np.float32)


class Predictor:
    def __init__(
        self,
        slot: ModelSlot,
        log: PredictionLog,
        *,
        max_instances: int,
        metrics: ServingMetrics | None = None,
    ) -> None:
        self.slot = slot
        self.log = log
        self.max_instances = max_instances
        self.metrics = metrics

    def predict(
        self, instances: object, *, request_id: str | None = None, return_probabilities: bool = False
    ) -> Prediction:
        """:raises ContractViolationError: bad input (→ 400). :raises ModelNotReadyError,
        LogOverloadedError: not ready / overloaded (→ 503)."""
        served = self.slot.current()
        x = served.contract.validate_input(np.asarray(instances), max_rows=self.max_instances)
        request_id = request_id or uuid.uuid4().hex
        probs = self._run(served, x, request_id)
        classes = probs.argmax(axis=1)
        names = served.contract.class_names
        return Prediction(
            request_id=request_id,
            model=served.name,
            version=served.version,
            role=served.role,
            classes=[int(c) for c in classes],
            labels=[names[int(c)] for c in classes],
            confidences=[float(c) for c in probs.max(axis=1)],
            probabilities=probs.tolist() if return_probabilities else None,
        )

    def predict_rows(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """Rows already validated (the batched API checks each request before batching);
        returns class probabilities."""
        served = self.slot.current()
        return self._run(served, served.contract.validate_input(x), uuid.uuid4().hex)

    def _run(self, served: Served, x: NDArray[np.float32], request_id: str) -> NDArray[np.float32]:
        start = time.perf_counter()
        logits = served.runner.run(x)
        latency_s = time.perf_counter() - start
        probs = softmax(logits)
        classes = probs.argmax(axis=1)
        confidences = probs.max(axis=1)
        now = utcnow()
        self.log.submit(
            [
                PredictionRecord(
                    request_id=request_id if len(x) == 1 else f"{request_id}:{i}",
                    ts=now,
                    model_name=served.name,
                    version=served.version,
                    role=served.role,
                    features=x[i].tolist(),
                    predicted_class=int(classes[i]),
                    confidence=float(confidences[i]),
                    latency_ms=latency_s * 1e3 / len(x),
                )
                for i in range(len(x))
            ]
        )
        if self.metrics is not None:
            labels = (served.name, served.version, served.role)
            self.metrics.rows.labels(*labels).inc(len(x))
            self.metrics.latency.labels(*labels).observe(latency_s)
            histogram = self.metrics.confidence.labels(*labels)
            for confidence in confidences:
                histogram.observe(float(confidence))
        return probs
