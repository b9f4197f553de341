"""The one APScheduler scheduler: jobs persisted in our database (SQLAlchemy job store), started
only by the control-plane leader, so two control planes never both run a job (STACK_NOTES §7)."""

from __future__ import annotations

import logging
from datetime import datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from monitoring import jobs
from monitoring.monitor import Monitor

log = logging.getLogger(__name__)

MONITOR_JOB = "drift-monitor"


class MonitorScheduler:
    def __init__(self, database_url: str, monitor: Monitor) -> None:
        self._url = database_url
        self._monitor = monitor
        self._scheduler: BackgroundScheduler | None = None

    @property
    def running(self) -> bool:
        return self._scheduler is not None and bool(self._scheduler.running)

    def start(self) -> None:
        """Start (the leader calls this); re-adding the job under its stable id replaces the stored
        one, so a restart never duplicates it and picks up a changed interval."""
        if self.running:
            return
        jobs.install(self._monitor)
        scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=self._url, tablename="apscheduler_jobs")},
            executors={"default": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone="UTC",
        )
        scheduler.add_job(
            jobs.CHECK_ALL, "interval", seconds=self._monitor.settings.interval_s, id=MONITOR_JOB,
            name="drift monitor", replace_existing=True,
        )  # fmt: skip
        scheduler.start()
        self._scheduler = scheduler
        log.info("drift monitor scheduled every %.0f s", self._monitor.settings.interval_s)

    def stop(self) -> None:
        """Stop running jobs here (leadership lost, or shutdown); the job stays stored for the next leader."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=False)
        jobs.uninstall()

    def next_run(self) -> datetime | None:
        if self._scheduler is None:
            return None
        job = self._scheduler.get_job(MONITOR_JOB)
        return None if job is None else job.next_run_time
