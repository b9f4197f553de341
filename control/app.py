"""The control plane's HTTP API (Starlette): MLflow webhook receiver, admin API (bearer token),
read-only status. Routes only translate; decisions live in the controller."""

from __future__ import annotations

import hmac
import json
from dataclasses import asdict
from http import HTTPStatus

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from control import metrics
from control.plane import ControlPlane, ReplayError
from lifecycle.errors import LifecycleError, RegistryUnavailableError, UnknownModelError
from monitoring.monitor import DriftCheck
from registry.webhooks import WebhookSignatureError, verify
from rollout.controller import RolloutError, RolloutStatus
from rollout.machine import Rollout

MAX_BODY = 256 * 1024
ACTIONS = ("start", "pause", "resume", "promote", "abort")


def _error(status: HTTPStatus, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def rollout_json(r: Rollout) -> dict[str, object]:
    return {
        "id": r.id,
        "model": r.model,
        "champion": r.champion,
        "challenger": r.challenger,
        "phase": r.phase.value,
        "where": r.describe(),
        "step": r.step,
        "steps": list(r.policy.steps),
        "paused": r.paused,
        "failures": r.failures,
        "threshold": r.policy.threshold,
        "traffic": {"canary": r.canary_weight, "mirror": r.mirror_share},
        "started_at": r.started_at.isoformat(),
        "step_started_at": r.step_started_at.isoformat(),
        "updated_at": r.updated_at.isoformat(),
        "started_by": r.started_by,
        "reason": r.reason,
        "interval_s": r.policy.interval_s,
    }


def status_json(status: RolloutStatus) -> dict[str, object]:
    verdicts = [{**asdict(v), "ts": v.ts.isoformat()} for v in status.verdicts]
    return {"rollout": rollout_json(status.rollout), "verdicts": verdicts}


def check_json(check: DriftCheck) -> dict[str, object]:
    v = check.verdict
    return {
        "id": check.id,
        "ts": check.ts.isoformat(),
        "model": check.model,
        "version": check.version,
        "drift": v.drift,
        "severity": v.severity.value,
        "summary": v.summary(),
        "n_current": v.n_current,
        "n_reference": v.n_reference,
        "detectors": [asdict(d) for d in v.detectors],
        "seconds": check.seconds,
        "mlflow_run_id": check.run_id,
        "checked_by": check.checked_by,
    }


def create_app(plane: ControlPlane) -> Starlette:
    controller = plane.controller

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "leader": plane.is_leader, "owner": plane.owner})

    async def status(request: Request) -> JSONResponse:
        rollouts = await run_in_threadpool(plane.store.history, None, 20)
        return JSONResponse(
            {
                "leader": plane.is_leader,
                "owner": plane.owner,
                "webhook": plane.webhook_status,
                "registry": plane.services.registry.ui_url,
                "rollouts": [rollout_json(r) for r in rollouts],
            }
        )

    async def rollout_status(request: Request) -> JSONResponse:
        model = request.path_params["model"]
        found = await run_in_threadpool(
            controller.status, model, int(request.query_params.get("verdicts", 5))
        )
        if found is None:
            return _error(HTTPStatus.NOT_FOUND, f"model {model!r} has no rollout")
        return JSONResponse(status_json(found))

    async def webhook(request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > MAX_BODY:
            return _error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"webhook body over {MAX_BODY} bytes")
        try:
            delivery = verify(
                plane.webhook_secret, request.headers, body, tolerance_s=plane.control.webhook_tolerance_s
            )
            plane.remember_delivery(delivery)
        except WebhookSignatureError as exc:
            return _error(HTTPStatus.UNAUTHORIZED, f"webhook refused: {exc}")
        except ReplayError as exc:
            return _error(HTTPStatus.FORBIDDEN, f"webhook refused: {exc}")
        try:
            event = json.loads(body)
            entity, action, data = str(event["entity"]), str(event["action"]), dict(event["data"])
        except (ValueError, KeyError, TypeError) as exc:
            return _error(HTTPStatus.BAD_REQUEST, f"not an MLflow webhook event: {exc!r}")
        try:
            done = await run_in_threadpool(plane.on_event, entity, action, data)
        except RegistryUnavailableError as exc:  # MLflow retries deliveries on 5xx
            return _error(HTTPStatus.SERVICE_UNAVAILABLE, str(exc))
        except LifecycleError as exc:
            return _error(HTTPStatus.UNPROCESSABLE_ENTITY, str(exc))
        return JSONResponse({"delivery": delivery, "event": f"{entity}.{action}", "done": done})

    def refused(request: Request) -> JSONResponse | None:
        offered = request.headers.get("authorization", "")
        if not offered.lower().startswith("bearer "):
            return _error(HTTPStatus.UNAUTHORIZED, "admin API needs 'Authorization: Bearer <token>'")
        if not hmac.compare_digest(offered[7:].strip(), plane.admin_token):
            return _error(HTTPStatus.FORBIDDEN, "wrong admin token")
        return None

    async def monitor_status(request: Request) -> JSONResponse:
        checks = await run_in_threadpool(plane.monitor.history, None, 20)
        next_run = plane.scheduler.next_run()
        return JSONResponse(
            {
                "enabled": plane.monitoring.enabled,
                "scheduler_running": plane.scheduler.running,
                "leader": plane.is_leader,
                "interval_s": plane.monitoring.interval_s,
                "next_run": next_run.isoformat() if next_run else None,
                "checks": [check_json(c) for c in checks],
            }
        )

    async def monitor_run_now(request: Request) -> JSONResponse:
        if (refusal := refused(request)) is not None:
            return refusal
        try:
            payload = json.loads(await request.body() or b"{}")
            models = [str(payload["model"])] if payload.get("model") else None
        except (ValueError, TypeError, AttributeError):
            return _error(HTTPStatus.BAD_REQUEST, 'run-now takes an optional JSON body {"model": "<name>"}')
        try:
            names: list[str] = models if models else await run_in_threadpool(plane.monitor.models)
            checks = [await run_in_threadpool(plane.monitor.check, name) for name in names]
        except UnknownModelError as exc:
            return _error(HTTPStatus.NOT_FOUND, str(exc))
        except RegistryUnavailableError as exc:
            return _error(HTTPStatus.SERVICE_UNAVAILABLE, str(exc))
        return JSONResponse({"checks": [check_json(c) for c in checks]})

    async def admin(request: Request) -> JSONResponse:
        if (refusal := refused(request)) is not None:
            return refusal
        model, action = request.path_params["model"], request.path_params["action"]
        if action not in ACTIONS:
            return _error(HTTPStatus.NOT_FOUND, f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
        actor = f"api:{request.headers.get('x-actor', 'admin')}"[:200]
        version = None
        if action == "start":
            try:
                payload = json.loads(await request.body() or b"{}")
                version = str(payload["version"])
            except (ValueError, KeyError, TypeError):
                return _error(HTTPStatus.BAD_REQUEST, 'start needs a JSON body {"version": "<n>"}')
        if not plane.is_leader:
            return _error(HTTPStatus.SERVICE_UNAVAILABLE, "this control plane is a standby; ask the leader")
        calls = {
            "start": lambda: controller.start(model, str(version), actor),
            "pause": lambda: controller.pause(model),
            "resume": lambda: controller.resume(model),
            "promote": lambda: controller.promote(model, actor),
            "abort": lambda: controller.abort(model, actor),
        }
        try:
            rollout = await run_in_threadpool(calls[action])
        except UnknownModelError as exc:
            return _error(HTTPStatus.NOT_FOUND, str(exc))
        except (RolloutError, ValueError) as exc:
            return _error(HTTPStatus.CONFLICT, str(exc))
        except RegistryUnavailableError as exc:
            return _error(HTTPStatus.SERVICE_UNAVAILABLE, str(exc))
        return JSONResponse({"rollout": rollout_json(rollout)})

    async def prometheus(request: Request) -> Response:
        body = await run_in_threadpool(metrics.render, plane.sessions)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/metrics", prometheus),
            Route("/status", status),
            Route("/rollouts/{model}", rollout_status),
            Route("/rollouts/{model}/{action}", admin, methods=["POST"]),
            Route("/webhooks/mlflow", webhook, methods=["POST"]),
            Route("/monitor/status", monitor_status),
            Route("/monitor/run-now", monitor_run_now, methods=["POST"]),
        ]
    )
