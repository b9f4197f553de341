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

from monitoring import jobs
from monitoring.monitor import Monitor

log = logging.getLogger(__name__)

JOB_PREFIX = "drift-monitor"


def job_id(model: str) -> str:
    return f"{JOB_PREFIX}:{model}"


class MonitorScheduler:
    def __init__(self, database_url: str, monitor: Monitor) -> None:
        self._url = database_url
        self._monitor = monitor
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
            executors={"default": ThreadPoolExecutor(1)},
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
        wanted = {job_id(m): m for m in models}
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
