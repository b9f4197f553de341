"""The rollout controller on a real database (SQLite and PostgreSQL) with the in-memory registry and
a controlled clock: prediction-log rows written the way serving writes them drive the analysis."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert

from lifecycle.alerts import Alerter
from lifecycle.db import session_factory
from lifecycle.db.schema import PredictionRow
from lifecycle.local_version import ModelPackage
from registry.memory import InMemoryModelRegistry
from rollout.controller import RolloutController, RolloutError
from rollout.machine import Phase
from rollout.policy import RolloutPolicy
from rollout.store import RolloutStore
from rollout.windows import WindowReader

POLICY = RolloutPolicy(
    interval_s=10, steps=(10, 50, 100), min_shadow_pairs=50, min_canary_requests=20, min_canary_pairs=10
)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def parts(
    migrated_engine: Engine, tabular_package: ModelPackage
) -> tuple[RolloutController, InMemoryModelRegistry, Clock, Engine]:
    registry = InMemoryModelRegistry()
    for _ in range(3):
        registry.register(replace(tabular_package, name="m"))
    registry.set_alias("m", "champion", "1", actor="test")
    sessions = session_factory(migrated_engine)
    clock = Clock()
    controller = RolloutController(
        RolloutStore(sessions), WindowReader(sessions), registry, Alerter(sessions), POLICY,
        watch=["m-prod"], clock=clock,
    )  # fmt: skip
    return controller, registry, clock, migrated_engine


def _log(
    engine: Engine,
    clock: Clock,
    version: str,
    role: str,
    n: int,
    *,
    cls: int = 1,
    error: str | None = None,
    start: int = 0,
) -> None:
    rows = [
        {
            "request_id": f"r{start + i}",
            "ts": clock(),
            "model_name": "m",
            "version": version,
            "role": role,
            "features": [0.0],
            "predicted_class": None if error else cls,
            "confidence": None if error else 0.9,
            "latency_ms": 1.0,
            "error": error,
        }
        for i in range(n)
    ]
    with engine.begin() as conn:
        conn.execute(insert(PredictionRow), rows)


def test_a_faithful_challenger_is_promoted_step_by_step(
    parts: tuple[RolloutController, InMemoryModelRegistry, Clock, Engine],
) -> None:
    controller, registry, clock, engine = parts
    rollout = controller.start("m", "2", "cli:test")
    assert (rollout.phase, registry.aliases("m")) == (Phase.SHADOW, {"champion": "1", "challenger": "2"})
    clock.advance(1)
    _log(engine, clock, "1", "champion", 30)
    _log(engine, clock, "2", "shadow", 30)
    clock.advance(10)
    controller.tick()
    status = controller.status("m")
    assert status is not None and status.rollout.phase is Phase.SHADOW  # 30 pairs < 50: no verdict yet
    assert status.verdicts[0].outcome == "inconclusive" and status.verdicts[0].samples["pairs"] == 30
    _log(engine, clock, "1", "champion", 30, start=100)
    _log(engine, clock, "2", "shadow", 30, start=100)
    clock.advance(10)
    controller.tick()
    assert controller.status("m").rollout.phase is Phase.CANARY  # type: ignore[union-attr]
    for step in range(2):
        clock.advance(1)
        _log(engine, clock, "1", "champion", 50, start=1000 * (step + 1))
        _log(engine, clock, "2", "canary", 25, start=5000 * (step + 1))
        clock.advance(10)
        controller.tick()
    final = controller.status("m")
    assert final is not None and final.rollout.phase is Phase.PROMOTED
    assert registry.aliases("m") == {"champion": "2"}
    assert registry.get_version("m", "2").tags["lifecycle.rollout"] == "promoted"
    assert [v.outcome for v in reversed(final.verdicts)] == ["inconclusive", "pass", "pass", "pass"]


def test_errors_roll_back_remove_the_alias_tag_and_alert(
    parts: tuple[RolloutController, InMemoryModelRegistry, Clock, Engine],
) -> None:
    controller, registry, clock, engine = parts
    controller.start("m", "3", "cli:test")
    for i in range(2):
        clock.advance(1)
        _log(engine, clock, "1", "champion", 60, start=100 * i)
        _log(engine, clock, "3", "shadow", 60, error="RuntimeError('boom')", start=100 * i)
        clock.advance(10)
        controller.tick()
    status = controller.status("m")
    assert status is not None and status.rollout.phase is Phase.ROLLED_BACK
    assert registry.aliases("m") == {"champion": "1"}
    assert "error_rate" in registry.get_version("m", "3").tags["lifecycle.rollout_reason"]
    assert (
        status.verdicts[0].checks[0]["name"] == "error_rate" and status.verdicts[0].checks[0]["value"] == 1.0
    )
    sessions = session_factory(engine)
    assert [a.alert.key for a in Alerter(sessions).recent()] == ["rollout:m:3"]


def test_ui_controls_champion_moved_promotes_challenger_deleted_aborts(
    parts: tuple[RolloutController, InMemoryModelRegistry, Clock, Engine],
) -> None:
    controller, registry, _, _ = parts
    controller.start("m", "2", "cli:test")
    registry.set_alias("m", "champion", "2", actor="ui")  # a person moved champion in the MLflow UI
    assert controller.reconcile("m") is None
    assert controller.status("m").rollout.phase is Phase.PROMOTED  # type: ignore[union-attr]
    controller.start("m", "3", "cli:test")
    registry.delete_alias("m", "challenger", actor="ui")
    assert controller.reconcile("m") is None
    aborted = controller.status("m")
    assert (
        aborted is not None and aborted.rollout.phase is Phase.ABORTED and "deleted" in aborted.rollout.reason
    )
    with pytest.raises(RolloutError, match="no active rollout"):
        controller.pause("m")


def test_a_newer_challenger_replaces_the_running_rollout(
    parts: tuple[RolloutController, InMemoryModelRegistry, Clock, Engine],
) -> None:
    controller, registry, _, _ = parts
    first = controller.start("m", "2", "cli:test")
    second = controller.start("m", "3", "cli:test")
    assert second.challenger == "3" and second.id != first.id
    assert controller._store.get(first.id).phase is Phase.ABORTED  # type: ignore[arg-type,union-attr]
    assert registry.aliases("m")["challenger"] == "3"  # the abort did not remove the new challenger


def test_a_version_promoted_into_a_watched_model_starts_a_rollout(
    parts: tuple[RolloutController, InMemoryModelRegistry, Clock, Engine], tabular_package: ModelPackage
) -> None:
    controller, registry, _, _ = parts
    registry.register(replace(tabular_package, name="m-prod"))
    controller.on_version_created("m-prod", "1")
    assert registry.aliases("m-prod") == {"champion": "1"}  # the first one simply becomes champion
    registry.register(replace(tabular_package, name="m-prod"))
    controller.on_version_created("m-prod", "2")
    active = controller.status("m-prod")
    assert active is not None and active.rollout.challenger == "2" and active.rollout.phase is Phase.SHADOW
    registry.register(replace(tabular_package, name="m"))
    controller.on_version_created("m", "4")  # not watched: nothing happens
    assert "challenger" not in registry.aliases("m")


def test_model_tags_set_the_policy_of_its_rollouts_and_bad_tags_fall_back(
    parts: tuple[RolloutController, InMemoryModelRegistry, Clock, Engine],
) -> None:
    controller, registry, _, _ = parts
    registry.set_model_tag("m", "lifecycle.rollout.interval_s", "2.5")
    registry.set_model_tag("m", "lifecycle.rollout.steps", "20, 100")
    registry.set_model_tag("m", "lifecycle.rollout.shadow", "false")
    registry.set_model_tag("m", "owner", "team-a")  # not ours: ignored
    rollout = controller.start("m", "2", "cli:test")
    assert rollout.policy.interval_s == 2.5 and rollout.policy.steps == (20, 100)
    assert rollout.phase is Phase.CANARY and rollout.policy.min_shadow_pairs == POLICY.min_shadow_pairs
    stored = controller._store.get(rollout.id)
    assert stored is not None and stored.policy == rollout.policy  # persisted with the rollout
    controller.abort("m", "cli:test")
    registry.set_model_tag("m", "lifecycle.rollout.steps", "50,20")
    assert controller.start("m", "3", "cli:test").policy == POLICY
    registry.set_model_tag("m", "lifecycle.rollout.steps", "20,100")
    registry.set_version_tag("m", "3", "lifecycle.rollout.min_agreement", "0")  # as a retrain tags it
    controller.abort("m", "cli:test")
    tagged = controller.start("m", "3", "cli:test").policy
    assert tagged.min_agreement == 0 and tagged.steps == (20, 100)  # version tags over model tags
