"""The control plane's HTTP API (FastAPI; OpenAPI at ``/openapi.json``, docs at ``/docs``): the
MLflow webhook receiver, the admin API (bearer token), read-only status and metrics.

Routes only translate; decisions live in the rollout controller and the monitor. Every error is
``{"error": "..."}`` with a 4xx status naming the problem, or 503 when a dependency is down.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from control import metrics
from control.plane import ControlPlane, ReplayError
from control.schemas import (
    ChecksAnswer,
    DriftCheckAnswer,
    ErrorAnswer,
    Health,
    MonitorStatusAnswer,
    RolloutAnswer,
    RolloutOnly,
    RolloutStatusAnswer,
    RunNowBody,
    StartBody,
    StatusAnswer,
    WebhookAnswer,
)
from lifecycle.errors import LifecycleError, RegistryUnavailableError, UnknownModelError
from registry.webhooks import TIMESTAMP_HEADER, WebhookSignatureError, verify
from rollout.controller import RolloutError
from rollout.machine import Rollout

MAX_BODY = 256 * 1024
ModelName = Annotated[str, "the registered model's name"]
BEARER = HTTPBearer(auto_error=False, description="The admin token (`<state>/control-token`).")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]


def _errors(*codes: HTTPStatus) -> dict[int | str, dict[str, Any]]:
    return {int(c): {"model": ErrorAnswer, "description": c.phrase} for c in codes}


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def create_app(plane: ControlPlane) -> FastAPI:
    app = FastAPI(
        title="lifecycle control plane",
        summary="Rollouts, the MLflow webhook receiver, the drift monitor's status; admin calls need the bearer token.",
        version="1",
        responses=_errors(HTTPStatus.BAD_REQUEST),
    )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _validation_message(exc)}, status_code=HTTPStatus.BAD_REQUEST)

    def admin(credentials: Credentials) -> None:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HTTPException(HTTPStatus.UNAUTHORIZED, "admin API needs 'Authorization: Bearer <token>'")
        if not hmac.compare_digest(credentials.credentials.strip(), plane.admin_token):
            raise HTTPException(HTTPStatus.FORBIDDEN, "wrong admin token")

    admin_errors = _errors(HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN, HTTPStatus.SERVICE_UNAVAILABLE)

    @app.get("/healthz", response_model=Health, tags=["status"])
    async def healthz() -> Health:
        """Liveness, and whether this replica is the leader."""
        return Health(ok=True, leader=plane.is_leader, owner=plane.owner)

    @app.get("/metrics", response_class=Response, tags=["status"],
             responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format."}})  # fmt: skip
    async def prometheus() -> Response:
        """Prometheus series of rollouts, drift checks, alerts and retrain jobs."""
        body = await run_in_threadpool(metrics.render, plane.sessions)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/status", response_model=StatusAnswer, tags=["status"])
    async def status() -> StatusAnswer:
        """The leader, the MLflow webhook, and the latest rollouts."""
        rollouts = await run_in_threadpool(plane.store.history, None, 20)
        return StatusAnswer(
            leader=plane.is_leader, owner=plane.owner, webhook=plane.webhook_status,
            registry=plane.services.registry.ui_url, rollouts=[RolloutAnswer.of(r) for r in rollouts],
        )  # fmt: skip

    @app.get("/rollouts/{model}", response_model=RolloutStatusAnswer, tags=["rollouts"],
             responses=_errors(HTTPStatus.NOT_FOUND))  # fmt: skip
    async def rollout_status(
        model: ModelName,
        verdicts: Annotated[int, Query(ge=0, le=1000, description="How many of the latest verdicts.")] = 5,
    ) -> RolloutStatusAnswer:
        """The model's latest rollout and its latest analysis verdicts."""
        found = await run_in_threadpool(plane.controller.status, model, verdicts)
        if found is None:
            raise HTTPException(HTTPStatus.NOT_FOUND, f"model {model!r} has no rollout")
        return RolloutStatusAnswer.of(found)

    async def act(call: Callable[[], Rollout]) -> RolloutOnly:
        if not plane.is_leader:
            raise HTTPException(
                HTTPStatus.SERVICE_UNAVAILABLE, "this control plane is a standby; ask the leader"
            )
        try:
            rollout = await run_in_threadpool(call)
        except UnknownModelError as exc:
            raise HTTPException(HTTPStatus.NOT_FOUND, str(exc)) from exc
        except (RolloutError, ValueError) as exc:
            raise HTTPException(HTTPStatus.CONFLICT, str(exc)) from exc
        except RegistryUnavailableError as exc:
            raise HTTPException(HTTPStatus.SERVICE_UNAVAILABLE, str(exc)) from exc
        return RolloutOnly(rollout=RolloutAnswer.of(rollout))

    action_errors = {**admin_errors, **_errors(HTTPStatus.NOT_FOUND, HTTPStatus.CONFLICT)}

    def actor(request: Request) -> str:
        return f"api:{request.headers.get('x-actor', 'admin')}"[:200]

    @app.post("/rollouts/{model}/start", response_model=RolloutOnly, tags=["rollouts"],
              dependencies=[Depends(admin)], responses=action_errors)  # fmt: skip
    async def start(model: ModelName, body: StartBody, request: Request) -> RolloutOnly:
        """Roll out ``version`` (it becomes alias ``challenger``)."""
        return await act(lambda: plane.controller.start(model, body.version, actor(request)))

    @app.post("/rollouts/{model}/pause", response_model=RolloutOnly, tags=["rollouts"],
              dependencies=[Depends(admin)], responses=action_errors)  # fmt: skip
    async def pause(model: ModelName) -> RolloutOnly:
        """Hold the rollout at its current step (analyses stop)."""
        return await act(lambda: plane.controller.pause(model))

    @app.post("/rollouts/{model}/resume", response_model=RolloutOnly, tags=["rollouts"],
              dependencies=[Depends(admin)], responses=action_errors)  # fmt: skip
    async def resume(model: ModelName) -> RolloutOnly:
        """Continue a paused rollout."""
        return await act(lambda: plane.controller.resume(model))

    @app.post("/rollouts/{model}/promote", response_model=RolloutOnly, tags=["rollouts"],
              dependencies=[Depends(admin)], responses=action_errors)  # fmt: skip
    async def promote(model: ModelName, request: Request) -> RolloutOnly:
        """Promote the challenger now (alias ``champion``)."""
        return await act(lambda: plane.controller.promote(model, actor(request)))

    @app.post("/rollouts/{model}/abort", response_model=RolloutOnly, tags=["rollouts"],
              dependencies=[Depends(admin)], responses=action_errors)  # fmt: skip
    async def abort(model: ModelName, request: Request) -> RolloutOnly:
        """Roll back: the champion answers everything, alias ``challenger`` is removed."""
        return await act(lambda: plane.controller.abort(model, actor(request)))

    @app.post(
        "/webhooks/mlflow", response_model=WebhookAnswer, tags=["webhooks"],
        responses=_errors(HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN, HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                          HTTPStatus.UNPROCESSABLE_ENTITY, HTTPStatus.SERVICE_UNAVAILABLE),
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["entity", "action", "data"],
            "properties": {"entity": {"type": "string"}, "action": {"type": "string"}, "data": {"type": "object"}},
        }}}}},
    )  # fmt: skip
    async def webhook(request: Request) -> WebhookAnswer:
        """An MLflow webhook delivery, verified by its HMAC signature (``X-MLflow-Signature``),
        timestamp and delivery id (each accepted once)."""
        body = await request.body()
        if len(body) > MAX_BODY:
            raise HTTPException(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"webhook body over {MAX_BODY} bytes")
        try:
            delivery = verify(
                plane.webhook_secret, request.headers, body, tolerance_s=plane.control.webhook_tolerance_s
            )
            plane.remember_delivery(delivery)
        except WebhookSignatureError as exc:
            raise HTTPException(HTTPStatus.UNAUTHORIZED, f"webhook refused: {exc}") from exc
        except ReplayError as exc:
            raise HTTPException(HTTPStatus.FORBIDDEN, f"webhook refused: {exc}") from exc
        try:
            event = json.loads(body)
            entity, action, data = str(event["entity"]), str(event["action"]), dict(event["data"])
        except (ValueError, KeyError, TypeError) as exc:
            raise HTTPException(HTTPStatus.BAD_REQUEST, f"not an MLflow webhook event: {exc!r}") from exc
        sent_at = datetime.fromtimestamp(float(request.headers[TIMESTAMP_HEADER]), UTC)  # verified above
        try:
            done = await run_in_threadpool(plane.on_event, entity, action, data, sent_at)
        except RegistryUnavailableError as exc:  # MLflow retries deliveries on 5xx
            raise HTTPException(HTTPStatus.SERVICE_UNAVAILABLE, str(exc)) from exc
        except LifecycleError as exc:
            raise HTTPException(HTTPStatus.UNPROCESSABLE_ENTITY, str(exc)) from exc
        return WebhookAnswer(delivery=delivery, event=f"{entity}.{action}", done=done)

    @app.get("/monitor/status", response_model=MonitorStatusAnswer, tags=["monitoring"])
    async def monitor_status() -> MonitorStatusAnswer:
        """The drift monitor's schedule and its latest checks."""
        checks = await run_in_threadpool(plane.monitor.history, None, 20)
        next_run = plane.scheduler.next_run()
        return MonitorStatusAnswer(
            enabled=plane.monitoring.enabled, scheduler_running=plane.scheduler.running, leader=plane.is_leader,
            interval_s=plane.monitoring.interval_s, next_run=next_run.isoformat() if next_run else None,
            checks=[DriftCheckAnswer.of(c) for c in checks],
        )  # fmt: skip

    @app.post("/monitor/run-now", response_model=ChecksAnswer, tags=["monitoring"],
              dependencies=[Depends(admin)], responses={**admin_errors, **_errors(HTTPStatus.NOT_FOUND)})  # fmt: skip
    async def monitor_run_now(body: RunNowBody | None = None) -> ChecksAnswer:
        """Run a drift check now (of one model, or of every monitored one), stored and alerted as
        the schedule would."""
        try:
            names = [body.model] if body and body.model else await run_in_threadpool(plane.monitor.models)
            checks = [await run_in_threadpool(plane.monitor.check, name) for name in names]
        except UnknownModelError as exc:
            raise HTTPException(HTTPStatus.NOT_FOUND, str(exc)) from exc
        except RegistryUnavailableError as exc:
            raise HTTPException(HTTPStatus.SERVICE_UNAVAILABLE, str(exc)) from exc
        return ChecksAnswer(checks=[DriftCheckAnswer.of(c) for c in checks])

    def openapi() -> dict[str, Any]:
        """FastAPI's document, with its default 422 answer replaced: a request that does not match
        the documented schema gets 400 ``{"error": ...}`` here."""
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            for operation in (op for methods in document["paths"].values() for op in methods.values()):
                default = operation.get("responses", {}).get("422", {})
                if "HTTPValidationError" in json.dumps(default):
                    del operation["responses"]["422"]
            for name in ("HTTPValidationError", "ValidationError"):
                document.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
