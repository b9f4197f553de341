"""Requests of named tensors (the Open Inference Protocol) for any model, as plain Python: routed
like the rows of ``/v1/predict`` (the canary answers its share, a share of the champion's requests
is mirrored to the shadow), and run together where they fit one batch (``lifecycle.padding``:
the same item shapes, or shapes that differ only in a dimension the contract pads).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from numpy.typing import NDArray

from lifecycle.contract import ModelContract
from lifecycle.names import CANARY
from lifecycle.padding import merge_requests, split_outputs
from serving.predictor import Predictor, row_ids
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
        challenger = router.challenger if router is not None else None
        for_champion = list(range(len(requests)))
        if challenger is not None and router is not None:
            for_champion, for_canary = [], []
            for i, request in enumerate(requests):
                canary = router.canary(request.request_key)
                if canary is None:
                    for_champion.append(i)
                elif canary.served is None:  # could not load: counted as its error, the champion answers
                    ids = row_ids(request.request_id, _items(request))
                    p.log_error(champion.name, canary, None, ids, CANARY)
                    for_champion.append(i)
                else:
                    for_canary.append(i)
            if for_canary and challenger.served is not None:
                failed = self._run(
                    challenger.served, requests, for_canary, CANARY, results, champion.contract
                )
                for_champion = sorted(for_champion + failed)
        self._run(champion, requests, for_champion, champion.role, results)
        if challenger is not None and router is not None:
            for i in for_champion:
                answered = results[i]
                if isinstance(answered, Exception) or (mirror := router.mirror()) is None:
                    continue
                ids = row_ids(requests[i].request_id, _items(requests[i]))
                if mirror.mirror is not None:  # a child process runs and logs it
                    mirror.mirror.offer(requests[i].inputs, ids)
                elif p.shadow is not None:
                    p.shadow.offer(mirror, requests[i].inputs, ids)
        return [r if r is not None else RuntimeError("request was not answered") for r in results]

    def _run(
        self, served: Served, requests: Sequence[InferRequest], positions: list[int], role: str,
        results: list[Answered | Exception | None], interface: ModelContract | None = None,
    ) -> list[int]:  # fmt: skip
        """Run ``positions`` of ``requests`` on ``served``, one call per batch that fits; set their
        results. A canary's failed positions are returned (the champion answers them); the
        champion's failures are their results."""
        failed: list[int] = []
        for merged in merge_requests(served.contract, [requests[i].inputs for i in positions]):
            members = [positions[m] for m in merged.members]
            ids = [i for m in members for i in row_ids(requests[m].request_id, _items(requests[m]))]
            try:
                outputs = self.predictor.run_named(served, merged.inputs, ids, role, interface)
            except Exception as exc:
                if role == CANARY:
                    log.debug("canary v%s failed, champion answers: %s", served.version, exc)
                    failed += members
                else:
                    for m in members:
                        results[m] = exc
                continue
            for m, part in zip(members, split_outputs(served.contract, merged, outputs), strict=True):
                results[m] = (served, part)
        return failed


def _items(request: InferRequest) -> int:
    return len(next(iter(request.inputs.values())))
