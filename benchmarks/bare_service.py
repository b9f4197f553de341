"""Bare BentoML services on the same ONNX file and runner settings as ours, minus routing, contract
checks, batching, metrics and the prediction log: the baselines for what those cost.
``BARE_MODEL_PATH`` names the ONNX file.

- ``Bare``: BentoML as its documentation writes a service (a sync ``@bentoml.api``, run on BentoML's
  thread pool; access log on).
- ``BareTuned``: an async ``@bentoml.api`` that runs the model on the event loop, access log off, no
  tracing span while tracing samples nothing.
- ``BareRoute``: the same framework path as our ``/v1/predict`` (a FastAPI route mounted into the
  BentoML service, the body parsed by pydantic in one pass, the settings of ``BareTuned``), so ours
  minus this is what routing, validation, batching, metrics and logging cost.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import bentoml
import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel

from lifecycle.runtimes.onnxruntime import OrtRunner
from serving.tracing import untraced_when_sampling_off


class PredictBody(BaseModel):
    instances: list[list[float]]


def _runner() -> OrtRunner:
    return OrtRunner(Path(os.environ["BARE_MODEL_PATH"]))


def _classes(runner: OrtRunner, instances: list[list[float]]) -> dict[str, list[int]]:
    return {"classes": runner.run(np.asarray(instances, dtype=np.float32)).argmax(axis=1).tolist()}


@bentoml.service(name="bare", workers=1, traffic={"timeout": 30, "max_concurrency": 256})
class Bare:
    def __init__(self) -> None:
        self.runner = _runner()

    @bentoml.api(route="/v1/predict")
    def predict(self, request: PredictBody, /) -> dict[str, list[int]]:
        return _classes(self.runner, request.instances)


@bentoml.service(
    name="bare-tuned",
    workers=1,
    traffic={"timeout": 30, "max_concurrency": 256},
    logging={"access": {"enabled": False}},
    tracing=untraced_when_sampling_off(("/v1/predict",)),
)
class BareTuned:
    def __init__(self) -> None:
        self.runner = _runner()

    @bentoml.api(route="/v1/predict")
    async def predict(self, request: PredictBody, /) -> dict[str, list[int]]:
        return _classes(self.runner, request.instances)


route = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
_RUNNER: dict[str, OrtRunner] = {}


@route.post("/predict")
async def predict_route(request: Request) -> Response:
    body = PredictBody.model_validate_json(await request.body())
    return Response(json.dumps(_classes(_RUNNER["runner"], body.instances)), media_type="application/json")


@bentoml.service(
    name="bare-route",
    workers=1,
    traffic={"timeout": 30, "max_concurrency": 256},
    logging={"access": {"enabled": False}},
    tracing=untraced_when_sampling_off(("/v1/predict",)),
)
@bentoml.asgi_app(route, path="/v1")
class BareRoute:
    def __init__(self) -> None:
        _RUNNER["runner"] = _runner()
