"""Routing and batching of named-tensor requests (``serving.inference``) with a stand-in runtime and
log: a bad request fails alone, each request is logged with its own tensors."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pytest

from lifecycle.contract import ModelContract, TensorSpec
from serving.inference import Inference, InferRequest
from serving.prediction_log import RecordBatch
from serving.predictor import Predictor
from serving.slot import Served

CONTRACT = ModelContract(
    inputs=(TensorSpec("x", "float32", ("batch", 3)),),
    outputs=(TensorSpec("y", "float32", ("batch", 1)),),
    task="regression",
)


class Runner:
    """Sums each row; fails on a negative number (as a runtime fails on a bad token id)."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def run_named(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = feeds["x"]
        self.calls.append(len(x))
        if (x < 0).any():
            raise ValueError("negative input")
        return {"y": x.sum(axis=1, keepdims=True)}


class Log:
    def __init__(self) -> None:
        self.batches: list[RecordBatch] = []

    def submit(self, batch: RecordBatch) -> None:
        self.batches.append(batch)


def test_a_bad_request_in_a_batch_fails_alone_and_each_is_logged_with_its_own_answer() -> None:
    runner, log = Runner(), Log()
    served = Served("m", "1", "champion", cast(Any, runner), CONTRACT, "")
    slot = cast(Any, type("Slot", (), {"current": lambda self: served})())
    inference = Inference(Predictor(slot, cast(Any, log), max_instances=8, shadow_queue=None))
    good = InferRequest({"x": np.ones((2, 3), np.float32)}, "good")
    bad = InferRequest({"x": -np.ones((1, 3), np.float32)}, "bad")
    other = InferRequest({"x": np.full((1, 3), 2, np.float32)}, "other")
    results = inference.infer_many([good, bad, other])
    assert runner.calls == [4, 2, 1, 1]  # the batch failed; then each request alone
    assert isinstance(results[1], ValueError)
    assert not isinstance(results[0], Exception) and results[0][1]["y"].tolist() == [[3.0], [3.0]]
    assert not isinstance(results[2], Exception) and results[2][1]["y"].tolist() == [[6.0]]
    logged = {tuple(b.request_ids): b for b in log.batches}
    assert set(logged) == {("good:0", "good:1"), ("bad",), ("other",)}  # the failed batch is not logged twice
    assert logged[("bad",)].error is not None and "negative input" in logged[("bad",)].error
    assert logged[("good:0", "good:1")].summaries == [{"values": [3.0]}, {"values": [3.0]}]
    with pytest.raises(ValueError, match="negative"):
        inference.infer(bad)
