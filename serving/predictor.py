"""Request handling as plain Python: validate against the contract, route, run, log, mirror.
No web framework."""

from __future__ import annotations

import logging
import time
import uuid

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict

from lifecycle.db.types import utcnow
from serving.metrics import ServingMetrics
from serving.prediction_log import PredictionLog, PredictionRecord
from serving.routing import CANARY, SHADOW, Challenger, Router
from serving.shadow import ShadowMirror
from serving.slot import ModelSlot, Served

log = logging.getLogger(__name__)


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
        router: Router | None = None,
        shadow_queue: int = 1000,
    ) -> None:
        self.slot = slot
        self.log = log
        self.max_instances = max_instances
        self.metrics = metrics
        self.router = router
        self.shadow = ShadowMirror(self._run_shadow, max_queue=shadow_queue) if router is not None else None

    def predict(
        self,
        instances: object,
        *,
        request_id: str | None = None,
        request_key: str | None = None,
        return_probabilities: bool = False,
    ) -> Prediction:
        """:raises ContractViolationError: bad input (→ 400). :raises ModelNotReadyError,
        LogOverloadedError: not ready / overloaded (→ 503)."""
        champion = self.slot.current()
        x = champion.contract.validate_input(np.asarray(instances), max_rows=self.max_instances)
        request_id = request_id or uuid.uuid4().hex
        served, probs = self._route(champion, x, request_id, request_key)
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
        returns class probabilities. A batch is routed as one request."""
        champion = self.slot.current()
        return self._route(champion, champion.contract.validate_input(x), uuid.uuid4().hex, None)[1]

    def _route(
        self, champion: Served, x: NDArray[np.float32], request_id: str, key: str | None
    ) -> tuple[Served, NDArray[np.float32]]:
        ids = row_ids(request_id, len(x))
        router = self.router
        if router is not None and (canary := router.canary(key)) is not None:
            if canary.served is not None:
                try:
                    return canary.served, self._run(canary.served, x, ids, CANARY)
                except Exception as exc:  # recorded as the canary's error; the champion answers instead
                    log.debug("canary v%s failed, champion answers: %s", canary.plan.challenger, exc)
            else:
                self._log_error(champion.name, canary, x, ids, CANARY)
        probs = self._run(champion, x, ids, champion.role)
        if router is not None and self.shadow is not None and (mirror := router.mirror()) is not None:
            self.shadow.offer(mirror, x, ids)
        return champion, probs

    def _run_shadow(self, challenger: Challenger, x: NDArray[np.float32], ids: list[str]) -> None:
        if challenger.shadow is None:
            self._log_error(self.slot.status.model, challenger, x, ids, SHADOW)
            raise RuntimeError(challenger.error)
        self._run(challenger.shadow, x, ids, SHADOW)

    def _run(self, served: Served, x: NDArray[np.float32], ids: list[str], role: str) -> NDArray[np.float32]:
        start = time.perf_counter()
        try:
            logits = served.runner.run(x)
        except Exception as exc:
            self._submit(
                served.name, served.version, role, x, ids, None, None, time.perf_counter() - start, repr(exc)
            )
            raise
        latency_s = time.perf_counter() - start
        probs = softmax(logits)
        self._submit(
            served.name, served.version, role, x, ids, probs.argmax(axis=1), probs.max(axis=1), latency_s
        )
        if self.metrics is not None:
            labels = (served.name, served.version, role)
            self.metrics.rows.labels(*labels).inc(len(x))
            self.metrics.latency.labels(*labels).observe(latency_s)
            histogram = self.metrics.confidence.labels(*labels)
            for confidence in probs.max(axis=1):
                histogram.observe(float(confidence))
        return probs

    def _log_error(
        self, model: str, challenger: Challenger, x: NDArray[np.float32], ids: list[str], role: str
    ) -> None:
        self._submit(model, challenger.plan.challenger, role, x, ids, None, None, 0.0, challenger.error)

    def _submit(
        self,
        model: str,
        version: str,
        role: str,
        x: NDArray[np.float32],
        ids: list[str],
        classes: NDArray[np.int64] | None,
        confidences: NDArray[np.float32] | None,
        latency_s: float,
        error: str | None = None,
    ) -> None:
        now = utcnow()
        # a mirrored row's input is the champion's row with the same id: not stored twice
        keep_features = role != SHADOW
        self.log.submit(
            [
                PredictionRecord(
                    request_id=ids[i],
                    ts=now,
                    model_name=model,
                    version=version,
                    role=role,
                    features=x[i].tolist() if keep_features else [],
                    predicted_class=None if classes is None else int(classes[i]),
                    confidence=None if confidences is None else float(confidences[i]),
                    latency_ms=latency_s * 1e3 / len(x),
                    error=error,
                )
                for i in range(len(x))
            ]
        )


def row_ids(request_id: str, n: int) -> list[str]:
    """Prediction-log ids of a request's rows: the request id, or ``id:i`` for multi-row requests."""
    return [request_id] if n == 1 else [f"{request_id}:{i}" for i in range(n)]
