"""The prediction log on SQLite and PostgreSQL: batched, flushed on close, never losing an accepted record."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from sqlalchemy import Engine, func, select

from lifecycle.db import session_factory
from lifecycle.db.schema import PredictionRow
from lifecycle.db.types import utcnow
from serving.prediction_log import LogOverloadedError, PredictionLog, RecordBatch


@pytest.fixture
def engine(migrated_engine: Engine) -> Engine:
    return migrated_engine


def records(*ids: int) -> RecordBatch:
    """One request's rows, as the predictor submits them: row ``i`` is ``r{i}`` with features [i, 0.5]."""
    x = np.array([[float(i), 0.5] for i in ids], dtype=np.float32)
    return RecordBatch(
        [f"r{i}" for i in ids], utcnow(), "m", "1", "champion", x, [i % 3 for i in ids], [0.9] * len(ids), 1.2
    )


def count(engine: Engine) -> int:
    with session_factory(engine)() as session:
        return int(session.scalar(select(func.count()).select_from(PredictionRow)) or 0)


def test_concurrent_writers_lose_nothing_and_close_flushes(engine: Engine) -> None:
    log = PredictionLog(session_factory(engine), max_queue=1000, batch_size=50, flush_interval_s=0.05)

    def writer(offset: int) -> None:
        for i in range(250):
            log.submit(records(offset + i))

    threads = [threading.Thread(target=writer, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    assert log.accepted == log.written == count(engine) == 1000
    with session_factory(engine)() as session:
        row = session.scalars(select(PredictionRow).where(PredictionRow.request_id == "r7")).one()
    assert row.features == [7.0, 0.5] and row.predicted_class == 1 and row.ts.tzinfo is not None


def test_a_full_queue_pushes_back_and_rejects_whole_requests(engine: Engine) -> None:
    sessions = session_factory(engine)
    log = PredictionLog(sessions, max_queue=10, batch_size=10, flush_interval_s=0.05, submit_timeout_s=0.2)
    log._stop.set()  # freeze the writer's intake to fill the queue deterministically
    log._thread.join()
    log._stop.clear()
    log.submit(records(*range(8)))
    with pytest.raises(LogOverloadedError, match="queue full"):
        log.submit(records(100, 101, 102))  # all-or-nothing: none of the 3 is kept
    assert log.rejected == 3 and log.pending == 8
    log._thread = threading.Thread(target=log._run, daemon=True)
    log._thread.start()
    log.close()
    assert count(engine) == 8 == log.written


def test_write_failures_are_retried_until_the_database_answers(engine: Engine) -> None:
    sessions = session_factory(engine)
    log = PredictionLog(sessions, flush_interval_s=0.05)
    original = log._sessions
    failures = {"left": 2}

    class Flaky:
        def begin(self):  # type: ignore[no-untyped-def]
            if failures["left"]:
                failures["left"] -= 1
                raise ConnectionError("database went away")
            return original.begin()

    log._sessions = Flaky()  # type: ignore[assignment]
    log.submit(records(1, 2))
    log.close()
    assert log.write_failures == 2 and log.written == 2 == count(engine)


def test_a_model_calls_rows_are_kept_exactly_as_float32_and_too_many_are_refused_at_once(
    engine: Engine,
) -> None:
    sessions = session_factory(engine)
    log = PredictionLog(sessions, max_queue=100, flush_interval_s=0.05, submit_timeout_s=30)
    x = np.random.default_rng(1).standard_normal((3, 5)).astype(np.float32) * 1e3
    log.submit(
        RecordBatch(["a:0", "a:1", "a:2"], utcnow(), "m", "1", "champion", x, [2, 0, 1], [0.5, 0.9, 0.7], 0.4)
    )
    log.submit(RecordBatch(["s"], utcnow(), "m", "2", "shadow", None, None, None, 1.0, "RuntimeError('x')"))
    with pytest.raises(LogOverloadedError, match="exceed"):  # never fits: no 30 s wait for room
        log.submit(
            RecordBatch([f"b{i}" for i in range(101)], utcnow(), "m", "1", "champion", None, None, None, 0.0)
        )
    log.close()
    assert log.written == 4 and log.rejected == 101
    with sessions() as session:
        rows = {r.request_id: r for r in session.scalars(select(PredictionRow))}
    stored = np.array([rows[f"a:{i}"].features for i in range(3)], dtype=np.float32)
    assert np.array_equal(stored, x)  # the shortest text that reads back as the same float32
    assert [rows[f"a:{i}"].predicted_class for i in range(3)] == [2, 0, 1]
    assert rows["a:1"].confidence == 0.9 and rows["a:1"].latency_ms == 0.4
    assert (
        rows["s"].features == []
        and rows["s"].predicted_class is None
        and rows["s"].error == "RuntimeError('x')"
    )
