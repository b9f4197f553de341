"""The serving process's composition root: settings → database, registry, model slot, prediction log."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from sqlalchemy import Engine

from lifecycle.db import create_db_engine, session_factory, upgrade_to_head
from lifecycle.db.feedback import FeedbackStore, label_index
from lifecycle.db.traffic import TrafficPlans
from lifecycle.names import SHADOW
from lifecycle.runtimes.load import runtime_of
from lifecycle.settings import Settings
from registry.mlflow import MlflowModelRegistry
from serving.batching import MicroBatcher
from serving.gc_tuning import WATCH as GC_WATCH
from serving.metrics import serving_metrics
from serving.prediction_log import PredictionLog
from serving.predictor import PredictInput, Prediction, Predictor
from serving.routing import Router
from serving.settings import ServingSettings
from serving.shadow_process import ProcessMirror
from serving.slot import ModelSlot

log = logging.getLogger(__name__)


@dataclass
class ServingRuntime:
    settings: Settings
    serving: ServingSettings
    engine: Engine
    slot: ModelSlot
    log: PredictionLog
    predictor: Predictor
    feedback: FeedbackStore
    batcher: MicroBatcher[PredictInput, Prediction]

    @classmethod
    def from_settings(cls, settings: Settings, serving: ServingSettings) -> ServingRuntime:
        engine = create_db_engine(settings.database_url)
        upgrade_to_head(engine)
        registry = MlflowModelRegistry(settings.tracking_uri, experiment=settings.registry.experiment)
        slot = ModelSlot(
            registry, serving.model, serving.alias, settings.state_path / "serving-cache",
            runtime_threads=serving.runtime_threads,
        )  # fmt: skip
        prediction_log = PredictionLog(
            session_factory(engine), max_queue=serving.log_queue_size, batch_size=serving.log_batch_size,
            flush_interval_s=serving.log_flush_interval_s, submit_timeout_s=serving.log_submit_timeout_s,
        )  # fmt: skip

        def mirror_loader(version: str) -> ProcessMirror:
            local, tags = slot.fetch(version)
            runtime, precision = runtime_of(local, tags)
            return ProcessMirror(
                model=serving.model, version=version, files=local.model_paths, runtime=runtime,
                inference_precision=precision, database_url=settings.database_url, nice=serving.shadow_nice,
                contract=local.contract,
            )  # fmt: skip

        router = Router(
            serving.model,
            TrafficPlans(session_factory(engine)).plan,
            lambda version, role: slot.load_other(version, role, threads=1 if role == SHADOW else None),
            mirror_loader=mirror_loader if serving.shadow_isolation == "process" else None,
        )
        metrics = serving_metrics()
        metrics.start_flusher(serving.metrics_flush_interval_s)
        predictor = Predictor(
            slot, prediction_log, max_instances=serving.max_instances, metrics=metrics,
            router=router,
            shadow_queue=serving.shadow_queue_size if serving.shadow_isolation == "thread" else None,
        )  # fmt: skip
        batcher = MicroBatcher(
            predictor.predict_many, max_rows=serving.max_batch_size, inline_max_s=serving.inline_max_ms / 1e3,
            # a canary failure logs the rows twice (its error, then the champion's answer)
            may_block=lambda rows: not prediction_log.has_room(2 * rows), run_one=predictor.predict_one,
            name="predict",
        )  # fmt: skip
        runtime = cls(
            settings, serving, engine, slot, prediction_log, predictor, FeedbackStore(session_factory(engine)),
            batcher,
        )  # fmt: skip
        slot.refresh()
        router.refresh()
        slot.start(serving.poll_interval_s, also=router.refresh)
        return runtime

    def record_feedback(self, request_id: str, label: str | int, *, source: str) -> tuple[str, str]:
        """Store a true label for a served request. :raises ContractViolationError: unknown label."""
        served = self.slot.current()
        names = served.contract.class_names
        index = label_index(label, names)
        self.feedback.record(served.name, request_id, index, source)
        return served.name, names[index]

    def close(self) -> None:
        self.batcher.close()
        self.slot.stop()
        if self.predictor.shadow is not None:
            self.predictor.shadow.close()
        if self.predictor.router is not None:
            self.predictor.router.close()
        self.log.close()
        if self.predictor.metrics is not None:
            self.predictor.metrics.flush()
        self.engine.dispose()

    def status(self) -> dict[str, object]:
        s = self.slot.status
        return {
            "ready": self.slot.ready,
            "model": s.model,
            "alias": s.alias,
            "version": s.version,
            "registry": s.registry,
            "last_check": s.last_check,
            "last_error": s.last_error,
            "swaps": s.swaps,
            "swap_history": s.history[-10:],
            "rollout": self._rollout_status(),
            "batching": {"max_rows": self.batcher.max_rows, **asdict(self.batcher.stats)},
            "prediction_log": {
                "accepted": self.log.accepted,
                "written": self.log.written,
                "pending": self.log.pending,
                "rejected_overload": self.log.rejected,
                "write_failures": self.log.write_failures,
            },
            "gc": GC_WATCH.status(),
        }

    def _rollout_status(self) -> dict[str, object] | None:
        router = self.predictor.router
        challenger = router.challenger if router is not None else None
        if challenger is None:
            return None
        shadow = self.predictor.shadow
        return {
            "rollout_id": challenger.plan.rollout_id,
            "challenger": challenger.plan.challenger,
            "loaded": challenger.served is not None,
            "error": challenger.error,
            "canary_weight": challenger.plan.canary_weight,
            "mirror_share": challenger.plan.mirror_share,
            "shadow": challenger.mirror.stats()
            if challenger.mirror is not None
            else (shadow.stats() if shadow is not None else None),
        }
