"""The prediction log's per-task summaries (``lifecycle.answers``) and the sampled-input store
(``lifecycle.input_store``): real files in a temporary directory."""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import numpy as np
import pytest

from lifecycle.answers import PROJECTION_DIMS, projection, summarize
from lifecycle.contract import Detection, ModelContract, Pooling, TensorSpec
from lifecycle.input_store import InputStore, stack

TOKENS = (
    TensorSpec("input_ids", "int64", ("batch", "sequence")),
    TensorSpec("attention_mask", "int64", ("batch", "sequence")),
)


def test_a_classifier_is_summarised_by_its_class_and_softmax_confidence() -> None:
    contract = ModelContract.for_classifier(("a", "b"), ("n", "y", "z"))
    answers = summarize(contract, {}, {"logits": np.array([[3, 1, 0], [0, 0, 5]], np.float32)})
    assert answers.classes == [0, 2] and answers.summaries is None
    assert answers.confidences == pytest.approx(
        [np.exp(3) / (np.exp(3) + np.exp(1) + 1), np.exp(5) / (2 + np.exp(5))]
    )


def test_a_regressor_logs_its_values_and_nan_stays_json_safe() -> None:
    contract = ModelContract(
        inputs=(TensorSpec("x", "float32", ("batch", 10)),),
        outputs=(TensorSpec("y", "float32", ("batch", 2)),),
        task="regression",
        target_names=("a", "b"),
    )
    answers = summarize(contract, {}, {"y": np.array([[1.5, -2.0], [np.nan, 3.25]], np.float32)})
    assert answers.summaries == [{"values": [1.5, -2.0]}, {"values": [None, 3.25]}]
    json.dumps(answers.summaries, allow_nan=False)  # PostgreSQL's JSON takes it


def test_an_embedding_is_a_fixed_projection_that_keeps_distances() -> None:
    contract = ModelContract(
        inputs=TOKENS, outputs=(TensorSpec("states", "float32", ("batch", "sequence", 64)),), task="embedding",
        pooling=Pooling(method="mean", mask="attention_mask"),
    )  # fmt: skip
    rng = np.random.default_rng(1)
    states = rng.standard_normal((40, 5, 64)).astype(np.float32)
    mask = np.ones((40, 5), np.int64)
    mask[:, 3:] = 0  # padding does not count
    inputs = {"input_ids": np.ones((40, 5), np.int64), "attention_mask": mask}
    summaries = summarize(contract, inputs, {"states": states}).summaries
    assert summaries is not None and len(summaries[0]["projection"]) == PROJECTION_DIMS
    assert summaries[0]["norm"] == pytest.approx(1.0, abs=1e-5)  # the contract normalises
    vectors = states[:, :3].mean(1)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    assert np.allclose([s["projection"] for s in summaries], unit @ projection(64), atol=1e-4)
    assert np.array_equal(projection(64), projection.__wrapped__(64))  # fixed: the same in every process
    # squared distances are kept in expectation (Johnson–Lindenstrauss): within a factor on average
    p = np.array([s["projection"] for s in summaries])
    ratio = np.linalg.norm(p[:20] - p[20:], axis=1) ** 2 / np.linalg.norm(unit[:20] - unit[20:], axis=1) ** 2
    assert 0.5 < ratio.mean() < 1.5


def test_a_detector_logs_its_boxes_scores_classes_and_areas() -> None:
    contract = ModelContract(
        inputs=(TensorSpec("images", "float32", ("batch", 3, 8, 8)),),
        outputs=(TensorSpec("output0", "float32", ("batch", 6, "anchors")),),
        task="detection", detection=Detection(score_threshold=0.3),
    )  # fmt: skip
    head = np.array(
        [[(10, 10, 4, 4, 0.6, 0.0), (30, 30, 2, 2, 0.0, 0.9)], [(5, 5, 2, 2, 0.1, 0.1)] * 2], np.float32
    )
    answers = summarize(contract, {}, {"output0": head.transpose(0, 2, 1)})
    assert answers.summaries == [
        {
            "boxes": 2,
            "scores": [pytest.approx(0.9), pytest.approx(0.6)],
            "classes": [1, 0],
            "areas": [4.0, 16.0],
        },
        {"boxes": 0, "scores": [], "classes": [], "areas": []},
    ]
    assert answers.confidences == [pytest.approx(0.9), 0.0] and answers.classes is None


def test_generic_tensors_are_summarised_by_their_moments() -> None:
    contract = ModelContract(
        inputs=(TensorSpec("x", "float32", ("batch", 4)),),
        outputs=(TensorSpec("z", "float32", ("batch", 2, 2)),),
        task="tensors",
    )
    (summary,) = summarize(contract, {}, {"z": np.array([[[1, 2], [3, 6]]], np.float32)}).summaries or []
    assert summary == {"mean": 3.0, "std": pytest.approx(1.870829), "min": 1.0, "max": 6.0}


def _store(tmp_path: Path, **kwargs: object) -> InputStore:
    options: dict[str, object] = {"sample_rate": 1.0, "batch_items": 4, "rng": random.Random(0), **kwargs}
    return InputStore(tmp_path, **options)  # type: ignore[arg-type]


def test_sampled_inputs_are_written_in_batches_and_read_back_exactly(tmp_path: Path) -> None:
    store = _store(tmp_path)
    short = {"input_ids": np.arange(6).reshape(2, 3), "attention_mask": np.ones((2, 3), np.int64)}
    long = {"input_ids": np.arange(10).reshape(2, 5), "attention_mask": np.ones((2, 5), np.int64)}
    refs = store.offer("minilm", short, 2) + store.offer("minilm", long, 2)  # a full batch: written
    assert len(list((tmp_path / "minilm").glob("*.npz"))) == 0  # the writer thread was not started
    store.flush()
    assert len(list((tmp_path / "minilm").glob("*.npz"))) == 1
    back = store.read([refs[3], None, refs[0]])
    assert back[1] is None
    assert back[0] is not None and np.array_equal(back[0]["input_ids"], [5, 6, 7, 8, 9])
    assert back[2] is not None and np.array_equal(back[2]["input_ids"], [0, 1, 2])
    items = store.read(refs[:2])
    assert np.array_equal(stack([i for i in items if i])["input_ids"], short["input_ids"])
    with pytest.raises(ValueError, match="not an input reference"):
        store.read(["../../etc/passwd#0"])


def test_a_request_is_sampled_whole_at_the_rate(tmp_path: Path) -> None:
    store = _store(tmp_path, sample_rate=0.25, batch_items=10_000)
    refs = [store.offer("m", {"x": np.zeros((3, 2))}, 3) for _ in range(2000)]
    sampled = [r for r in refs if r[0] is not None]
    assert all(all(x is not None for x in r) for r in sampled)  # all of a request's items, or none
    assert 0.2 < len(sampled) / len(refs) < 0.3
    assert _store(tmp_path, sample_rate=0.0).offer("m", {"x": np.zeros((1, 2))}, 1) == [None]


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_the_oldest_files_go_first_over_the_size_limit_and_by_age(tmp_path: Path) -> None:
    item = {"x": np.random.default_rng(0).standard_normal((1, 2000))}  # ~16 KB that hardly compresses
    store = _store(tmp_path, batch_items=1, max_bytes=40_000)
    refs = []
    for i in range(4):
        before = set((tmp_path / "m").glob("*.npz"))
        refs += store.offer("m", item, 1)
        store.flush()
        for path in set((tmp_path / "m").glob("*.npz")) - before:
            _age(path, 100 - i)  # each file younger than the one before
    assert store.stats.removed_files == 2 and store.file_bytes("m") <= 40_000
    assert [f is not None for f in store.read(refs)] == [False, False, True, True]

    aged = _store(tmp_path, max_age_s=50.0)
    old = aged.offer("old", item, 1)
    aged.close()  # writes the open batch
    assert aged.read(old)[0] is not None
    (path,) = (tmp_path / "old").glob("*.npz")
    _age(path, 60)
    aged.offer("old", item, 1)
    aged.flush(everything=True)
    assert aged.read(old)[0] is None  # removed by age at the next write
