"""The one APScheduler scheduler: jobs persisted in our database (SQLAlchemy job store), started
only by the control-plane leader, so two control planes never both run a job (STACK_NOTES §7).
One job per monitored model, with a stable id, so a restart or a fail-over never duplicates one."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from monitoring import jobs
from monitoring.monitor import Monitor

log = logging.getLogger(__name__)

JOB_PREFIX = "drift-monitor"
RETRAIN_CRON_PREFIX = "retrain-cron"


def job_id(model: str) -> str:
    return f"{JOB_PREFIX}:{model}"


class MonitorScheduler:
    def __init__(self, database_url: str, monitor: Monitor, *, retrain_cron: str | None = None) -> None:
        self._url = database_url
        self._monitor = monitor
        self._retrain_cron = retrain_cron
        self._scheduler: BackgroundScheduler | None = None

    @property
    def running(self) -> bool:
        return self._scheduler is not None and bool(self._scheduler.running)

    def start(self) -> None:
        """Start (the leader calls this) and schedule every monitored model."""
        if self.running:
            return
        jobs.install(self._monitor)
        scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=self._url, tablename="apscheduler_jobs")},
            executors={"default": ThreadPoolExecutor(2)},  # a long retrain must not hold up the checks
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone="UTC",
        )
        scheduler.start()
        self._scheduler = scheduler
        self.sync(self._monitor.models())

    def sync(self, models: Iterable[str]) -> None:
        """One job per model: add (or update the interval of) wanted ones, remove the rest.
        Re-adding under the stable id replaces the stored job instead of duplicating it."""
        scheduler = self._scheduler
        if scheduler is None:
            return
        models = list(models)
        wanted = {job_id(m): m for m in models}
        self._sync_retrain_cron(scheduler, models)
        for job in scheduler.get_jobs():
            if job.id.startswith(JOB_PREFIX) and job.id not in wanted:
                scheduler.remove_job(job.id)
                log.info("drift monitor job %s removed", job.id)
        interval = self._monitor.settings.interval_s
        for jid, model in wanted.items():
            job = scheduler.get_job(jid)
            current = getattr(job.trigger, "interval", None) if job is not None else None
            if current is not None and current.total_seconds() == interval:
                continue  # already scheduled as wanted: keep its next run time
            scheduler.add_job(
                jobs.CHECK_MODEL, "interval", seconds=interval, args=[model], id=jid,
                name=f"drift monitor {model}", replace_existing=True,
            )  # fmt: skip
            log.info("drift monitor job %s every %.0f s", jid, interval)

    def _sync_retrain_cron(self, scheduler: BackgroundScheduler, models: list[str]) -> None:
        wanted = {f"{RETRAIN_CRON_PREFIX}:{m}": m for m in models} if self._retrain_cron else {}
        for job in scheduler.get_jobs():
            if job.id.startswith(RETRAIN_CRON_PREFIX) and job.id not in wanted:
                scheduler.remove_job(job.id)
        for jid, model in wanted.items():
            assert self._retrain_cron is not None
            if (
                scheduler.get_job(jid) is None
                or getattr(scheduler.get_job(jid), "name", "") != self._retrain_cron
            ):
                scheduler.add_job(
                    jobs.RETRAIN_MODEL, CronTrigger.from_crontab(self._retrain_cron, timezone="UTC"),
                    args=[model, "schedule", self._retrain_cron], id=jid, name=self._retrain_cron, replace_existing=True,
                )  # fmt: skip
                log.info("retrain of %s scheduled at cron %r", model, self._retrain_cron)

    def retrain_soon(self, model: str, trigger: str, trigger_ref: str) -> bool:
        """Queue a one-off retrain on the scheduler's executor (persisted, so a restart still runs it)."""
        scheduler = self._scheduler
        if scheduler is None:
            return False
        scheduler.add_job(
            jobs.RETRAIN_MODEL, "date", args=[model, trigger, trigger_ref], id=f"retrain-now:{model}",
            replace_existing=True,
        )  # fmt: skip
        return True

    def stop(self) -> None:
        """Stop running jobs here (leadership lost, or shutdown); the jobs stay stored for the next leader."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=False)
        jobs.uninstall()

    def next_run(self) -> datetime | None:
        if self._scheduler is None:
            return None
        times = [j.next_run_time for j in self._scheduler.get_jobs() if j.next_run_time is not None]
        return min(times) if times else None
