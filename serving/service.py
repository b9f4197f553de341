"""The BentoML service: ``bentoml serve serving.service:Classifier``.

The only module that defines a BentoML service (``serving.tracing`` reads BentoML's configuration).
Settings come from ``LIFECYCLE_*`` environment variables when the worker builds the service
instance (never at import). ``POST /v1/predict`` is a lean route mounted into it
(``serving.predict_route``); feedback and the batched array API are BentoML APIs.
"""

from __future__ import annotations

from typing import Annotated

import bentoml
import numpy as np
from bentoml.exceptions import InvalidArgument, NotFound, ServiceUnavailable
from bentoml.validators import ContentType, DType
from fastapi import FastAPI
from numpy.typing import NDArray
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from lifecycle.contract import ContractViolationError
from lifecycle.settings import Settings
from serving.gc_tuning import settle_heap, watch
from serving.guard import RequestGuard
from serving.host import NotServedError
from serving.oip_route import ServerMetadataPath
from serving.oip_route import api as oip_api
from serving.predict_route import ACTIVE
from serving.predict_route import api as predict_api
from serving.prediction_log import LogOverloadedError
from serving.runtime import ServingRuntime
from serving.settings import ServingSettings
from serving.slot import ModelNotReadyError
from serving.tracing import untraced_when_sampling_off


class BoxLabel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    box: list[float] = Field(min_length=4, max_length=4, description="x1, y1, x2, y2 in the input's pixels.")
    class_: str | int = Field(default=0, alias="class", description="Its class: name or index.")


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(
        max_length=64, pattern=r"^[\w\-.:]+$", description="The id a prediction answered with."
    )
    label: str | int | float | list[float] | list[BoxLabel] = Field(
        description="The true label, of the model's task: a classifier's class (name or index), a "
        "regressor's value(s), a detector's boxes ([] when there is nothing to find)."
    )
    model: str | None = Field(
        default=None, max_length=256, description="The model that answered; default: the default model."
    )


class FeedbackAck(BaseModel):
    request_id: str
    model: str
    label: str


admin = FastAPI(title="lifecycle serving admin")


# The array API validates each request against the served contract *before* adaptive batching
# merges requests (one bad request must not fail a whole batch).
def _validate_rows(x: NDArray[np.float32]) -> NDArray[np.float32]:
    runtime = ACTIVE.get("runtime")
    if runtime is None or runtime.host.default is None or not runtime.host.ready:
        return x  # the API answers 503, or 404 without a default model
    return runtime.default.slot.current().contract.validate_input(x, max_rows=runtime.serving.max_instances)


Rows = Annotated[np.ndarray, DType("float32"), AfterValidator(_validate_rows)]
# The media type stated up front: without it BentoML derives it from the ndarray's JSON schema, which
# pydantic rebuilds on every response (0.9 ms per request here, measured with py-spy).
Probabilities = Annotated[np.ndarray, ContentType("application/json")]


@bentoml.service(
    name="lifecycle-classifier",
    tracing=untraced_when_sampling_off(),
    workers=1,
    traffic={"timeout": 30, "max_concurrency": 256},
    metrics={"enabled": True},
    logging={"access": {"enabled": False}},
)
@bentoml.asgi_app(predict_api, path="/v1")
@bentoml.asgi_app(oip_api, path="/v2")
@bentoml.asgi_app(admin, path="/admin")
class Classifier:
    def __init__(self) -> None:
        serving = ServingSettings()
        self.runtime = ServingRuntime.from_settings(Settings(), serving)
        ACTIVE["runtime"] = self.runtime
        # the worker is built and its first model loaded: what exists now lives as long as it does
        settle_heap(freeze=serving.gc_freeze, gen0_threshold=serving.gc_gen0_threshold)
        watch()  # counted from here: the pauses of serving, not the start-up collection

    @bentoml.api(route="/v1/feedback")
    def feedback(self, request: FeedbackRequest, /, ctx: bentoml.Context) -> FeedbackAck:
        """Attach the true label to a served request id (ground truth for retraining)."""
        try:
            label_value: object = request.label
            if isinstance(request.label, list) and request.label and isinstance(request.label[0], BoxLabel):
                label_value = [b.model_dump(by_alias=True) for b in request.label if isinstance(b, BoxLabel)]
            model, label = self.runtime.record_feedback(
                request.request_id, label_value, source=ctx.request.headers.get("x-actor", "api")[:200],
                model=request.model,
            )  # fmt: skip
        except (ContractViolationError, NotServedError) as exc:
            raise InvalidArgument(str(exc)) from exc
        except ModelNotReadyError as exc:
            raise ServiceUnavailable(str(exc)) from exc
        return FeedbackAck(request_id=request.request_id, model=model, label=label)

    @bentoml.api(
        route="/v1/predict_array", batchable=True, batch_dim=0, max_batch_size=64, max_latency_ms=5000
    )
    def predict_array(self, x: Rows) -> Probabilities:
        """Adaptive batching: rows of concurrent requests run as one batch. In: ``{"x": [[...]]}``;
        out: class probabilities per row. ``max_latency_ms`` is far above the batch time on small
        machines, so load does not make BentoML shed requests with 503."""
        try:
            return self.runtime.default.predictor.predict_rows(x)
        except NotServedError as exc:
            raise NotFound(str(exc)) from exc
        except (ModelNotReadyError, LogOverloadedError) as exc:
            raise ServiceUnavailable(str(exc)) from exc

    def __is_ready__(self) -> bool:
        """``/readyz`` answers 200 only once the default model is loaded."""
        return self.runtime.host.ready

    @admin.get("/status")
    def status(self) -> dict[str, object]:
        """Readiness details: the default model's version, registry reachability, swap history; every
        model's; memory; log counters."""
        return self.runtime.status()

    @bentoml.on_shutdown
    def shutdown(self) -> None:
        ACTIVE.pop("runtime", None)
        self.runtime.close()


Classifier.add_asgi_middleware(RequestGuard)  # type: ignore[attr-defined]
Classifier.add_asgi_middleware(ServerMetadataPath)  # type: ignore[attr-defined]
