"""The Open Inference Protocol V2 routes, mounted into the BentoML service under ``/v2``: server and
model metadata, health and readiness, and inference with JSON or binary tensors (``serving.oip``
translates). Every model the host serves (``serving.host``) answers under its registered name; its
champion version is the one that answers, also under ``/v2/models/{name}/versions/{version}``; a
model not loaded yet loads on its first call. Every answered request is kept
in the prediction log (a classifier's class and confidence per item). Errors are
``{"error": "..."}``: 400 for a request the protocol or the contract does not allow, 404 for an
unknown model or version, 413 for too many elements, 503 while the model cannot be loaded.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from lifecycle import __version__
from lifecycle.tensors import batch_size
from serving.host import HostedModel, NotServedError
from serving.inference import InferRequest
from serving.oip import ProtocolError, encode_infer_response, error_body, model_metadata, parse_infer
from serving.predict_route import ACTIVE
from serving.prediction_log import LogOverloadedError
from serving.runtime import ServingRuntime
from serving.slot import ModelNotReadyError, Served

log = logging.getLogger(__name__)

api = FastAPI(title="lifecycle Open Inference Protocol", openapi_url=None, docs_url=None, redoc_url=None)


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": 'The request breaks the protocol or the model\'s contract: {"error": "..."}'},
    404: {"description": 'No such model or version: {"error": "..."}'},
    503: {"description": 'The model cannot be loaded (the reason): {"error": "..."}'},
}


def _error(status: int, message: str) -> Response:
    return Response(error_body(message), status_code=status, media_type="application/json")


@dataclass
class _Use:
    """A loaded model acquired for one request (released when the request is answered)."""

    runtime: ServingRuntime
    hosted: HostedModel
    served: Served


async def _acquire(name: str, version: str | None) -> _Use | Response:
    """The model's champion, loaded (lazily, off the event loop) and counted in flight, or the error."""
    runtime = ACTIVE.get("runtime")
    if runtime is None:
        return _error(HTTPStatus.SERVICE_UNAVAILABLE, "the service is starting: no runtime yet")
    host = runtime.host
    try:
        hosted = host.acquire(name, load=False) or await run_in_threadpool(host.acquire, name)
        assert hosted is not None
    except NotServedError as exc:
        return _error(HTTPStatus.NOT_FOUND, str(exc))
    except ModelNotReadyError as exc:
        return _error(HTTPStatus.SERVICE_UNAVAILABLE, str(exc))
    try:
        served = hosted.slot.current()
    except ModelNotReadyError as exc:
        host.release(hosted)
        return _error(HTTPStatus.SERVICE_UNAVAILABLE, str(exc))
    if version is not None and version != served.version:
        host.release(hosted)
        return _error(
            HTTPStatus.NOT_FOUND,
            f"model {name!r} version {version!r} is not served; version {served.version} is",
        )
    return _Use(runtime, hosted, served)


@api.get("")
@api.get("/")
async def server_metadata() -> JSONResponse:
    """Server metadata: name, version and the protocol extensions (``binary_tensor_data``)."""
    return JSONResponse({"name": "lifecycle", "version": __version__, "extensions": ["binary_tensor_data"]})


class Live(BaseModel):
    live: bool


class Ready(BaseModel):
    ready: bool


@api.get("/health/live", response_model=Live)
async def live() -> JSONResponse:
    """200 ``{"live": true}`` while the process runs (the status code is the answer, as the protocol says)."""
    return JSONResponse({"live": True})


@api.get("/health/ready", response_model=Ready, responses={503: ERRORS[503]})
async def ready() -> JSONResponse | Response:
    """200 ``{"ready": true}`` once the default model is loaded; 503 before."""
    runtime = ACTIVE.get("runtime")
    if runtime is None or not runtime.host.ready:
        return _error(HTTPStatus.SERVICE_UNAVAILABLE, "the default model is not loaded yet")
    return JSONResponse({"ready": True})


@api.get("/models/{name}", responses=ERRORS)
@api.get("/models/{name}/versions/{version}", responses=ERRORS)
async def metadata(name: str, version: str | None = None) -> Response:
    """The model's named inputs and outputs: datatypes, and shapes with -1 for dynamic sizes."""
    use = await _acquire(name, version)
    if isinstance(use, Response):
        return use
    use.runtime.host.release(use.hosted)
    return JSONResponse(model_metadata(name, [use.served.version], use.served.contract))


@api.get("/models/{name}/ready", responses=ERRORS)
@api.get("/models/{name}/versions/{version}/ready", responses=ERRORS)
async def model_ready(name: str, version: str | None = None) -> Response:
    """200 when the model (and version) is loaded and answers (a model not loaded yet loads now)."""
    use = await _acquire(name, version)
    if isinstance(use, Response):
        return use
    use.runtime.host.release(use.hosted)
    return Response(status_code=HTTPStatus.OK)


INFER = {
    **ERRORS,
    413: {
        "description": 'Over the model\'s tensor element limit (LIFECYCLE_SERVING_MAX_TENSOR_ELEMENTS, or its lifecycle.serving.max_tensor_elements tag): {"error": "..."}'
    },
}


@api.post("/models/{name}/infer", responses=INFER)
@api.post("/models/{name}/versions/{version}/infer", responses=INFER)
async def infer(name: str, request: Request, version: str | None = None) -> Response:
    """Inference: named tensors as JSON, or a JSON header (``Inference-Header-Content-Length``)
    followed by binary tensors; answers the requested outputs, as JSON or binary."""
    use = await _acquire(name, version)
    if isinstance(use, Response):
        return use
    try:
        return await _infer(use, request)
    finally:
        use.runtime.host.release(use.hosted)


async def _infer(use: _Use, request: Request) -> Response:
    runtime, served = use.runtime, use.served
    try:
        parsed = parse_infer(
            await request.body(), request.headers.get("inference-header-content-length"), served.contract,
            max_elements=use.hosted.limits.max_tensor_elements,
        )  # fmt: skip
    except ProtocolError as exc:
        return _error(exc.status, str(exc))
    router = use.hosted.router  # the routing key matters only while a rollout routes traffic
    key = request.headers.get(runtime.serving.request_key_header) if router.challenger else None
    job = InferRequest(parsed.inputs, parsed.id or os.urandom(16).hex(), key)
    try:
        answered, outputs = await use.hosted.tensor_batcher.submit(job, rows=batch_size(parsed.inputs))
    except (ModelNotReadyError, LogOverloadedError) as exc:
        return _error(HTTPStatus.SERVICE_UNAVAILABLE, str(exc))
    except Exception:
        log.exception("inference of %s v%s failed", served.name, served.version)
        return _error(
            HTTPStatus.INTERNAL_SERVER_ERROR,
            "the model failed on this request; the server log has the details",
        )
    body, headers = encode_infer_response(served.name, answered.version, parsed, outputs)
    return Response(body, headers=headers)


class ServerMetadataPath:
    """ASGI middleware: ``GET /v2`` (the protocol's server metadata) reaches the mounted ``/v2``
    app as ``/v2/``, instead of the mount's redirect, which clients do not follow."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/v2":
            scope = {**scope, "path": "/v2/", "raw_path": b"/v2/"}
        await self.app(scope, receive, send)
