"""The mounted predict route's error paths, against a stand-in runtime (pure request handling; the
route against a real model and registry is tested in tests/integration/test_serving_inprocess.py)."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from serving import predict_route
from serving.metrics import ServingMetrics
from serving.slot import ModelNotReadyError


class FailingBatcher:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def submit(self, job: object, rows: int) -> object:
        raise self.error


@pytest.fixture
def route() -> Iterator[tuple[TestClient, ServingMetrics, dict[str, object]]]:
    metrics = ServingMetrics.create(CollectorRegistry())
    hosted = SimpleNamespace(
        router=SimpleNamespace(challenger=None),
        slot=SimpleNamespace(status=SimpleNamespace(model="m", version="3")),
        batcher=FailingBatcher(RuntimeError("kernel exploded")),
    )
    runtime = SimpleNamespace(
        serving=SimpleNamespace(request_key_header="X-Request-Key"),
        metrics=metrics,
        default=hosted,
        host=SimpleNamespace(default="m", get=lambda name: hosted),
    )
    predict_route.ACTIVE["runtime"] = runtime  # type: ignore[assignment]
    try:
        yield TestClient(predict_route.api), metrics, hosted.__dict__
    finally:
        predict_route.ACTIVE.pop("runtime", None)


def _count(metrics: ServingMetrics, status: str) -> float:
    metrics.flush()  # outcomes are queued for the flusher thread
    return metrics.requests.labels("m", "3", "champion", status)._value.get()


def test_a_model_failure_is_a_500_that_says_so_and_is_counted(
    route: tuple[TestClient, ServingMetrics, dict[str, object]],
) -> None:
    client, metrics, _ = route
    response = client.post("/predict", json={"instances": [[1.0]]})
    assert response.status_code == 500
    assert "the model failed on this request" in response.json()["error"]
    assert "kernel exploded" not in response.text  # details go to the server log, not the client
    assert _count(metrics, "500") == 1


def test_no_model_is_a_503_and_an_invalid_body_a_400_naming_the_field(
    route: tuple[TestClient, ServingMetrics, dict[str, object]],
) -> None:
    client, metrics, runtime = route
    runtime["batcher"] = FailingBatcher(ModelNotReadyError("no version of 'm' loaded yet"))
    response = client.post("/predict", json={"instances": [[1.0]]})
    assert response.status_code == 503 and "no version of 'm' loaded yet" in response.json()["error"]
    bad = client.post("/predict", json={"instances": [[1.0]], "request_id": "a b"})
    assert bad.status_code == 400 and bad.json()["error"].startswith("invalid request body: request_id:")
    assert bad.json()["detail"][0]["loc"] == ["request_id"]
    assert (_count(metrics, "503"), _count(metrics, "400")) == (1, 1)


def test_before_the_service_instance_exists_the_route_answers_503() -> None:
    predict_route.ACTIVE.pop("runtime", None)
    response = TestClient(predict_route.api).post("/predict", json={"instances": [[1.0]]})
    assert response.status_code == 503 and "starting" in response.json()["error"]
