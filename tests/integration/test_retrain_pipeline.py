"""The retrain pipeline end to end on a tiny model (in-memory registry and run tracker, real
database): data → distill → INT8 → register with lineage → challenger; the lock; failures."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import Engine, insert

from lifecycle.alerts import Alerter
from lifecycle.data import DataSplits
from lifecycle.db import session_factory
from lifecycle.db.feedback import FeedbackStore
from lifecycle.db.locks import Locks
from lifecycle.db.schema import PredictionRow
from lifecycle.db.types import utcnow
from lifecycle.local_version import ModelPackage
from registry.memory import InMemoryModelRegistry, InMemoryRunTracker
from retrain.jobs import RetrainJobs
from retrain.pipeline import RetrainBusyError, Retrainer
from retrain.settings import RetrainSettings


@pytest.fixture
def setup(
    migrated_engine: Engine, tabular_package: ModelPackage, tabular_data: DataSplits
) -> tuple[Retrainer, InMemoryModelRegistry, InMemoryRunTracker, Engine]:
    registry = InMemoryModelRegistry()
    registry.register(replace(tabular_package, name="m"))
    registry.set_alias("m", "champion", "1", actor="test")
    sessions = session_factory(migrated_engine)
    x = tabular_data.x_test
    rows = [
        {"request_id": f"r{i}", "ts": utcnow(), "model_name": "m", "version": "1", "role": "champion",
         "features": (x[i] * 1.1).tolist(), "predicted_class": 0, "confidence": 0.9, "latency_ms": 1.0, "error": None}
        for i in range(len(x))
    ]  # fmt: skip
    with migrated_engine.begin() as conn:
        conn.execute(insert(PredictionRow), rows)
    feedback = FeedbackStore(sessions)
    for i in range(0, len(x), 10):
        feedback.record("m", f"r{i}", int(tabular_data.y_test[i]), "test")
    tracker = InMemoryRunTracker()
    retrainer = Retrainer(
        RetrainJobs(sessions), Locks(sessions), registry, tracker, Alerter(sessions),
        RetrainSettings(epochs=30, cooldown_s=0), sessions, owner="test",
    )  # fmt: skip
    return retrainer, registry, tracker, migrated_engine


def test_a_retrain_registers_a_student_with_lineage_and_sets_it_as_challenger(
    setup: tuple[Retrainer, InMemoryModelRegistry, InMemoryRunTracker, Engine], tabular_data: DataSplits
) -> None:
    retrainer, registry, tracker, _ = setup
    job = retrainer.run("m", "manual", "cli:test")
    assert job.status == "succeeded", job.error
    aliases = registry.aliases("m")
    assert aliases["champion"] == "1" and aliases["challenger"] == job.challenger_version
    challenger = registry.get_version("m", aliases["challenger"])
    assert challenger.tags["lifecycle.retrain_job"] == str(job.id)
    assert challenger.tags["lifecycle.teacher_version"] == "1"
    assert challenger.tags["lifecycle.recipe"] in ("ort-int8-static", "retrain-distill")
    assert job.counts["production"] + job.counts["feedback_val"] == len(tabular_data.x_test)
    assert job.counts["feedback_train"] > 0
    assert job.metrics["student_clean_val_accuracy"] >= job.metrics["champion_clean_val_accuracy"] - 0.01
    assert job.run_id is not None and tracker.runs[job.run_id].status == "FINISHED"
    assert retrainer.jobs.history("m")[0].id == job.id


def test_the_lock_blocks_a_second_concurrent_retrain(
    setup: tuple[Retrainer, InMemoryModelRegistry, InMemoryRunTracker, Engine],
) -> None:
    retrainer, registry, _, engine = setup
    Locks(session_factory(engine)).acquire("retrain:m", "another-process", 60)
    with pytest.raises(RetrainBusyError, match="already running"):
        retrainer.run("m", "manual")
    assert "challenger" not in registry.aliases("m") and retrainer.jobs.history("m") == []


def test_a_failure_leaves_the_champion_records_and_alerts(
    setup: tuple[Retrainer, InMemoryModelRegistry, InMemoryRunTracker, Engine],
) -> None:
    retrainer, registry, tracker, engine = setup
    registry.set_version_tag("m", "1", "lifecycle.teacher_version", "99")  # a teacher that does not exist
    job = retrainer.run("m", "drift", "run-abc")
    assert job.status == "failed" and "99" in (job.error or "")
    assert registry.aliases("m") == {"champion": "1"}
    assert job.run_id is not None and tracker.runs[job.run_id].status == "FAILED"
    alerts = Alerter(session_factory(engine)).recent(source="retrain")
    assert [a.alert.key for a in alerts] == ["retrain:m:failed"]
    # the lock was released: the next attempt runs (and fails the same way) instead of being blocked
    assert retrainer.run("m", "manual").status == "failed"
    assert [j.status for j in retrainer.jobs.history("m")] == ["failed", "failed"]


def test_enough_feedback_refreshes_the_teacher_first_and_the_student_learns_from_it(
    setup: tuple[Retrainer, InMemoryModelRegistry, InMemoryRunTracker, Engine],
) -> None:
    retrainer, registry, _, _ = setup
    retrainer.settings = retrainer.settings.model_copy(update={"refresh_teacher_min_feedback": 5})
    job = retrainer.run("m", "manual")
    assert job.status == "succeeded", job.error
    teacher = registry.get_version("m", str(job.teacher_version))
    assert teacher.version != "1" and teacher.tags["lifecycle.role"] == "teacher"
    assert teacher.tags["lifecycle.parent_version"] == "1" and teacher.tags["lifecycle.retrain_job"] == str(
        job.id
    )
    challenger = registry.get_version("m", registry.aliases("m")["challenger"])
    assert challenger.tags["lifecycle.teacher_version"] == teacher.version
    assert job.metrics["feedback_rows"] >= 5
    assert "teacher_clean_val_accuracy_after" in job.metrics
