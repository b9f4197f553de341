"""A bare BentoML service on the same ONNX file and runner settings as ours, minus routing, contract
checks, metrics and the prediction log: the baseline for what those cost. ``BARE_MODEL_PATH`` names
the ONNX file."""

from __future__ import annotations

import os
from pathlib import Path

import bentoml
from pydantic import BaseModel

from lifecycle.runtimes.onnxruntime import OrtRunner


class Request(BaseModel):
    instances: list[list[float]]


@bentoml.service(name="bare", workers=1, traffic={"timeout": 30, "max_concurrency": 256})
class Bare:
    def __init__(self) -> None:
        self.runner = OrtRunner(Path(os.environ["BARE_MODEL_PATH"]))

    @bentoml.api(route="/v1/predict")
    def predict(self, request: Request, /) -> dict[str, list[int]]:
        import numpy as np

        logits = self.runner.run(np.asarray(request.instances, dtype=np.float32))
        return {"classes": logits.argmax(axis=1).tolist()}
