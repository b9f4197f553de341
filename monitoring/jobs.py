"""Scheduled job functions. APScheduler stores a job as a textual reference to a module-level
function (STACK_NOTES §7), so the monitor the job runs with is installed here by the process that
runs the scheduler — the one place this package keeps process state."""

from __future__ import annotations

import logging

from monitoring.monitor import Monitor

log = logging.getLogger(__name__)

CHECK_ALL = "monitoring.jobs:check_all"
CHECK_MODEL = "monitoring.jobs:check_model"
_ACTIVE: dict[str, Monitor] = {}


def install(monitor: Monitor) -> None:
    _ACTIVE["monitor"] = monitor


def uninstall() -> None:
    _ACTIVE.pop("monitor", None)


def check_all() -> int:
    """Check every monitored model; one model's failure never stops the others. Returns checks done."""
    monitor = _ACTIVE.get("monitor")
    if monitor is None:
        log.warning("drift monitor job ran in a process without a monitor; skipped")
        return 0
    done = 0
    for model in monitor.models():
        try:
            monitor.check(model)
            done += 1
        except Exception:
            log.exception("drift check of %s failed", model)
    return done


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
