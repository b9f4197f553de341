"""When a drift verdict starts a retrain: the severity threshold, the cool-down, and a queue that only
the scheduler's leader accepts (the retrainer is a fake: this is the trigger's own logic)."""

from __future__ import annotations

import pytest

from lifecycle.names import Severity
from retrain.settings import RetrainSettings
from retrain.triggers import RetrainTriggers


class FakeRetrainer:
    def __init__(self, cooling: bool = False) -> None:
        self.cooling = cooling
        self.ran: list[tuple[str, str, str]] = []

    def cooling_down(self, model: str) -> bool:
        return self.cooling

    def run(self, model: str, trigger: str, trigger_ref: str = "") -> None:
        self.ran.append((model, trigger, trigger_ref))


def _triggers(
    on_drift: str, *, cooling: bool = False, accepted: bool = True
) -> tuple[RetrainTriggers, FakeRetrainer, list[tuple[str, str, str]]]:
    retrainer, queued = FakeRetrainer(cooling), []

    def queue(model: str, trigger: str, ref: str) -> bool:
        queued.append((model, trigger, ref))
        return accepted

    triggers = RetrainTriggers(retrainer, RetrainSettings(on_drift=on_drift), queue=queue)  # type: ignore[arg-type]
    return triggers, retrainer, queued


@pytest.mark.parametrize(
    ("on_drift", "severity", "queued"),
    [
        ("critical", Severity.CRITICAL, True),
        ("critical", Severity.WARNING, False),
        ("warning", Severity.WARNING, True),
        ("warning", Severity.NONE, False),
        ("never", Severity.CRITICAL, False),
    ],
)
def test_a_drift_verdict_queues_a_retrain_at_the_configured_severity(
    on_drift: str, severity: Severity, queued: bool
) -> None:
    triggers, _, sent = _triggers(on_drift)
    assert triggers.on_drift("digits", severity, "run-1") is queued
    assert sent == ([("digits", "drift", "run-1")] if queued else [])


def test_the_cool_down_holds_back_automatic_retrains_but_not_manual_ones() -> None:
    triggers, retrainer, sent = _triggers("critical", cooling=True)
    assert triggers.on_drift("digits", Severity.CRITICAL, "run-1") is False and sent == []
    triggers.run("digits", "schedule", "0 3 * * *")
    triggers.run("digits", "manual", "ops")
    assert retrainer.ran == [("digits", "manual", "ops")]


def test_only_a_running_scheduler_accepts_the_retrain() -> None:
    triggers, _, sent = _triggers("critical", accepted=False)
    assert triggers.on_drift("digits", Severity.CRITICAL, "run-1") is False and len(sent) == 1
