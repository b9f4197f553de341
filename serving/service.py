"""The BentoML service: ``bentoml serve serving.service:Classifier``.

The only module that imports ``bentoml``. Settings come from ``LIFECYCLE_*`` environment variables
when the worker builds the service instance (never at import).
"""

from __future__ import annotations

import bentoml
from bentoml.exceptions import InvalidArgument, ServiceUnavailable
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from lifecycle.contract import ContractViolationError
from lifecycle.settings import Settings
from serving.guard import RequestGuard
from serving.prediction_log import LogOverloadedError
from serving.runtime import ServingRuntime
from serving.settings import ServingSettings
from serving.slot import ModelNotReadyError


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instances: list[list[float]] = Field(min_length=1, description="Rows of features, [n, n_features].")
    request_id: str | None = Field(default=None, max_length=64, pattern=r"^[\w\-.:]+$")
    return_probabilities: bool = False


class PredictResponse(BaseModel):
    request_id: str
    model: str
    version: str
    role: str
    classes: list[int]
    labels: list[str]
    confidences: list[float]
    probabilities: list[list[float]] | None = None


admin = FastAPI(title="lifecycle serving admin")


@bentoml.service(
    name="lifecycle-classifier",
    workers=1,
    traffic={"timeout": 30, "max_concurrency": 256},
    metrics={"enabled": True},
)
@bentoml.asgi_app(admin, path="/admin")
class Classifier:
    def __init__(self) -> None:
        self.runtime = ServingRuntime.from_settings(Settings(), ServingSettings())

    @bentoml.api(route="/v1/predict")
    def predict(self, request: PredictRequest, /) -> PredictResponse:
        """Classify rows; answers with class, label, confidence, and the model version that answered."""
        try:
            result = self.runtime.predictor.predict(
                request.instances,
                request_id=request.request_id,
                return_probabilities=request.return_probabilities,
            )
        except ContractViolationError as exc:
            raise InvalidArgument(str(exc)) from exc
        except (ModelNotReadyError, LogOverloadedError) as exc:
            raise ServiceUnavailable(str(exc)) from exc
        return PredictResponse(**result.__dict__)

    def __is_ready__(self) -> bool:
        """``/readyz`` answers 200 only once a model version is loaded."""
        return self.runtime.slot.ready

    @admin.get("/status")
    def status(self) -> dict[str, object]:
        """Readiness details: version served, registry reachability, swap history, log counters."""
        return self.runtime.status()

    @bentoml.on_shutdown
    def shutdown(self) -> None:
        self.runtime.close()


Classifier.add_asgi_middleware(RequestGuard)  # type: ignore[attr-defined]
