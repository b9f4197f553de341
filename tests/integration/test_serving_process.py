"""A real ``bentoml serve`` process: hot swap under load with no failed request, a lossless log, and the
Open Inference Protocol with ``tritonclient``."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from sqlalchemy import func, select
from tritonclient.utils import InferenceServerException

from lifecycle.data import DataSplits
from lifecycle.db import create_db_engine, session_factory
from lifecycle.db.schema import PredictionRow
from lifecycle.local_version import ModelPackage
from lifecycle.runtimes.onnxruntime import OrtRunner
from registry.server import MlflowServerProcess
from serving.settings import ServingSettings
from tests.serving_helpers import serve_champion


@pytest.mark.slow
def test_alias_move_under_load_is_served_within_5s_without_errors_and_every_answer_is_logged(
    mlflow_server: MlflowServerProcess,
    tabular_package: ModelPackage,
    tabular_data: DataSplits,
    tmp_path: Path,
) -> None:
    registry, name, settings, serving = serve_champion(
        mlflow_server, tabular_package, tmp_path, "live", poll_interval_s=1.0
    )
    try:
        deadline = time.monotonic() + 60
        while not serving.ready() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert serving.ready(), "serving never became ready"

        results: list[tuple[float, int, str | None]] = []
        lock, stop = threading.Lock(), threading.Event()
        body = {"instances": tabular_data.x_test[:1].tolist()}

        def client() -> None:
            with httpx.Client(base_url=serving.url, timeout=10) as http:
                while not stop.is_set():
                    response = http.post("/v1/predict", json=body)
                    version = response.json().get("version") if response.status_code == 200 else None
                    with lock:
                        results.append((time.monotonic(), response.status_code, version))
                    time.sleep(0.005)  # bounded load: 4 clients, ~5 ms think time

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(2)
        new = registry.register(replace(tabular_package, name=name))
        registry.set_alias(name, "champion", new.version, actor="test")
        moved = time.monotonic()
        time.sleep(7)
        stop.set()
        for t in threads:
            t.join()
        metrics = httpx.get(f"{serving.url}/metrics", timeout=10).text
        gc_status = httpx.get(f"{serving.url}/admin/status", timeout=10).json()["gc"]
    finally:
        serving.stop()  # SIGTERM: the service flushes its prediction log on shutdown

    statuses = Counter(status for _, status, _ in results)
    assert set(statuses) == {200}, statuses
    first_new = min(at for at, _, version in results if version == new.version)
    assert first_new - moved < 5.0
    assert all(version == new.version for at, _, version in results if at > first_new + 0.5)

    engine = create_db_engine(settings.database_url)
    with session_factory(engine)() as session:
        logged = session.scalar(
            select(func.count()).select_from(PredictionRow).where(PredictionRow.model_name == name)
        )
    engine.dispose()
    assert logged == len(results), f"{len(results)} answered, {logged} logged"
    for series in ("lifecycle_requests_total", "lifecycle_predicted_rows_total", "lifecycle_prediction_confidence_bucket",
                   "lifecycle_model_latency_seconds_bucket", "bentoml_service_request_total"):  # fmt: skip
        assert series in metrics, series
    assert f'version="{new.version}"' in metrics
    # the worker froze its start-up heap (imports, first model) and swapped models on top of it
    assert gc_status["frozen_objects"] > 50_000, gc_status
    assert gc_status["thresholds"][0] == ServingSettings().gc_gen0_threshold, gc_status


def test_the_open_inference_protocol_with_tritonclient_json_and_binary(
    mlflow_server: MlflowServerProcess,
    tabular_package: ModelPackage,
    tabular_data: DataSplits,
    tmp_path: Path,
) -> None:
    _, name, settings, serving = serve_champion(
        mlflow_server, tabular_package, tmp_path, "oip", max_tensor_elements=4096
    )
    x = tabular_data.x_test[:5].astype(np.float32)
    expected = OrtRunner(tabular_package.model_files["model.onnx"]).run_named({"x": x})
    try:
        deadline = time.monotonic() + 60
        while not serving.ready() and time.monotonic() < deadline:
            time.sleep(0.2)
        client = triton.InferenceServerClient(url=serving.url.removeprefix("http://"))
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(name)
        assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
        meta = client.get_model_metadata(name)
        assert meta["versions"] == ["1"] and meta["inputs"] == [
            {"name": "x", "datatype": "FP32", "shape": [-1, 30]}
        ]
        (output,) = meta["outputs"]
        answers = {}
        for binary in (False, True):
            tensor = triton.InferInput("x", list(x.shape), "FP32")
            tensor.set_data_from_numpy(x, binary_data=binary)
            wanted = [triton.InferRequestedOutput(output["name"], binary_data=binary)]
            result = client.infer(name, [tensor], outputs=wanted, request_id=f"req-{binary}")
            assert (
                result.get_response()["id"] == f"req-{binary}"
                and result.get_response()["model_version"] == "1"
            )
            answers[binary] = result.as_numpy(output["name"])
            assert np.allclose(answers[binary], expected[output["name"]], atol=1e-5)
        assert client.infer(name, [tensor], model_version="1").as_numpy(output["name"]) is not None

        def refused(call: Callable[[], object]) -> str:
            with pytest.raises(InferenceServerException) as caught:
                call()
            return str(caught.value)

        assert "is not served here" in refused(lambda: client.get_model_metadata("no-such-model"))
        assert "version '7' is not served" in refused(lambda: client.infer(name, [tensor], model_version="7"))
        wrong = triton.InferInput("x", list(x.shape), "FP64")
        wrong.set_data_from_numpy(x.astype(np.float64))
        assert "datatype 'FP64'; the model takes FP32" in refused(lambda: client.infer(name, [wrong]))
        big = triton.InferInput("x", [200, 30], "FP32")
        big.set_data_from_numpy(np.zeros((200, 30), np.float32))
        assert "over 4096 elements" in refused(lambda: client.infer(name, [big]))
        header = b'{"inputs":[{"name":"x","shape":[1,30],"datatype":"FP32","parameters":{"binary_data_size":120}}]}'
        short = httpx.post(
            f"{serving.url}/v2/models/{name}/infer", content=header + b"\0" * 10,
            headers={"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"},
            timeout=10,
        )  # fmt: skip
        assert (
            short.status_code == 400 and "binary data ends after 10 of its 120 bytes" in short.json()["error"]
        )
        assert (
            httpx.post(
                f"{serving.url}/v1/predict", json={"instances": x[:1].tolist()}, timeout=10
            ).status_code
            == 200
        )
    finally:
        serving.stop()
    engine = create_db_engine(settings.database_url)
    with session_factory(engine)() as session:
        ids = set(session.scalars(select(PredictionRow.request_id).where(PredictionRow.model_name == name)))
    engine.dispose()
    assert {f"req-{b}:{i}" for b in (False, True) for i in range(5)} <= ids  # every answered item is kept
