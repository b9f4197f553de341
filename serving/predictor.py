"""Request handling as plain Python: validate against the contract, route (canary share, shadow
mirror), run, log. Rows of a tabular classifier (``/v1``) and named tensors of any model (the Open
Inference Protocol) take the same routes. No web framework."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydantic_core
from numpy.typing import NDArray

from lifecycle.answers import summarize
from lifecycle.contract import ModelContract
from lifecycle.db.types import utcnow
from lifecycle.input_store import InputStore
from lifecycle.names import CANARY, SHADOW
from serving.metrics import ServingMetrics
from serving.prediction_log import PredictionLog, RecordBatch
from serving.routing import Challenger, Router
from serving.shadow import ShadowMirror
from serving.slot import ModelSlot, Served

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Prediction:
    """The answer to one request (also the JSON response body of the predict API). A plain dataclass
    built from values this module made: a pydantic model validated its fields again on every request
    (~6 µs); FastAPI still derives the response schema from it. Not frozen (nor is :class:`Answer`):
    a frozen dataclass sets each field through ``object.__setattr__``, paid on every request."""

    request_id: str
    model: str
    version: str
    role: str
    classes: list[int]
    labels: list[str]
    confidences: list[float]
    probabilities: list[list[float]] | None = None

    def to_json(self) -> bytes:
        return pydantic_core.to_json(
            {
                "request_id": self.request_id,
                "model": self.model,
                "version": self.version,
                "role": self.role,
                "classes": self.classes,
                "labels": self.labels,
                "confidences": self.confidences,
                "probabilities": self.probabilities,
            }
        )


@dataclass(slots=True)
class PredictInput:
    """One predict request as the API received it."""

    instances: object
    request_id: str | None = None
    request_key: str | None = None
    """Routes the request stickily during a canary (stable hash); random without one."""
    return_probabilities: bool = False
    finite: bool = False
    """The rows hold only numbers known to be finite and within float32's range (the route's JSON
    parser checked them): the contract checks their shape only."""


@dataclass
class _Job:
    """A validated request on its way through routing and the runtime."""

    index: int
    request: PredictInput
    request_id: str
    x: NDArray[np.float32]
    ids: list[str]
    served: Served | None = None
    answer: Answer | None = None
    error: Exception | None = None

    def prediction(self) -> Prediction:
        assert self.served is not None and self.answer is not None
        return _prediction(self.served, self.request_id, self.answer, self.request.return_probabilities)


def _prediction(served: Served, request_id: str, answer: Answer, probabilities: bool) -> Prediction:
    names, classes = served.contract.class_names, answer.classes
    return Prediction(
        request_id=request_id,
        model=served.name,
        version=served.version,
        role=served.role,
        classes=classes,
        labels=[names[c] for c in classes],
        confidences=answer.confidences,
        probabilities=answer.probs.tolist() if probabilities else None,
    )


@dataclass(slots=True)
class Answer:
    """A model call's output: each row's class and confidence as Python values; the softmax
    probabilities only when asked for (``probs``). The top class's probability is ``1 / total``
    (its shifted exponential is ``exp(0)``), so no reduction over the probabilities is needed."""

    logits: NDArray[np.float32]
    classes: list[int]
    confidences: list[float]

    @classmethod
    def of(cls, logits: NDArray[np.float32]) -> Answer:
        if len(logits) == 1:
            # One row (most requests): plain Python on its ~10 values. Each small-array numpy call
            # costs microseconds of fixed overhead, and the batch path below makes eight of them.
            row = logits.tolist()[0]
            top = max(row)
            total = sum([math.exp(v - top) for v in row])
            return cls(logits, [row.index(top)], [1.0 / total])
        total = np.exp(logits - logits.max(axis=1, keepdims=True)).sum(axis=1)
        return cls(logits, logits.argmax(axis=1).tolist(), (1.0 / total).tolist())

    @property
    def probs(self) -> NDArray[np.float32]:
        exp = np.exp(self.logits - self.logits.max(axis=1, keepdims=True))
        return np.asarray(exp / exp.sum(axis=1, keepdims=True), dtype=np.float32)

    def rows(self, start: int, stop: int) -> Answer:
        return Answer(self.logits[start:stop], self.classes[start:stop], self.confidences[start:stop])


class Predictor:
    def __init__(
        self,
        slot: ModelSlot,
        log: PredictionLog,
        *,
        max_instances: int,
        metrics: ServingMetrics | None = None,
        router: Router | None = None,
        shadow_queue: int | None = 1000,
        inputs: InputStore | None = None,
    ) -> None:
        """``shadow_queue``: the in-process mirror thread's queue; None when mirrored requests go to a
        shadow process instead (the router's ``mirror_loader``), so no idle thread is started."""
        self.slot = slot
        self.log = log
        self.max_instances = max_instances
        self.metrics = metrics
        self.router = router
        self.inputs = inputs
        self.shadow = (
            ShadowMirror(self._run_shadow, max_queue=shadow_queue)
            if router is not None and shadow_queue is not None
            else None
        )

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
        result = self.predict_many([PredictInput(instances, request_id, request_key, return_probabilities)])[
            0
        ]
        if isinstance(result, Exception):
            raise result
        return result

    def predict_one(self, request: PredictInput) -> Prediction:
        """One request on its own (a lone request the batcher runs at once). While no rollout routes
        or mirrors traffic, this is the lean path: no job, no routing, no result list. (In a server,
        each extra step costs several times its tight-loop time: the model call before has evicted
        the CPU caches.) :raises: as :meth:`predict`."""
        router = self.router
        if router is not None and router.challenger is not None:
            result = self.predict_many([request])[0]
            if isinstance(result, Exception):
                raise result
            return result
        champion = self.slot.current()
        x = champion.contract.validate_input(
            request.instances, max_rows=self.max_instances, finite=request.finite
        )
        request_id = request.request_id or os.urandom(16).hex()
        answer = self._run(champion, x, row_ids(request_id, len(x)), champion.role)
        return _prediction(champion, request_id, answer, request.return_probabilities)

    def predict_many(self, requests: Sequence[PredictInput]) -> list[Prediction | Exception]:
        """Answer several requests together (adaptive batching): each is validated and routed on its
        own, so a bad request fails alone; then the rows of every model that answers run as one call.
        Returns one prediction or exception per request, in order. :raises ModelNotReadyError:"""
        champion = self.slot.current()
        results: list[Prediction | Exception | None] = [None] * len(requests)
        jobs: list[_Job] = []
        for i, request in enumerate(requests):
            try:
                x = champion.contract.validate_input(
                    request.instances, max_rows=self.max_instances, finite=request.finite
                )
            except Exception as exc:  # a bad request fails alone
                results[i] = exc
                continue
            request_id = request.request_id or os.urandom(16).hex()
            jobs.append(_Job(i, request, request_id, x, row_ids(request_id, len(x))))
        for job in self._answer(champion, jobs):
            results[job.index] = job.error if job.error is not None else job.prediction()
        return [r if r is not None else RuntimeError("request was not answered") for r in results]

    def predict_rows(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """Rows already validated (the batched API checks each request before batching);
        returns class probabilities. A batch is routed as one request."""
        champion = self.slot.current()
        x = champion.contract.validate_input(x)
        request_id = os.urandom(16).hex()
        (job,) = self._answer(
            champion, [_Job(0, PredictInput(x), request_id, x, row_ids(request_id, len(x)))]
        )
        if job.error is not None:
            raise job.error
        assert job.answer is not None
        return job.answer.probs

    def _answer(self, champion: Served, jobs: list[_Job]) -> list[_Job]:
        """Route each job (canary share by its key), run each model once over its jobs' rows, mirror
        a share of the champion's jobs to the shadow. Sets ``served`` and ``answer``, or ``error``."""
        router = self.router
        by_canary: dict[int, tuple[Challenger, list[_Job]]] = {}
        for_champion: list[_Job] = []
        for job in jobs:
            canary = router.canary(job.request.request_key) if router is not None else None
            if canary is None:
                for_champion.append(job)
            elif canary.served is None:  # could not load: counted as its error, the champion answers
                self.log_error(champion.name, canary, job.x, job.ids, CANARY)
                for_champion.append(job)
            else:
                by_canary.setdefault(id(canary), (canary, []))[1].append(job)
        for canary, group in by_canary.values():
            assert canary.served is not None
            try:
                self._run_group(canary.served, group, CANARY)
            except Exception as exc:  # recorded as the canary's error; the champion answers instead
                log.debug("canary v%s failed, champion answers: %s", canary.plan.challenger, exc)
                for_champion.extend(group)
        try:
            self._run_group(champion, for_champion, champion.role)
        except Exception as exc:
            for job in for_champion:
                job.error = exc
            return jobs
        if router is not None:
            for job in for_champion:
                if (mirror := router.mirror()) is None:
                    continue
                inputs = {champion.contract.inputs[0].name: job.x}
                if mirror.mirror is not None:  # a child process runs and logs it
                    mirror.mirror.offer(inputs, job.ids)
                elif self.shadow is not None:
                    self.shadow.offer(mirror, inputs, job.ids)
        return jobs

    def _run_group(self, served: Served, group: list[_Job], role: str) -> None:
        if not group:
            return
        x = group[0].x if len(group) == 1 else np.concatenate([job.x for job in group])
        ids = group[0].ids if len(group) == 1 else [i for job in group for i in job.ids]
        answer = self._run(served, x, ids, role)
        if len(group) == 1:
            group[0].served, group[0].answer = served, answer
            return
        start = 0
        for job in group:
            job.served, job.answer = served, answer.rows(start, start + len(job.x))
            start += len(job.x)

    def _run_shadow(self, challenger: Challenger, inputs: dict[str, NDArray[Any]], ids: list[str]) -> None:
        if challenger.shadow is None:
            self.log_error(self.slot.status.model, challenger, None, ids, SHADOW)
            raise RuntimeError(challenger.error)
        self.run_named(challenger.shadow, inputs, ids, SHADOW)

    # -- named tensors of any model (the Open Inference Protocol; routed by serving.inference) --
    def run_named(
        self, served: Served, inputs: dict[str, NDArray[Any]], ids: list[str], role: str,
        interface: ModelContract | None = None,
    ) -> dict[str, NDArray[Any]]:  # fmt: skip
        """:meth:`call`, then :meth:`record` the answers."""
        outputs, latency_s = self.call(served, inputs, ids, role, interface)
        self.record(served, inputs, outputs, ids, role, latency_s)
        return outputs

    def call(
        self, served: Served, inputs: dict[str, NDArray[Any]], ids: list[str], role: str,
        interface: ModelContract | None = None,
    ) -> tuple[dict[str, NDArray[Any]], float]:  # fmt: skip
        """Run and check the outputs (against ``interface``, default the model's own contract); a
        failure is logged as the error of every item. Returns the outputs and the call's seconds."""
        start = time.perf_counter()
        try:
            outputs = (interface or served.contract).validate_outputs(served.runner.run_named(inputs))
        except Exception as exc:
            latency_s = time.perf_counter() - start
            self._submit(served.name, served.version, role, None, ids, None, None, latency_s, repr(exc))
            raise
        return outputs, time.perf_counter() - start

    def record(
        self, served: Served, inputs: dict[str, NDArray[Any]], outputs: dict[str, NDArray[Any]], ids: list[str],
        role: str, latency_s: float,
    ) -> None:  # fmt: skip
        """Log each item's answer for the task, and its input: a tabular model's features, else a
        sampled reference (none for the shadow: the champion's record with the same id has it)."""
        contract = served.contract
        answers = summarize(contract, inputs, outputs)
        tabular = contract.is_tabular
        features = inputs[contract.inputs[0].name] if tabular and role != SHADOW else None
        refs = None
        if not tabular and role != SHADOW and self.inputs is not None:
            refs = self.inputs.offer(served.name, inputs, len(ids))
        self.log.submit(
            RecordBatch(
                ids, utcnow(), served.name, served.version, role, features, answers.classes, answers.confidences,
                latency_s * 1e3 / len(ids), summaries=answers.summaries, inputs_refs=refs,
            )
        )  # fmt: skip
        if self.metrics is not None:
            self.metrics.series(served.name, served.version, role).observe(
                latency_s, answers.confidences or (), rows=len(ids)
            )

    def _run(self, served: Served, x: NDArray[np.float32], ids: list[str], role: str) -> Answer:
        start = time.perf_counter()
        try:
            logits = served.runner.run(x)
        except Exception as exc:
            self._submit(
                served.name, served.version, role, x, ids, None, None, time.perf_counter() - start, repr(exc)
            )
            raise
        latency_s = time.perf_counter() - start
        answer = Answer.of(logits)
        self._submit(served.name, served.version, role, x, ids, answer.classes, answer.confidences, latency_s)
        if self.metrics is not None:
            self.metrics.series(served.name, served.version, role).observe(latency_s, answer.confidences)
        return answer

    def log_error(
        self, model: str, challenger: Challenger, x: NDArray[np.float32] | None, ids: list[str], role: str
    ) -> None:
        self._submit(model, challenger.plan.challenger, role, x, ids, None, None, 0.0, challenger.error)

    def _submit(
        self,
        model: str,
        version: str,
        role: str,
        x: NDArray[np.float32] | None,
        ids: list[str],
        classes: list[int] | None,
        confidences: list[float] | None,
        latency_s: float,
        error: str | None = None,
    ) -> None:
        # a mirrored row's input is the champion's row with the same id: not stored twice
        features = None if role == SHADOW else x
        per_row_ms = latency_s * 1e3 / len(ids)
        batch = RecordBatch(
            ids, utcnow(), model, version, role, features, classes, confidences, per_row_ms, error
        )
        self.log.submit(batch)


def row_ids(request_id: str, n: int) -> list[str]:
    """Prediction-log ids of a request's rows: the request id, or ``id:i`` for multi-row requests."""
    return [request_id] if n == 1 else [f"{request_id}:{i}" for i in range(n)]
