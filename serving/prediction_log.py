"""The prediction log: every served prediction is written to SQL asynchronously, in batches (one
transaction per flush interval or per full batch), with bounded memory. ``submit`` applies back-pressure (waits for room) and, past its timeout, raises
``LogOverloadedError`` so the caller answers 503 — an accepted record is never dropped. ``close``
flushes everything that was accepted."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session, sessionmaker

from lifecycle.db.schema import PredictionRow
from lifecycle.errors import LifecycleError

log = logging.getLogger(__name__)

PREDICTIONS = cast(Table, PredictionRow.__table__)


class LogOverloadedError(LifecycleError):
    """The log queue stayed full for longer than the submit timeout."""


@dataclass(frozen=True)
class PredictionRecord:
    request_id: str
    ts: datetime
    model_name: str
    version: str
    role: str
    features: list[float]
    predicted_class: int | None
    confidence: float | None
    latency_ms: float
    error: str | None = None


class PredictionLog:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        max_queue: int = 10_000,
        batch_size: int = 500,
        flush_interval_s: float = 0.5,
        submit_timeout_s: float = 2.0,
    ) -> None:
        self._sessions = sessions
        self._queue: queue.Queue[PredictionRecord] = queue.Queue(maxsize=max_queue)
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._submit_timeout_s = submit_timeout_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self.accepted = 0
        self.written = 0
        self.rejected = 0
        self.write_failures = 0
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def submit(self, records: Sequence[PredictionRecord]) -> None:
        """Accept ``records`` or raise ``LogOverloadedError`` (nothing of a rejected call is kept)."""
        deadline = time.monotonic() + self._submit_timeout_s
        with self._lock:  # all-or-nothing per request: no other request interleaves its records
            if self._stop.is_set():
                raise LogOverloadedError("the prediction log is shutting down")
            while self._queue.maxsize - self._queue.qsize() < len(records):
                if time.monotonic() >= deadline:
                    self.rejected += len(records)
                    raise LogOverloadedError(
                        f"prediction log queue full ({self._queue.maxsize} records) for {self._submit_timeout_s:.1f} s"
                    )
                time.sleep(0.005)
            for record in records:
                self._queue.put_nowait(record)
            self.accepted += len(records)
        if self._queue.qsize() >= self._batch_size:
            self._wake.set()  # a full batch is waiting: write it now, not at the next interval

    def has_room(self, records: int) -> bool:
        """Whether ``records`` more would be accepted now without waiting."""
        return self._queue.maxsize - self._queue.qsize() >= records

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop accepting, write everything accepted, and stop the writer."""
        with self._lock:  # after this, no submit can add a record the writer's last drain would miss
            self._stop.set()
        self._wake.set()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.error(
                "prediction log writer did not finish within %.0f s; %d records pending",
                timeout_s,
                self.pending,
            )

    def _run(self) -> None:
        # Linger: one transaction per flush interval (or per full batch), not one per request: at low
        # load a commit per record cost the request path ~0.4 ms of GIL time each.
        while True:
            self._wake.wait(self._flush_interval_s)
            self._wake.clear()
            stopping = self._stop.is_set()
            while batch := self._take_batch():
                self._write(batch)
            if stopping:
                return

    def _take_batch(self) -> list[PredictionRecord]:
        batch: list[PredictionRecord] = []
        while len(batch) < self._batch_size:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _write(self, batch: list[PredictionRecord]) -> None:
        rows = [record.__dict__ for record in batch]
        delay = 0.1
        while True:
            try:
                with self._sessions.begin() as session:
                    # Core insert of plain rows (executemany), not the ORM bulk path
                    session.connection().execute(insert(PREDICTIONS), rows)
                self.written += len(batch)
                return
            except Exception:
                # keep the records: retry with back-off until the database answers again
                self.write_failures += 1
                log.exception(
                    "prediction log write of %d records failed; retrying in %.1f s", len(batch), delay
                )
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
