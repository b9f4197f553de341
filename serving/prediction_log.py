"""The prediction log: every served prediction is written to SQL asynchronously, in batches (one
transaction per flush interval or per full batch), with bounded memory (counted in records).
``submit`` applies back-pressure (waits for room) and, past its timeout, raises ``LogOverloadedError``
so the caller answers 503 — an accepted record is never dropped. ``close`` flushes everything that
was accepted.

The request path hands over what one model call answered as a :class:`RecordBatch` of arrays; the
writer thread turns it into rows. (Building a record object and a feature list per row cost the
request path more than the rest of the log.)"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Table, insert
from sqlalchemy.orm import Session, sessionmaker

from lifecycle.db.schema import PredictionRow
from lifecycle.errors import LifecycleError

log = logging.getLogger(__name__)

PREDICTIONS = cast(Table, PredictionRow.__table__)


class LogOverloadedError(LifecycleError):
    """The log queue stayed full for longer than the submit timeout."""


@dataclass(slots=True)
class RecordBatch:
    """The rows of one model call: row ``i`` is ``request_ids[i]``, ``features[i]`` (not stored when
    None: a mirrored row's input is the champion's row with the same id), ``classes[i]`` and
    ``confidences[i]`` (None when the call failed). The arrays are not copied: they must not change,
    and neither may the batch once submitted. (Not frozen: a frozen dataclass sets each field through
    ``object.__setattr__``, a cost paid on every request.)"""

    request_ids: Sequence[str]
    ts: datetime
    model_name: str
    version: str
    role: str
    features: NDArray[np.float32] | None
    classes: Sequence[int] | None
    confidences: Sequence[float] | None
    latency_ms: float
    """Per row: the call's time divided by its rows."""
    error: str | None = None
    summaries: Sequence[dict[str, Any]] | None = None
    """Per row: what the model answered, for tasks without a class (``lifecycle.answers``)."""
    inputs_refs: Sequence[str | None] | None = None
    """Per row: where its sampled input tensors are kept (``lifecycle.input_store``)."""

    def __len__(self) -> int:
        return len(self.request_ids)

    def rows(self) -> list[dict[str, object]]:
        n = len(self.request_ids)
        # rows stay arrays: the engine's JSON serialiser writes them (lifecycle.db.engine.json_dumps)
        features = list(np.ascontiguousarray(self.features)) if self.features is not None else [[]] * n
        classes = self.classes if self.classes is not None else [None] * n
        confidences = self.confidences if self.confidences is not None else [None] * n
        summaries = self.summaries if self.summaries is not None else [None] * n
        refs = self.inputs_refs if self.inputs_refs is not None else [None] * n
        return [
            {
                "request_id": self.request_ids[i], "ts": self.ts, "model_name": self.model_name,
                "version": self.version, "role": self.role, "features": features[i],
                "predicted_class": classes[i], "confidence": confidences[i],
                "latency_ms": self.latency_ms, "error": self.error, "summary": summaries[i],
                "inputs_ref": refs[i],
            }
            for i in range(n)
        ]  # fmt: skip


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
        self._max_queue = max_queue
        self._chunks: deque[RecordBatch] = deque()
        self._pending = 0  # records in _chunks
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

    def submit(self, chunk: RecordBatch) -> None:
        """Accept ``chunk`` or raise ``LogOverloadedError``: all of its records or none (no request's
        records are split or interleaved with another's)."""
        n = len(chunk)
        deadline = None  # taken when the queue is first found full
        while True:
            with self._lock:
                if self._stop.is_set():
                    raise LogOverloadedError("the prediction log is shutting down")
                if self._max_queue - self._pending >= n:
                    self._chunks.append(chunk)
                    self._pending += n
                    self.accepted += n
                    full = self._pending >= self._batch_size
                    break
                if n > self._max_queue:
                    self.rejected += n
                    raise LogOverloadedError(
                        f"{n} records exceed the prediction log queue ({self._max_queue})"
                    )
                if deadline is None:
                    deadline = time.monotonic() + self._submit_timeout_s
                elif time.monotonic() >= deadline:
                    self.rejected += n
                    raise LogOverloadedError(
                        f"prediction log queue full ({self._max_queue} records) for {self._submit_timeout_s:.1f} s"
                    )
            time.sleep(0.005)  # back-pressure: wait for the writer to make room
        if full:
            self._wake.set()  # a full batch is waiting: write it now, not at the next interval

    def has_room(self, records: int) -> bool:
        """Whether ``records`` more would be accepted now without waiting."""
        return self._max_queue - self._pending >= records

    @property
    def pending(self) -> int:
        return self._pending

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

    def _take_batch(self) -> list[dict[str, object]]:
        chunks: list[RecordBatch] = []
        taken = 0
        with self._lock:
            while self._chunks and taken < self._batch_size:
                chunk = self._chunks.popleft()
                chunks.append(chunk)
                taken += len(chunk)
            self._pending -= taken
        return [row for chunk in chunks for row in chunk.rows()]

    def _write(self, rows: list[dict[str, object]]) -> None:
        delay = 0.1
        while True:
            try:
                with self._sessions.begin() as session:
                    # Core insert of plain rows (executemany), not the ORM bulk path
                    session.connection().execute(insert(PREDICTIONS), rows)
                self.written += len(rows)
                return
            except Exception:
                # keep the records: retry with back-off until the database answers again
                self.write_failures += 1
                log.exception(
                    "prediction log write of %d records failed; retrying in %.1f s", len(rows), delay
                )
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
