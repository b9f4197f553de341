"""The control plane's HTTP API in-process (a real MLflow server and SQLite database behind it):
its OpenAPI document, and 4xx answers naming the problem for every kind of bad request."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from control.app import create_app
from control.compose import build_control_plane
from control.services import connect
from control.settings import ControlSettings
from lifecycle.settings import Settings
from registry.webhooks import sign
from rollout.policy import RolloutPolicy


@pytest.fixture
def client(env: str) -> Iterator[tuple[TestClient, str]]:
    services = connect(Settings())
    plane = build_control_plane(services, ControlSettings(webhooks=False), RolloutPolicy())
    try:
        with TestClient(create_app(plane)) as test_client:
            yield test_client, plane.admin_token
    finally:
        services.close()


def test_the_openapi_document_names_every_route_and_its_error_answers(client: tuple[TestClient, str]) -> None:
    http, _ = client
    document = http.get("/openapi.json").json()
    assert {
        "/status",
        "/rollouts/{model}",
        "/rollouts/{model}/start",
        "/webhooks/mlflow",
        "/monitor/run-now",
    } <= set(document["paths"])
    start = document["paths"]["/rollouts/{model}/start"]["post"]
    assert {"400", "401", "403", "404", "409", "503"} <= set(start["responses"])
    assert "422" not in start["responses"]  # schema mismatches are 400 {"error": ...} here
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert http.get("/docs").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "auth", "status", "words"),
    [
        ("GET", "/rollouts/no-such-model", None, False, 404, "has no rollout"),
        ("GET", "/rollouts/m?verdicts=abc", None, False, 400, "verdicts"),
        ("GET", "/rollouts/m?verdicts=-1", None, False, 400, "verdicts"),
        ("POST", "/rollouts/m/pause", None, False, 401, "Bearer"),
        ("POST", "/rollouts/m/pause", None, "wrong", 403, "wrong admin token"),
        ("POST", "/rollouts/m/start", {"version": "one"}, True, 400, "version"),
        ("POST", "/rollouts/m/start", {}, True, 400, "version"),
        ("POST", "/rollouts/m/start", {"version": "2", "extra": 1}, True, 400, "extra"),
        ("POST", "/rollouts/m/explode", None, True, 404, "Not Found"),
        ("POST", "/rollouts/m/pause", None, True, 503, "standby"),  # not the leader: it never started
        ("POST", "/monitor/run-now", {"model": ""}, True, 400, "model"),
        ("POST", "/webhooks/mlflow", {"entity": "x"}, False, 401, "webhook refused"),
    ],
)
def test_bad_requests_get_a_4xx_naming_the_problem(
    client: tuple[TestClient, str],
    method: str,
    path: str,
    body: object,
    auth: bool | str,
    status: int,
    words: str,
) -> None:
    http, token = client
    headers = {"Authorization": f"Bearer {token if auth is True else auth}"} if auth else {}
    answer = http.request(method, path, json=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"]


def test_an_alias_set_in_the_mlflow_ui_enters_the_history_with_mlflows_time(env: str) -> None:
    services = connect(Settings())
    plane = build_control_plane(services, ControlSettings(webhooks=False), RolloutPolicy())
    try:
        with TestClient(create_app(plane)) as http:

            def deliver(body: bytes, sent: float) -> int:
                delivery, ts = uuid.uuid4().hex, str(int(sent))
                headers = {
                    "X-MLflow-Delivery-Id": delivery, "X-MLflow-Timestamp": ts,
                    "X-MLflow-Signature": sign(plane.webhook_secret, delivery, ts, body),
                }  # fmt: skip
                return http.post("/webhooks/mlflow", content=body, headers=headers).status_code

            sent = time.time() - 30
            created = b'{"entity":"model_version_alias","action":"created","data":{"name":"m","alias":"challenger","version":"4"}}'
            assert deliver(created, sent) == 200
            (interval,) = services.history.history("m", "challenger")
            assert (interval.version, interval.set_by, interval.cleared_at) == ("4", "mlflow", None)
            assert (
                abs(interval.set_at.timestamp() - int(sent)) < 1
            )  # when MLflow sent it, not when it arrived
            assert deliver(created, sent + 1) == 200  # the same alias again: nothing new
            assert len(services.history.history("m", "challenger")) == 1
            deleted = b'{"entity":"model_version_alias","action":"deleted","data":{"name":"m","alias":"challenger"}}'
            assert deliver(deleted, sent + 10) == 200
            (interval,) = services.history.history("m", "challenger")
            assert interval.cleared_by == "mlflow" and interval.cleared_at is not None
    finally:
        services.close()
