"""The BentoML service in-process (``Service.to_asgi()``) against a real MLflow server and SQLite."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from lifecycle.data import DataSplits
from lifecycle.db import create_db_engine, session_factory
from lifecycle.db.schema import PredictionRow
from lifecycle.local_version import ModelPackage
from registry.mlflow import MlflowModelRegistry
from registry.server import MlflowServerProcess


@pytest.fixture(scope="module")
def served(
    mlflow_server: MlflowServerProcess,
    tabular_package: ModelPackage,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestClient, MlflowModelRegistry, str, Path]]:
    registry = MlflowModelRegistry(mlflow_server.url, experiment="serving-tests")
    name = f"srv-{uuid.uuid4().hex[:6]}"
    registry.register(replace(tabular_package, name=name))
    registry.set_alias(name, "champion", "1", actor="test")
    state = tmp_path_factory.mktemp("serving-state")
    env = {
        "LIFECYCLE_REGISTRY_TRACKING_URI": mlflow_server.url,
        "LIFECYCLE_STATE_DIR": str(state),
        "LIFECYCLE_SERVING_MODEL": name,
        "LIFECYCLE_SERVING_POLL_INTERVAL_S": "0.5",
        "LIFECYCLE_SERVING_MAX_INSTANCES": "8",
        "LIFECYCLE_SERVING_MAX_BODY_BYTES": str(64 * 1024),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    from serving.service import Classifier

    try:
        with TestClient(Classifier.to_asgi()) as client:
            yield client, registry, name, state
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_predict_contract(
    served: tuple[TestClient, MlflowModelRegistry, str, Path], tabular_data: DataSplits
) -> None:
    client, _, name, _ = served
    assert client.get("/readyz").status_code == 200, client.get("/admin/status").text
    response = client.post(
        "/v1/predict",
        json={
            "instances": tabular_data.x_test[:3].tolist(),
            "request_id": "req-1",
            "return_probabilities": True,
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["request_id"] == "req-1" and body["model"] == name and body["role"] == "champion"
    assert len(body["classes"]) == 3 and set(body["labels"]) <= {"malignant", "benign"}
    assert all(0.5 <= c <= 1 for c in body["confidences"])
    assert [round(sum(p), 5) for p in body["probabilities"]] == [1.0, 1.0, 1.0]
    docs = client.get("/docs.json").json()["paths"]["/v1/predict"]["post"]  # BentoML's OpenAPI document
    body_schema = docs["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema["required"] == ["instances"] and body_schema["additionalProperties"] is False
    assert docs["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Prediction")


ROW = [1.0] * 30


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (
            '{"instances": [[1, 2, 3]]}',
            "application/json",
            400,
            "input shape (1, 3) does not match the contract (n, 30)",
        ),
        ('{"instances": [["a"]]}', "application/json", 400, "instances"),
        ('{"instances": [[1, 2], [1]]}', "application/json", 400, "rows are not all the same length"),
        (
            '{"instances": [[' + ", ".join(["1", "NaN"] + ["1"] * 28) + "]]}",
            "application/json",
            400,
            "instances.0.1: Input should be a finite number",
        ),
        (
            '{"instances": [[' + ", ".join(["Infinity"] + ["1"] * 29) + "]]}",
            "application/json",
            400,
            "instances.0.0: Input should be a finite number",
        ),
        (  # finite, but beyond float32: the model would see infinity
            '{"instances": [[' + ", ".join(["1e39"] + ["1"] * 29) + "]]}",
            "application/json",
            400,
            "instances.0.0: Input should be less than or equal to 3402823466",
        ),
        ('{"instances": ' + str([ROW] * 9) + "}", "application/json", 400, "9 rows; the maximum is 8"),
        ('{"instances": []}', "application/json", 400, "at least 1 item"),
        ("{}", "application/json", 400, "instances"),
        ('{"instances": [[1]], "temperature": 2}', "application/json", 400, "Extra inputs are not permitted"),
        ("{bad json", "application/json", 400, "Invalid JSON"),
        ('{"instances": [[1]], "request_id": "a b"}', "application/json", 400, "request_id"),
        ("\x80\x04\x95 pickle", "application/octet-stream", 415, "application/octet-stream is not accepted"),
        ("\x80\x04\x95 pickle", "application/python-pickle", 415, "not accepted"),
        ('{"instances": ' + str([ROW] * 3000) + "}", "application/json", 413, "exceeds the limit"),
    ],
)
def test_bad_input_gets_a_4xx_that_names_the_problem(
    served: tuple[TestClient, MlflowModelRegistry, str, Path],
    body: str,
    content_type: str,
    status: int,
    message: str,
) -> None:
    client = served[0]
    response = client.post("/v1/predict", content=body.encode(), headers={"content-type": content_type})
    assert response.status_code == status, response.text
    assert message in response.text
    healthy = client.post("/v1/predict", json={"instances": [ROW]})
    assert healthy.status_code == 200  # the service stays up


def test_every_prediction_is_logged(
    served: tuple[TestClient, MlflowModelRegistry, str, Path], tabular_data: DataSplits
) -> None:
    client, _, name, state = served
    ids = [f"log-{uuid.uuid4().hex[:8]}" for _ in range(5)]
    for rid in ids:
        assert (
            client.post(
                "/v1/predict", json={"instances": tabular_data.x_test[:1].tolist(), "request_id": rid}
            ).status_code
            == 200
        )
    engine = create_db_engine(f"sqlite:///{state / 'lifecycle.db'}")
    deadline = time.monotonic() + 10
    rows: list[PredictionRow] = []
    while time.monotonic() < deadline:
        with session_factory(engine)() as session:
            rows = list(session.scalars(select(PredictionRow).where(PredictionRow.request_id.in_(ids))))
        if len(rows) == len(ids):
            break
        time.sleep(0.2)
    assert sorted(r.request_id for r in rows) == sorted(ids)
    row = rows[0]
    assert row.model_name == name and row.role == "champion" and row.error is None
    assert row.features == pytest.approx(tabular_data.x_test[0].tolist(), rel=1e-6)
    assert 0.5 <= (row.confidence or 0) <= 1 and row.latency_ms > 0
    status = client.get("/admin/status").json()
    assert status["prediction_log"]["rejected_overload"] == 0
    with session_factory(engine)() as session:
        assert (
            session.scalar(select(func.count()).select_from(PredictionRow))
            == status["prediction_log"]["written"]
        )
    engine.dispose()


def test_alias_move_is_served_within_five_seconds(
    served: tuple[TestClient, MlflowModelRegistry, str, Path], tabular_package: ModelPackage
) -> None:
    client, registry, name, _ = served
    new = registry.register(replace(tabular_package, name=name))
    registry.set_alias(name, "champion", new.version, actor="test")
    moved = time.monotonic()
    while time.monotonic() - moved < 5:
        response = client.post("/v1/predict", json={"instances": [ROW]})
        assert response.status_code == 200
        if response.json()["version"] == new.version:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the new champion was not served within 5 s")
    status = client.get("/admin/status").json()
    assert status["version"] == new.version and status["registry"] == "ok"


def test_batched_array_api_validates_each_request_before_batching(
    served: tuple[TestClient, MlflowModelRegistry, str, Path], tabular_data: DataSplits
) -> None:
    client = served[0]
    response = client.post("/v1/predict_array", json={"x": tabular_data.x_test[:4].tolist()})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    probs = response.json()
    assert len(probs) == 4 and all(abs(sum(p) - 1) < 1e-5 for p in probs)
    for bad, message in (
        ([[1.0, 2.0]], "does not match the contract (n, 30)"),
        ([[float("nan")] * 30], "NaN"),
    ):
        rejected = client.post(
            "/v1/predict_array", content=_json({"x": bad}), headers={"content-type": "application/json"}
        )
        assert rejected.status_code == 400 and message in rejected.text
    assert client.post("/v1/predict_array", json={"x": [ROW]}).status_code == 200


def test_predict_routes_skip_tracing_while_it_samples_nothing(
    served: tuple[TestClient, MlflowModelRegistry, str, Path],
) -> None:
    from bentoml._internal.configuration.containers import BentoMLContainer

    assert not BentoMLContainer.tracing.sample_rate.get()  # BentoML's default: tracing off
    excluded = BentoMLContainer.tracing_excluded_urls.get()  # what the app's middleware was built with
    base = str(served[0].base_url)
    assert excluded.url_disabled(f"{base}/v1/predict") and excluded.url_disabled(f"{base}/v1/predict_array")
    assert not excluded.url_disabled(f"{base}/v1/feedback")


def _json(body: object) -> bytes:
    import json

    return json.dumps(body).encode()  # allows NaN, as clients written in Python send it


def test_feedback_attaches_a_true_label_to_a_served_request(
    served: tuple[TestClient, MlflowModelRegistry, str, Path], tabular_data: DataSplits
) -> None:
    import time

    from lifecycle.db import create_db_engine, session_factory
    from lifecycle.db.feedback import FeedbackStore

    client, _, name, state = served
    rows = tabular_data.x_test[:2].tolist()
    for i, row in enumerate(rows):
        r = client.post("/v1/predict", json={"instances": [row], "request_id": f"fb-{i}"})
        assert r.status_code == 200, r.text
    names = tabular_data.class_names
    ack = client.post(
        "/v1/feedback", json={"request_id": "fb-0", "label": names[1]}, headers={"x-actor": "qa"}
    )
    assert ack.status_code == 200 and ack.json() == {"request_id": "fb-0", "model": name, "label": names[1]}
    assert client.post("/v1/feedback", json={"request_id": "fb-1", "label": 0}).status_code == 200
    assert (
        client.post("/v1/feedback", json={"request_id": "fb-1", "label": 1}).status_code == 200
    )  # corrected
    unknown = client.post("/v1/feedback", json={"request_id": "fb-0", "label": "cat"})
    assert unknown.status_code == 400 and "unknown label 'cat'" in unknown.text and names[0] in unknown.text
    assert client.post("/v1/feedback", json={"request_id": "fb-0", "label": 7}).status_code == 400
    assert client.post("/v1/feedback", json={"request_id": "fb-0", "label": 1, "x": 1}).status_code == 400
    assert client.post("/v1/feedback", json={"request_id": "bad id!", "label": 1}).status_code == 400

    engine = create_db_engine(f"sqlite:///{state / 'lifecycle.db'}")
    store = FeedbackStore(session_factory(engine))
    deadline = time.monotonic() + 10
    labeled = store.labeled(name)
    while len(labeled.request_ids) < 2 and time.monotonic() < deadline:  # the prediction log is asynchronous
        time.sleep(0.2)
        labeled = store.labeled(name)
    engine.dispose()
    by_id = dict(zip(labeled.request_ids, labeled.y.tolist(), strict=True))
    assert by_id == {"fb-0": 1, "fb-1": 1}
    assert labeled.x.shape == (2, tabular_data.x_test.shape[1])


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(
    served: tuple[TestClient, MlflowModelRegistry, str, Path], tabular_data: DataSplits
) -> None:
    """Requests that arrive together run as one model call (adaptive batching); a bad request in
    such a batch fails alone with its 400, and every good one gets exactly its single-request answer."""
    from concurrent.futures import ThreadPoolExecutor

    client = served[0]
    rows = tabular_data.x_test[:40].tolist()
    alone = [client.post("/v1/predict", json={"instances": [row]}).json() for row in rows]
    before = client.get("/admin/status").json()["batching"]

    def call(i: int) -> tuple[int, dict[str, object]]:
        instances = [[1.0, 2.0]] if i % 10 == 3 else [rows[i % 40]]
        response = client.post("/v1/predict", json={"instances": instances, "request_id": f"b-{i}"})
        return response.status_code, response.json()

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, range(400)))
    for i, (status, body) in enumerate(results):
        if i % 10 == 3:
            assert status == 400 and "does not match the contract" in str(body), body
        else:
            assert status == 200, body
            assert body["request_id"] == f"b-{i}"
            assert body["classes"] == alone[i % 40]["classes"]
            assert body["confidences"] == pytest.approx(alone[i % 40]["confidences"], rel=1e-5)
    after = client.get("/admin/status").json()["batching"]
    assert after["items"] - before["items"] == 400
    assert after["batches"] - before["batches"] < 400 and after["largest"] > 1  # some ran together
