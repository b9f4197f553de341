"""When a retrain runs: drift verdicts past the configured severity, the cron schedule, a manual
request — each held back by the cool-down after the last retrain of the model (manual ones are not)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from lifecycle.names import Severity
from retrain.pipeline import Retrainer
from retrain.settings import RetrainSettings

log = logging.getLogger(__name__)


class RetrainTriggers:
    def __init__(
        self, retrainer: Retrainer, settings: RetrainSettings, *, queue: Callable[[str, str, str], bool]
    ) -> None:
        """``queue(model, trigger, trigger_ref)`` hands a retrain to the scheduler's executor and
        says whether it was queued (only the scheduler's leader queues)."""
        self.retrainer = retrainer
        self.settings = settings
        self._queue = queue

    def run(self, model: str, trigger: str, trigger_ref: str) -> None:
        """A scheduled or drift-queued retrain (the scheduler's ``retrain`` job)."""
        if trigger != "manual" and self.retrainer.cooling_down(model):
            log.info("retrain of %s (%s) skipped: within the cool-down of the last one", model, trigger)
            return
        self.retrainer.run(model, trigger, trigger_ref)

    def on_drift(self, model: str, severity: Severity, ref: str) -> bool:
        """A drift verdict: queue a retrain when its severity reaches ``on_drift``; True when queued."""
        threshold = self.settings.on_drift
        if threshold == "never" or severity is Severity.NONE:
            return False
        if threshold == "critical" and severity is not Severity.CRITICAL:
            return False
        if self.retrainer.cooling_down(model):
            return False
        queued = self._queue(model, "drift", ref)
        if queued:
            log.info("drift on %s (%s): retrain queued", model, severity.value)
        return queued
