"""Bare BentoML services on the same ONNX file and runner settings as ours, minus routing, contract
checks, batching, metrics and the prediction log: the baselines for what those cost.
``BARE_MODEL_PATH`` names the ONNX file.

- ``Bare``: BentoML as its documentation writes a service (a sync API, run on BentoML's thread pool;
  access log on).
- ``BareTuned``: the same framework settings as ours (an async API that runs the model on the event
  loop; access log off; no tracing span while tracing samples nothing), so ours minus this is what
  routing, validation, metrics and logging cost.
"""

from __future__ import annotations

import os
from pathlib import Path

import bentoml
import numpy as np
from pydantic import BaseModel

from lifecycle.runtimes.onnxruntime import OrtRunner
from serving.tracing import untraced_when_sampling_off


class Request(BaseModel):
    instances: list[list[float]]


def _runner() -> OrtRunner:
    return OrtRunner(Path(os.environ["BARE_MODEL_PATH"]))


@bentoml.service(name="bare", workers=1, traffic={"timeout": 30, "max_concurrency": 256})
class Bare:
    def __init__(self) -> None:
        self.runner = _runner()

    @bentoml.api(route="/v1/predict")
    def predict(self, request: Request, /) -> dict[str, list[int]]:
        logits = self.runner.run(np.asarray(request.instances, dtype=np.float32))
        return {"classes": logits.argmax(axis=1).tolist()}


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
    async def predict(self, request: Request, /) -> dict[str, list[int]]:
        logits = self.runner.run(np.asarray(request.instances, dtype=np.float32))
        return {"classes": logits.argmax(axis=1).tolist()}
