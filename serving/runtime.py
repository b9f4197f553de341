"""The serving process's composition root: settings → database, registry, the model host (a slot,
router, predictor and batcher per model), prediction log, metrics."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import Engine

from lifecycle.db import create_db_engine, session_factory, upgrade_to_head
from lifecycle.db.feedback import FeedbackStore
from lifecycle.db.traffic import TrafficPlans
from lifecycle.errors import LifecycleError
from lifecycle.input_store import InputStore
from lifecycle.labels import parse_label
from lifecycle.names import SHADOW
from lifecycle.runtimes.load import runtime_of
from lifecycle.settings import Settings
from registry.abc import ModelRegistry
from registry.mlflow import MlflowModelRegistry
from serving.batching import MicroBatcher
from serving.gc_tuning import WATCH as GC_WATCH
from serving.host import HostedModel, ModelHost, NotServedError
from serving.inference import Inference
from serving.metrics import ServingMetrics, serving_metrics
from serving.prediction_log import PredictionLog
from serving.predictor import Predictor
from serving.routing import Router
from serving.settings import ModelServing, ServingSettings
from serving.shadow_process import ProcessMirror
from serving.slot import ModelSlot

log = logging.getLogger(__name__)


@dataclass
class ServingRuntime:
    settings: Settings
    serving: ServingSettings
    engine: Engine
    host: ModelHost
    log: PredictionLog
    feedback: FeedbackStore
    metrics: ServingMetrics
    inputs: InputStore

    @classmethod
    def from_settings(cls, settings: Settings, serving: ServingSettings) -> ServingRuntime:
        engine = create_db_engine(settings.database_url)
        upgrade_to_head(engine)
        registry = MlflowModelRegistry(settings.tracking_uri, experiment=settings.registry.experiment)
        prediction_log = PredictionLog(
            session_factory(engine), max_queue=serving.log_queue_size, batch_size=serving.log_batch_size,
            flush_interval_s=serving.log_flush_interval_s, submit_timeout_s=serving.log_submit_timeout_s,
        )  # fmt: skip
        plans = TrafficPlans(session_factory(engine))
        metrics = serving_metrics()
        metrics.start_flusher(serving.metrics_flush_interval_s)
        cache_dir = settings.state_path / "serving-cache"
        inputs = InputStore(
            Path(serving.input_store_dir) if serving.input_store_dir else settings.state_path / "inputs",
            sample_rate=serving.input_sample_rate, batch_items=serving.input_store_batch_items,
            max_bytes=serving.input_store_max_mb * 2**20, max_age_s=serving.input_store_max_age_h * 3600,
        )  # fmt: skip
        inputs.start()

        def build(model: str, pinned: bool) -> HostedModel:
            slot = ModelSlot(
                registry, model, serving.alias, cache_dir, runtime_threads=serving.runtime_threads
            )

            def mirror_loader(version: str) -> ProcessMirror:
                local, tags = slot.fetch(version)
                runtime, precision = runtime_of(local, tags)
                return ProcessMirror(
                    model=model, version=version, files=local.model_paths, runtime=runtime,
                    inference_precision=precision, database_url=settings.database_url,
                    nice=serving.shadow_nice, contract=local.contract,
                )  # fmt: skip

            router = Router(
                model,
                plans.plan,
                lambda version, role: slot.load_other(version, role, threads=1 if role == SHADOW else None),
                mirror_loader=mirror_loader if serving.shadow_isolation == "process" else None,
            )
            predictor = Predictor(
                slot, prediction_log, max_instances=serving.max_instances, metrics=metrics, router=router,
                shadow_queue=serving.shadow_queue_size if serving.shadow_isolation == "thread" else None,
                inputs=inputs,
            )  # fmt: skip
            batcher = MicroBatcher(
                predictor.predict_many, max_rows=serving.max_batch_size,
                inline_max_s=serving.inline_max_ms / 1e3,
                # a canary failure logs the rows twice (its error, then the champion's answer)
                may_block=lambda rows: not prediction_log.has_room(2 * rows), run_one=predictor.predict_one,
                name=f"predict-{model}",
            )  # fmt: skip
            limits = _limits(registry, model, serving)
            inference = Inference(predictor)
            tensor_batcher = MicroBatcher(
                inference.infer_many, max_rows=limits.max_batch_size, max_wait_s=limits.max_batch_wait_ms / 1e3,
                may_block=lambda rows: not prediction_log.has_room(2 * rows), run_one=inference.infer,
                inline_max_s=serving.inline_max_ms / 1e3, name=f"infer-{model}",
            )  # fmt: skip
            return HostedModel(
                model, slot, router, predictor, batcher, inference, tensor_batcher, limits, pinned=pinned
            )

        host = ModelHost(
            build, lambda: registry.with_alias(serving.alias), default=serving.model, names=serving.models,
            memory_budget_bytes=serving.memory_budget_mb * 2**20, retry_s=serving.poll_interval_s,
        )  # fmt: skip
        runtime = cls(
            settings, serving, engine, host, prediction_log, FeedbackStore(session_factory(engine)), metrics,
            inputs,
        )  # fmt: skip
        host.start(serving.poll_interval_s)
        return runtime

    @property
    def default(self) -> HostedModel:
        """The default model (``/v1`` routes). :raises NotServedError: none is configured."""
        if self.host.default is None:
            raise NotServedError("no default model is configured (LIFECYCLE_SERVING_MODEL is empty)")
        return self.host.get(self.host.default)

    def record_feedback(
        self, request_id: str, label: object, *, source: str, model: str | None = None
    ) -> tuple[str, str]:
        """Store a true label, of the model's task (``lifecycle.labels``), for a request served by
        ``model`` (default: the default model). Returns the model and the label as stored.

        :raises ContractViolationError: a label the task does not take. :raises NotServedError,
        ModelNotReadyError:"""
        with self.host.using(model or self.default.name) as hosted:
            served = hosted.slot.current()
        checked = parse_label(served.contract, label)
        self.feedback.record(served.name, request_id, checked, source)
        return served.name, checked.describe(served.contract)

    def close(self) -> None:
        self.host.close()
        self.inputs.close()
        self.log.close()
        self.metrics.flush()
        self.engine.dispose()

    def status(self) -> dict[str, object]:
        """The default model's status at the top level (as a one-model server reports it), then every
        model's, the host's memory and the prediction log's counters."""
        default: dict[str, object] = {}
        if self.host.default is not None:
            hosted = self.host.get(self.host.default)
            default = {"ready": hosted.loaded, "model": hosted.name, **hosted.status()}
        return {
            **default,
            "host": self.host.status(),
            "prediction_log": {
                "accepted": self.log.accepted,
                "written": self.log.written,
                "pending": self.log.pending,
                "rejected_overload": self.log.rejected,
                "write_failures": self.log.write_failures,
            },
            "input_store": {"sample_rate": self.inputs.sample_rate, **asdict(self.inputs.stats)},
            "gc": GC_WATCH.status(),
        }


def _limits(registry: ModelRegistry, model: str, serving: ServingSettings) -> ModelServing:
    """The model's serving limits: settings, overridden by its ``lifecycle.serving.*`` tags. A tag
    that cannot be read or is not valid leaves the settings' values (and says so in the log)."""
    try:
        return ModelServing.of(serving, registry.model_tags(model))
    except (LifecycleError, ValueError) as exc:
        log.warning("serving %s with the default limits: its lifecycle.serving.* tags: %s", model, exc)
        return ModelServing.of(serving, {})
