"""The one APScheduler scheduler: jobs persisted in our database (SQLAlchemy job store) and run
only where ``start`` was called — the control-plane leader — so two control planes never both run
a job. Jobs have stable ids, so a restart or a fail-over never duplicates one.

A job names a *kind* (``"drift-check"``, ``"retrain"``) and its arguments; the handlers for the
kinds are given to the :class:`Scheduler` by whoever builds it. APScheduler persists a job as a
textual reference to a module-level function, so :func:`run_job` finds the scheduler running in
this process through ``_RUNNING`` — the one piece of process state, set by ``start``, cleared by
``stop``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

log = logging.getLogger(__name__)

JOB_FUNCTION = "lifecycle.scheduling:run_job"
Handler = Callable[..., object]
_RUNNING: dict[str, Scheduler] = {}


def run_job(kind: str, *args: str) -> bool:
    """What every stored job calls: the handler for ``kind`` of the scheduler running here.
    A failing handler is logged, never raised into APScheduler."""
    scheduler = _RUNNING.get("scheduler")
    handler = scheduler.handlers.get(kind) if scheduler is not None else None
    if handler is None:
        log.warning("%s job %s ran in a process without a handler for it; skipped", kind, args)
        return False
    try:
        handler(*args)
        return True
    except Exception:
        log.exception("%s job %s failed", kind, args)
        return False


class Scheduler:
    def __init__(self, database_url: str, handlers: Mapping[str, Handler], *, workers: int = 2) -> None:
        self._url = database_url
        self.handlers = dict(handlers)
        self._workers = workers
        self._scheduler: BackgroundScheduler | None = None

    @property
    def running(self) -> bool:
        return self._scheduler is not None and bool(self._scheduler.running)

    def start(self) -> None:
        if self.running:
            return
        scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=self._url, tablename="apscheduler_jobs")},
            # more than one worker: a long retrain must not hold up the drift checks
            executors={"default": ThreadPoolExecutor(self._workers)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone="UTC",
        )
        _RUNNING["scheduler"] = self
        scheduler.start()
        self._scheduler = scheduler

    def stop(self) -> None:
        """Stop running jobs here (leadership lost, or shutdown); they stay stored for the next leader."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=False)
        if _RUNNING.get("scheduler") is self:
            del _RUNNING["scheduler"]

    def keep_interval_jobs(
        self, prefix: str, kind: str, wanted: Mapping[str, tuple[str, ...]], seconds: float
    ) -> None:
        """One job ``prefix:key`` per entry of ``wanted`` (its arguments), every ``seconds``; jobs
        under ``prefix`` not wanted are removed. A job already at this interval keeps its next run."""
        scheduler = self._scheduler
        if scheduler is None:
            return
        ids = {f"{prefix}:{key}": args for key, args in wanted.items()}
        self._remove_unwanted(scheduler, prefix, ids)
        for jid, args in ids.items():
            job = scheduler.get_job(jid)
            current = getattr(job.trigger, "interval", None) if job is not None else None
            if current is not None and current.total_seconds() == seconds:
                continue
            scheduler.add_job(
                JOB_FUNCTION, "interval", seconds=seconds, args=[kind, *args], id=jid,
                name=f"{kind} {' '.join(args)}", replace_existing=True,
            )  # fmt: skip
            log.info("%s job %s every %.0f s", kind, jid, seconds)

    def keep_cron_jobs(
        self, prefix: str, kind: str, wanted: Mapping[str, tuple[str, ...]], cron: str | None
    ) -> None:
        """As :meth:`keep_interval_jobs`, at a crontab expression (UTC); none when ``cron`` is None."""
        scheduler = self._scheduler
        if scheduler is None:
            return
        ids = {f"{prefix}:{key}": args for key, args in wanted.items()} if cron else {}
        self._remove_unwanted(scheduler, prefix, ids)
        for jid, args in ids.items():
            assert cron is not None
            job = scheduler.get_job(jid)
            if job is not None and job.name == cron:
                continue
            scheduler.add_job(
                JOB_FUNCTION, CronTrigger.from_crontab(cron, timezone="UTC"), args=[kind, *args], id=jid,
                name=cron, replace_existing=True,
            )  # fmt: skip
            log.info("%s job %s at cron %r", kind, jid, cron)

    def run_soon(self, job_id: str, kind: str, args: tuple[str, ...]) -> bool:
        """Queue a one-off job on the scheduler's executor (persisted, so a restart still runs it);
        False when the scheduler does not run here."""
        scheduler = self._scheduler
        if scheduler is None:
            return False
        scheduler.add_job(JOB_FUNCTION, "date", args=[kind, *args], id=job_id, replace_existing=True)
        return True

    def next_run(self) -> datetime | None:
        if self._scheduler is None:
            return None
        times = [j.next_run_time for j in self._scheduler.get_jobs() if j.next_run_time is not None]
        return min(times) if times else None

    @staticmethod
    def _remove_unwanted(scheduler: BackgroundScheduler, prefix: str, wanted: Mapping[str, object]) -> None:
        for job in scheduler.get_jobs():
            if job.id.startswith(f"{prefix}:") and job.id not in wanted:
                scheduler.remove_job(job.id)
                log.info("job %s removed", job.id)
