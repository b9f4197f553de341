"""Many models in one real ``bentoml serve`` process over the Open Inference Protocol: lazy loading
within a memory budget, failures that stay with their model, rollouts on two models at once, padded
batches of token requests, per-task summaries, sampled inputs and feedback."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest
import tritonclient.http as triton
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sqlalchemy import select

from intake import pretrained
from intake.register import package_sklearn
from intake.zoo import ppocr_cls_path, sentences, tokenize, word_crops
from lifecycle.data import DataSplits
from lifecycle.db import create_db_engine, session_factory, upgrade_to_head
from lifecycle.db.schema import FeedbackRow, PredictionRow, RolloutRow
from lifecycle.db.types import utcnow
from lifecycle.input_store import InputStore, stack
from lifecycle.local_version import ModelPackage
from lifecycle.names import TAG_ARTIFACT_SHA256
from lifecycle.runtimes.onnxruntime import OrtRunner
from registry.server import MlflowServerProcess
from tests.serving_helpers import serve_champion


@pytest.mark.slow
def test_one_process_serves_every_champion_loading_lazily_within_a_memory_budget(
    mlflow_server: MlflowServerProcess,
    tabular_package: ModelPackage,
    tabular_data: DataSplits,
    tmp_path: Path,
) -> None:
    """A tabular default model, PP-OCR's image classifier (NCHW), a model whose artifact fails its
    check, and one that gets its champion while the process runs — all in one process, over the
    Open Inference Protocol. A 1 MB budget makes every load unload the least recently used idle model."""
    image = pretrained.ppocr_cls(tmp_path, n=40)
    xd, yd = load_diabetes(return_X_y=True)
    joblib.dump(Ridge().fit(xd, yd), tmp_path / "ridge.joblib")
    np.savez(tmp_path / "diabetes.npz", X=xd, y=yd)
    regressor = package_sklearn("diabetes", tmp_path / "ridge.joblib", tmp_path / "diabetes.npz")
    registry, tabular, settings, serving = serve_champion(
        mlflow_server, tabular_package, tmp_path, "multi", poll_interval_s=0.5, memory_budget_mb=1,
        input_sample_rate=1.0,
    )  # fmt: skip
    tag = tabular.removeprefix("multi-")
    names = {"image": f"img-{tag}", "broken": f"bad-{tag}", "late": f"late-{tag}", "regressor": f"reg-{tag}"}
    for key, package in (("image", image), ("broken", tabular_package), ("regressor", regressor)):
        registry.register(replace(package, name=names[key]))
        registry.set_alias(names[key], "champion", "1", actor="test")
    registry.set_version_tag(names["broken"], "1", TAG_ARTIFACT_SHA256, "0" * 64)  # fails verification
    crops = word_crops(2, seed=1)[0]
    expected = OrtRunner(ppocr_cls_path()).run_named({"x": crops})
    x = tabular_data.x_test[:1].astype(np.float32)

    def infer(client: triton.InferenceServerClient, name: str, inputs: dict[str, np.ndarray]) -> np.ndarray:
        tensors = []
        for key, value in inputs.items():
            tensor = triton.InferInput(key, list(value.shape), "FP32")
            tensor.set_data_from_numpy(value, binary_data=True)
            tensors.append(tensor)
        result = client.infer(name, tensors)
        return result.as_numpy(result.get_response()["outputs"][0]["name"])

    def status() -> dict[str, Any]:
        return httpx.get(f"{serving.url}/admin/status", timeout=10).json()["host"]["models"]

    try:
        deadline = time.monotonic() + 60
        while not serving.ready() and time.monotonic() < deadline:
            time.sleep(0.2)
        client = triton.InferenceServerClient(url=serving.url.removeprefix("http://"))
        assert status()[tabular]["loaded"]
        time.sleep(1.5)  # a poll has listed the models registered after the start
        assert names["image"] in status() and not status()[names["image"]]["loaded"]  # known, not loaded
        assert client.get_model_metadata(names["image"])["inputs"] == [
            {"name": "x", "datatype": "FP32", "shape": [-1, 3, 48, 192]}
        ]
        assert np.allclose(
            infer(client, names["image"], {"x": crops}), next(iter(expected.values())), atol=1e-5
        )
        assert infer(client, tabular, {"x": x}).shape[0] == 1
        (regressor_input,) = client.get_model_metadata(names["regressor"])["inputs"]
        predicted = infer(client, names["regressor"], {regressor_input["name"]: xd[:3].astype(np.float32)})
        feedback = httpx.post(  # the regressor's true value for the request (its id: the first item's)
            f"{serving.url}/v1/feedback", json={"request_id": f"{names['regressor']}-fb", "label": 151.5,
                                                "model": names["regressor"]}, timeout=10,
        )  # fmt: skip
        assert feedback.status_code == 200 and "151.5" in feedback.json()["label"], feedback.text
        refused = httpx.post(
            f"{serving.url}/v1/feedback", json={"request_id": "r", "label": "cat", "model": names["regressor"]},
            timeout=10,
        )  # fmt: skip
        assert refused.status_code == 400 and "a regressor's label is a number" in refused.text, refused.text

        broken = httpx.post(
            f"{serving.url}/v2/models/{names['broken']}/infer", json={"inputs": []}, timeout=30
        )
        assert broken.status_code == 503 and "could not be loaded" in broken.json()["error"]
        assert not client.is_model_ready(names["broken"])
        assert infer(client, tabular, {"x": x}).shape[0] == 1  # the others keep serving

        registry.register(replace(tabular_package, name=names["late"]))
        registry.set_alias(names["late"], "champion", "1", actor="test")
        moved = time.monotonic()
        while time.monotonic() - moved < 5:
            if httpx.get(f"{serving.url}/v2/models/{names['late']}/ready", timeout=30).status_code == 200:
                break
            time.sleep(0.2)
        else:
            pytest.fail("a model that got its champion was not served within 5 s")
        assert infer(client, names["late"], {"x": x}).shape[0] == 1
        models = status()
        assert models[names["image"]]["unloads"] >= 1 and not models[names["image"]]["loaded"]  # LRU, idle
        assert models[tabular]["loaded"] and models[tabular]["unloads"] == 0  # the default stays
        assert np.allclose(
            infer(client, names["image"], {"x": crops}), next(iter(expected.values())), atol=1e-5
        )
        assert status()[names["image"]]["loads"] == 2  # loaded again when asked
    finally:
        serving.stop()
    engine = create_db_engine(settings.database_url)
    with session_factory(engine)() as session:
        logged = Counter(session.scalars(select(PredictionRow.model_name)))
        image_rows = session.execute(
            select(PredictionRow.request_id, PredictionRow.inputs_ref, PredictionRow.predicted_class)
            .where(PredictionRow.model_name == names["image"]).order_by(PredictionRow.id)
        ).all()  # fmt: skip
        targets = session.scalars(
            select(FeedbackRow.target).where(FeedbackRow.model_name == names["regressor"])
        ).all()
        values = session.scalars(
            select(PredictionRow.summary)
            .where(PredictionRow.model_name == names["regressor"])
            .order_by(PredictionRow.id)
        ).all()
    engine.dispose()
    assert np.allclose([v["values"] for v in values], predicted.reshape(3, -1), rtol=1e-5)  # what it answered
    assert targets == [{"values": [151.5]}]
    assert logged[names["image"]] == 4 and logged[names["late"]] == 1 and logged[tabular] == 2
    # every image item sampled (rate 1.0): its input tensors come back exactly from the store
    kept = InputStore(settings.state_path / "inputs", sample_rate=0.0).read(
        [r.inputs_ref for r in image_rows]
    )
    assert all(item is not None for item in kept)
    assert np.array_equal(stack([item for item in kept[:2] if item is not None])["x"], crops)
    assert [r.predicted_class for r in image_rows[:2]] == np.argmax(
        next(iter(expected.values())), axis=1
    ).tolist()


@pytest.mark.slow
def test_two_rollouts_on_two_models_route_open_inference_protocol_traffic_at_once(
    mlflow_server: MlflowServerProcess, tmp_path: Path
) -> None:
    """An image classifier in canary (every request to v2) and a regressor in shadow (every request
    mirrored to v2 in a child process) — at the same time, in one serving process."""
    image = pretrained.ppocr_cls(tmp_path, n=40)
    xd, yd = load_diabetes(return_X_y=True)
    regressors = []
    for alpha in (1.0, 30.0):  # two versions that answer differently
        joblib.dump(Ridge(alpha=alpha).fit(xd, yd), tmp_path / f"ridge-{alpha}.joblib")
        np.savez(tmp_path / "diabetes.npz", X=xd, y=yd)
        regressors.append(
            package_sklearn("diabetes", tmp_path / f"ridge-{alpha}.joblib", tmp_path / "diabetes.npz")
        )
    registry, image_name, settings, serving = serve_champion(
        mlflow_server, image, tmp_path, "canary", poll_interval_s=0.5, model="", input_sample_rate=0.0
    )
    registry.register(replace(image, name=image_name))  # v2
    regressor_name = f"shadow-{image_name.removeprefix('canary-')}"
    for package in regressors:
        registry.register(replace(package, name=regressor_name))
    registry.set_alias(regressor_name, "champion", "1", actor="test")
    engine = create_db_engine(settings.database_url)
    upgrade_to_head(engine)
    now = utcnow()
    with session_factory(engine).begin() as session:
        for model, phase, weight, mirror in (
            (image_name, "canary", 1.0, 0.0),
            (regressor_name, "shadow", 0.0, 1.0),
        ):
            session.add(RolloutRow(
                model_name=model, champion="1", challenger="2", phase=phase, step=1, failures=0, paused=False,
                canary_weight=weight, mirror_share=mirror, started_at=now, step_started_at=now, updated_at=now,
                started_by="test", reason="", policy={},
            ))  # fmt: skip
    crops = word_crops(3, seed=2)[0]
    x = xd[:4].astype(np.float32)
    try:
        deadline = time.monotonic() + 60
        while not serving.ready() and time.monotonic() < deadline:
            time.sleep(0.2)
        client = triton.InferenceServerClient(url=serving.url.removeprefix("http://"))
        deadline = time.monotonic() + 10  # the regressor got its champion after the start: the next poll
        while (
            time.monotonic() < deadline
            and not httpx.get(f"{serving.url}/v2/models/{regressor_name}", timeout=30).is_success
        ):
            time.sleep(0.2)
        (regressor_input,) = client.get_model_metadata(regressor_name)["inputs"]
        for name in (image_name, regressor_name):  # loaded on first use, then the poll loads each challenger
            assert client.is_model_ready(name)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            models = httpx.get(f"{serving.url}/admin/status", timeout=10).json()["host"]["models"]
            if all((models[n]["rollout"] or {}).get("loaded") for n in (image_name, regressor_name)):
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"the challengers were not loaded: {models}")
        answered = []
        for i in range(3):
            tensor = triton.InferInput("x", [1, 3, 48, 192], "FP32")
            tensor.set_data_from_numpy(crops[i : i + 1], binary_data=True)
            answered.append(
                client.infer(image_name, [tensor], request_id=f"img-{i}").get_response()["model_version"]
            )
            tensor = triton.InferInput(regressor_input["name"], [1, 10], "FP32")
            tensor.set_data_from_numpy(x[i : i + 1])
            result = client.infer(regressor_name, [tensor], request_id=f"reg-{i}")
            assert result.get_response()["model_version"] == "1"  # the shadow never answers
        assert answered == ["2", "2", "2"]  # the canary answers its whole share
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            shadow = httpx.get(f"{serving.url}/admin/status", timeout=10).json()["host"]["models"][
                regressor_name
            ]
            if shadow["rollout"]["shadow"]["mirrored"] == 3:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"the shadow did not answer the three mirrored requests: {shadow['rollout']}")
    finally:
        serving.stop()
    with session_factory(engine)() as session:
        rows = session.execute(
            select(PredictionRow.model_name, PredictionRow.version, PredictionRow.role, PredictionRow.request_id, PredictionRow.summary)
            .where(PredictionRow.model_name.in_([image_name, regressor_name]))
        ).all()  # fmt: skip
    engine.dispose()
    assert sorted((r.model_name == image_name, r.version, r.role) for r in rows) == sorted(
        [(True, "2", "canary")] * 3 + [(False, "1", "champion")] * 3 + [(False, "2", "shadow")] * 3
    )
    shadow_values = {r.request_id: r.summary["values"] for r in rows if r.role == "shadow"}
    expected = Ridge(alpha=30.0).fit(xd, yd).predict(xd[:3])
    assert np.allclose([shadow_values[f"reg-{i}"][0] for i in range(3)], expected, rtol=1e-4)  # v2 answered


@pytest.mark.slow
def test_token_requests_of_different_lengths_are_batched_padded_and_answered_as_alone(
    mlflow_server: MlflowServerProcess, tmp_path: Path
) -> None:
    """all-MiniLM-L6-v2 over the Open Inference Protocol: concurrent requests of 12, 20 and 32 tokens
    run padded in shared model calls (a 100 ms batch wait), each answered as it would be alone."""
    package = pretrained.minilm(tmp_path, n=16, length=32)
    _, name, _, serving = serve_champion(
        mlflow_server, package, tmp_path, "minilm", model="", max_batch_wait_ms=100, input_sample_rate=0.0
    )
    texts = sentences(9, seed=4)
    requests = [tokenize(texts[i : i + 1], length=(12, 20, 32)[i % 3]) for i in range(9)]
    (tmp_path / "minilm.onnx").write_bytes(package.model_files["model.onnx"])
    alone = [OrtRunner(tmp_path / "minilm.onnx").run_named(r)["token_embeddings"] for r in requests]
    try:
        deadline = time.monotonic() + 60
        while not serving.ready() and time.monotonic() < deadline:
            time.sleep(0.2)
        client = triton.InferenceServerClient(url=serving.url.removeprefix("http://"), concurrency=9)
        assert client.is_model_ready(name)

        def tensors(request: dict[str, np.ndarray]) -> list[triton.InferInput]:
            out = []
            for key, value in request.items():
                tensor = triton.InferInput(key, list(value.shape), "INT64")
                tensor.set_data_from_numpy(value, binary_data=True)
                out.append(tensor)
            return out

        pending = [client.async_infer(name, tensors(r)) for r in requests]
        answers = [p.get_result().as_numpy("token_embeddings") for p in pending]
        batching = httpx.get(f"{serving.url}/admin/status", timeout=10).json()["host"]["models"][name][
            "tensor_batching"
        ]
    finally:
        serving.stop()
    for request, answer, expected in zip(requests, answers, alone, strict=True):
        assert answer.shape == (1, request["input_ids"].shape[1], 384)  # cut back to its own length
        assert np.allclose(answer, expected, atol=1e-4)
    assert batching["items"] == 9 and batching["batches"] < 9, batching  # some requests shared a call
