"""Merging requests of named tensors into one model call, and splitting the outputs back."""

from __future__ import annotations

import numpy as np

from lifecycle.contract import ModelContract, Pooling, TensorSpec
from lifecycle.padding import merge_requests, paddable_dims, split_outputs

TOKENS = ModelContract(
    inputs=(
        TensorSpec("input_ids", "int64", ("batch", "sequence"), pad_value=0),
        TensorSpec("attention_mask", "int64", ("batch", "sequence"), pad_value=0),
    ),
    outputs=(TensorSpec("states", "float32", ("batch", "sequence", 4)),),
    task="embedding",
    pooling=Pooling(),
)
IMAGES = ModelContract(
    inputs=(TensorSpec("x", "float32", ("batch", 3, "height", "width")),),
    outputs=(TensorSpec("y", "float32", ("batch", 2)),),
)


def _tokens(n: int, length: int, start: int = 1) -> dict[str, np.ndarray]:
    ids = np.arange(start, start + n * length).reshape(n, length)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


def _model(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Token states that depend only on each token (as a masked transformer's real tokens do)."""
    ids = inputs["input_ids"].astype(np.float32)
    return {"states": np.stack([ids, ids * 2, ids * 3, inputs["attention_mask"].astype(np.float32)], axis=-1)}


def test_token_requests_of_different_lengths_run_as_one_padded_call_and_come_back_unpadded() -> None:
    assert paddable_dims(TOKENS) == {"sequence"} and paddable_dims(IMAGES) == frozenset()
    requests = [_tokens(2, 3), _tokens(1, 4, start=100), _tokens(1, 3, start=50)]
    (merged,) = merge_requests(TOKENS, requests)
    assert merged.members == [0, 1, 2] and merged.counts == [2, 1, 1]
    assert merged.inputs["input_ids"].shape == (4, 4)
    assert merged.inputs["attention_mask"][:2, 3:].tolist() == [[0], [0]]  # padding is masked
    parts = split_outputs(TOKENS, merged, _model(merged.inputs))
    for request, part in zip(requests, parts, strict=True):
        assert np.array_equal(part["states"], _model(request)["states"])  # as if it ran alone


def test_images_merge_only_with_the_same_size() -> None:
    small, large = np.zeros((1, 3, 8, 8), np.float32), np.zeros((2, 3, 16, 8), np.float32)
    groups = merge_requests(IMAGES, [{"x": small}, {"x": large}, {"x": small + 1}])
    assert sorted((g.members, g.inputs["x"].shape) for g in groups) == [
        ([0, 2], (2, 3, 8, 8)),
        ([1], (2, 3, 16, 8)),
    ]
    merged = next(g for g in groups if g.members == [0, 2])
    parts = split_outputs(IMAGES, merged, {"y": np.array([[0, 1], [2, 3]], np.float32)})
    assert [p["y"].tolist() for p in parts] == [[[0, 1]], [[2, 3]]]


def test_a_dimension_that_an_input_without_a_pad_value_has_is_never_padded() -> None:
    contract = ModelContract(
        inputs=(
            TensorSpec("input_ids", "int64", ("batch", "sequence"), pad_value=0),
            TensorSpec("positions", "int64", ("batch", "sequence")),
        ),
        outputs=(TensorSpec("y", "float32", ("batch", 2)),),
    )
    assert paddable_dims(contract) == frozenset()
    a = {"input_ids": np.ones((1, 3), np.int64), "positions": np.ones((1, 3), np.int64)}
    b = {"input_ids": np.ones((1, 4), np.int64), "positions": np.ones((1, 4), np.int64)}
    assert len(merge_requests(contract, [a, b])) == 2


def test_a_long_request_does_not_pad_a_batch_of_short_ones() -> None:
    groups = merge_requests(TOKENS, [_tokens(1, 5), _tokens(1, 7), _tokens(1, 100)])
    assert sorted(g.members for g in groups) == [[0, 1], [2]]  # 5 and 7 share 8; 100 pads alone
