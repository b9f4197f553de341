"""Scheduled job functions. APScheduler stores a job as a textual reference to a module-level
function (STACK_NOTES §7), so the monitor the job runs with is installed here by the process that
runs the scheduler — the one place this package keeps process state."""

from __future__ import annotations

import logging
from collections.abc import Callable

from monitoring.monitor import Monitor

log = logging.getLogger(__name__)

CHECK_MODEL = "monitoring.jobs:check_model"
RETRAIN_MODEL = "monitoring.jobs:retrain_model"
_ACTIVE: dict[str, Monitor] = {}
_RETRAIN: dict[str, Callable[[str, str, str], object]] = {}


def install(monitor: Monitor) -> None:
    _ACTIVE["monitor"] = monitor


def install_retrain(retrain: Callable[[str, str, str], object]) -> None:
    """The retrain entry point, ``(model, trigger, trigger_ref)``, installed by the control plane."""
    _RETRAIN["retrain"] = retrain


def uninstall() -> None:
    _ACTIVE.pop("monitor", None)
    _RETRAIN.pop("retrain", None)


def check_model(model: str) -> bool:
    """Check one model (the scheduled job); a failure is logged, never raised into the scheduler."""
    monitor = _ACTIVE.get("monitor")
    if monitor is None:
        log.warning("drift monitor job for %s ran in a process without a monitor; skipped", model)
        return False
    try:
        monitor.check(model)
        return True
    except Exception:
        log.exception("drift check of %s failed", model)
        return False


def retrain_model(model: str, trigger: str, trigger_ref: str) -> bool:
    """A scheduled or drift-triggered retrain; failures are recorded by the pipeline, never raised here."""
    retrain = _RETRAIN.get("retrain")
    if retrain is None:
        log.warning("retrain job for %s ran in a process without a retrainer; skipped", model)
        return False
    try:
        retrain(model, trigger, trigger_ref)
        return True
    except Exception:
        log.exception("retrain of %s (%s) did not run", model, trigger)
        return False
