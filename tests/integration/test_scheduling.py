"""The one scheduler, for real (APScheduler, jobs stored in SQLite): interval jobs, one-off jobs and
cron jobs reach their handlers by kind; jobs keep their stable ids, run only where the scheduler
runs, and survive a restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from lifecycle.scheduling import Scheduler


class Calls:
    def __init__(self) -> None:
        self.seen: list[tuple[str, ...]] = []
        self.lock = threading.Lock()

    def handler(self, *args: str) -> None:
        with self.lock:
            self.seen.append(args)

    def wait(self, check: Callable[[list[tuple[str, ...]]], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if check(list(self.seen)):
                    return True
            time.sleep(0.05)
        return False


def _stored(url: str) -> list[str]:
    engine = create_engine(url)
    with engine.connect() as connection:
        ids = sorted(row[0] for row in connection.execute(text("SELECT id FROM apscheduler_jobs")))
    engine.dispose()
    return ids


def test_interval_and_one_off_jobs_reach_their_handlers_and_survive_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    checks, retrains = Calls(), Calls()
    scheduler = Scheduler(url, {"drift-check": checks.handler, "retrain": retrains.handler})
    scheduler.start()
    try:
        scheduler.keep_interval_jobs("drift-monitor", "drift-check", {"a": ("a",), "b": ("b",)}, 0.5)
        assert checks.wait(lambda seen: seen.count(("a",)) >= 2 and seen.count(("b",)) >= 2, 10)
        assert scheduler.run_soon("retrain-now:a", "retrain", ("a", "drift", "check 7"))
        assert retrains.wait(lambda seen: seen == [("a", "drift", "check 7")], 10)
        scheduler.keep_interval_jobs(
            "drift-monitor", "drift-check", {"a": ("a",)}, 0.5
        )  # b lost its champion
        assert _stored(url) == ["drift-monitor:a"]
    finally:
        scheduler.stop()
    stopped_at = len(checks.seen)
    time.sleep(1.2)
    assert len(checks.seen) <= stopped_at + 1  # nothing runs where the scheduler was stopped
    assert _stored(url) == ["drift-monitor:a"]  # the job stays stored for the next leader

    again = Calls()
    successor = Scheduler(url, {"drift-check": again.handler})
    successor.start()
    try:
        assert again.wait(lambda seen: ("a",) in seen, 10)  # picked up without being added again
    finally:
        successor.stop()


def test_a_job_whose_handler_fails_is_logged_and_keeps_its_schedule(tmp_path: Path) -> None:
    calls = Calls()

    def failing(*args: str) -> None:
        calls.handler(*args)
        raise RuntimeError("the check failed")

    scheduler = Scheduler(f"sqlite:///{tmp_path / 'jobs.db'}", {"drift-check": failing})
    scheduler.start()
    try:
        scheduler.keep_interval_jobs("drift-monitor", "drift-check", {"a": ("a",)}, 0.3)
        assert calls.wait(lambda seen: len(seen) >= 3, 10)
    finally:
        scheduler.stop()


@pytest.mark.slow
def test_a_cron_retrain_fires_at_its_minute(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    retrains = Calls()
    scheduler = Scheduler(url, {"retrain": retrains.handler})
    scheduler.start()
    try:
        cron = "* * * * *"
        scheduler.keep_cron_jobs("retrain-cron", "retrain", {"digits": ("digits", "schedule", cron)}, cron)
        assert _stored(url) == ["retrain-cron:digits"]
        assert retrains.wait(lambda seen: seen == [("digits", "schedule", cron)], 70)
    finally:
        scheduler.stop()
