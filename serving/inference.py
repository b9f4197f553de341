"""Requests of named tensors (the Open Inference Protocol) for any model, as plain Python: routed
like the rows of ``/v1/predict`` (the canary answers its share, a share of the champion's requests
is mirrored to the shadow), and run together where they fit one batch (``lifecycle.padding``:
the same item shapes, or shapes that differ only in a dimension the contract pads).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from numpy.typing import NDArray

from lifecycle.contract import ModelContract
from lifecycle.names import CANARY
from lifecycle.padding import merge_requests, split_outputs
from serving.predictor import Predictor, row_ids
from serving.routing import Challenger
from serving.slot import Served

log = logging.getLogger(__name__)

Outputs = dict[str, NDArray[Any]]


@dataclass(slots=True)
class InferRequest:
    """One request's input tensors, already checked against the contract."""

    inputs: dict[str, NDArray[Any]]
    request_id: str
    request_key: str | None = None
    """Routes the request stickily during a canary (stable hash); random without one."""


Answered = tuple[Served, Outputs]


class Inference:
    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor

    def infer(self, request: InferRequest) -> Answered:
        """One request: who answered, and the outputs. :raises: what the model call raised."""
        (result,) = self.infer_many([request])
        if isinstance(result, Exception):
            raise result
        return result

    def infer_many(self, requests: Sequence[InferRequest]) -> list[Answered | Exception]:
        """Answer requests together: one model call per batch that fits, per model that answers.
        A canary failure is logged as its error and the champion answers instead.
        :raises ModelNotReadyError:"""
        p = self.predictor
        champion = p.slot.current()
        results: list[Answered | Exception | None] = [None] * len(requests)
        router = p.router
        for_champion = list(range(len(requests)))
        if router is not None and router.challenger is not None:
            for_champion = []
            by_canary: dict[int, tuple[Challenger, list[int]]] = {}
            for i, request in enumerate(requests):
                canary = router.canary(request.request_key)  # the challenger it names, read once
                if canary is None:
                    for_champion.append(i)
                elif canary.served is None:  # could not load: counted as its error, the champion answers
                    p.log_error(champion.name, canary, None, _ids(request), CANARY)
                    for_champion.append(i)
                else:
                    by_canary.setdefault(id(canary), (canary, []))[1].append(i)
            for canary, positions in by_canary.values():
                assert canary.served is not None
                failed = self._run(canary.served, requests, positions, CANARY, results, champion.contract)
                for_champion = sorted(for_champion + failed)
        self._run(champion, requests, for_champion, champion.role, results)
        if router is not None and router.challenger is not None:
            for i in for_champion:
                if isinstance(results[i], Exception) or (mirror := router.mirror()) is None:
                    continue
                if mirror.mirror is not None:  # a child process runs and logs it (never raises)
                    mirror.mirror.offer(requests[i].inputs, _ids(requests[i]))
                elif p.shadow is not None:
                    p.shadow.offer(mirror, requests[i].inputs, _ids(requests[i]))
        return [r if r is not None else RuntimeError("request was not answered") for r in results]

    def _run(
        self, served: Served, requests: Sequence[InferRequest], positions: list[int], role: str,
        results: list[Answered | Exception | None], interface: ModelContract | None = None,
    ) -> list[int]:  # fmt: skip
        """Run ``positions`` of ``requests`` on ``served``, one call per batch that fits, and log each
        request's own answer (unpadded) and input. A batch of several requests that fails is run
        again one request at a time, so that a bad request fails alone. A canary's failed positions
        are returned (the champion answers them); the champion's failures are their results."""
        failed: list[int] = []
        p = self.predictor
        for merged in merge_requests(served.contract, [requests[i].inputs for i in positions]):
            members = [positions[m] for m in merged.members]
            if len(members) == 1:
                ids = _ids(requests[members[0]])
            else:
                ids = [i for m in members for i in _ids(requests[m])]
            try:
                if len(members) == 1:
                    outputs, latency_s = p.call(served, merged.inputs, ids, role, interface)
                else:
                    outputs, latency_s = self._call_quietly(served, merged.inputs, role, interface)
            except Exception as exc:
                if len(members) > 1:  # find the request that failed: each alone
                    for m in members:
                        failed += self._run(served, requests, [m], role, results, interface)
                    continue
                if role == CANARY:
                    log.debug("canary v%s failed, champion answers: %s", served.version, exc)
                    failed += members
                else:
                    results[members[0]] = exc
                continue
            share = latency_s / len(ids)
            for m, part in zip(members, split_outputs(served.contract, merged, outputs), strict=True):
                request = requests[m]
                p.record(served, request.inputs, part, _ids(request), role, share * _items(request))
                results[m] = (served, part)
        return failed

    def _call_quietly(
        self, served: Served, inputs: dict[str, NDArray[Any]], role: str, interface: ModelContract | None
    ) -> tuple[Outputs, float]:
        """A merged call whose failure is not logged yet: its requests are run again one by one."""
        start = time.perf_counter()
        outputs = (interface or served.contract).validate_outputs(served.runner.run_named(inputs))
        return outputs, time.perf_counter() - start


def _ids(request: InferRequest) -> list[str]:
    return row_ids(request.request_id, _items(request))


def _items(request: InferRequest) -> int:
    return len(next(iter(request.inputs.values())))
