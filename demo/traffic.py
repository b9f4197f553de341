"""Steady background traffic against the serving API, as a client population would send it: one
instance per request, a request key for sticky canary routing, and true labels sent back as feedback
for a share of the answers."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx
import numpy as np
from numpy.typing import NDArray


@dataclass
class TrafficStats:
    sent: int = 0
    answered: int = 0
    failed: int = 0
    feedback: int = 0
    correct: int = 0
    served_by: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Answers per (version, role)."""
    errors: list[str] = field(default_factory=list)
    """The first few failures, as the client saw them."""


class Traffic:
    """``workers`` threads sending ``rps`` requests per second in all until :meth:`stop`."""

    def __init__(
        self,
        url: str,
        x: NDArray[np.float32],
        y: NDArray[np.int64],
        *,
        rps: float = 40.0,
        workers: int = 4,
        feedback_share: float = 0.0,
        seed: int = 0,
    ) -> None:
        if len(x) == 0 or len(x) != len(y):
            raise ValueError(f"traffic needs rows with labels, got {len(x)} rows and {len(y)} labels")
        self.url = url.rstrip("/")
        self._rps, self._workers = rps, workers
        self._lock = threading.Lock()
        self._x, self._y, self._feedback_share = x, y, feedback_share
        self._rng = np.random.default_rng(seed)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.stats = TrafficStats()

    def switch(self, x: NDArray[np.float32], y: NDArray[np.int64], *, feedback_share: float) -> None:
        """From now on send these rows, and label this share of the answers."""
        with self._lock:
            self._x, self._y, self._feedback_share = x, y, feedback_share

    def start(self) -> Traffic:
        for i in range(self._workers):
            thread = threading.Thread(target=self._work, name=f"traffic-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> TrafficStats:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        return self.stats

    def snapshot(self) -> TrafficStats:
        with self._lock:
            return TrafficStats(
                self.stats.sent, self.stats.answered, self.stats.failed, self.stats.feedback,
                self.stats.correct, Counter(self.stats.served_by), list(self.stats.errors),
            )  # fmt: skip

    def _next(self) -> tuple[NDArray[np.float32], int, bool]:
        with self._lock:
            i = int(self._rng.integers(len(self._x)))
            return self._x[i], int(self._y[i]), bool(self._rng.random() < self._feedback_share)

    def _work(self) -> None:
        period = self._workers / self._rps
        with httpx.Client(base_url=self.url, timeout=30) as client:
            due = time.monotonic()
            while not self._stop.is_set():
                row, label, give_feedback = self._next()
                self._one(client, row, label, give_feedback)
                due += period
                delay = due - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                else:
                    due = time.monotonic()  # behind: do not burst to catch up

    def _one(self, client: httpx.Client, row: NDArray[np.float32], label: int, give_feedback: bool) -> None:
        request_id = f"demo-{uuid.uuid4().hex[:16]}"
        body = {"instances": [row.tolist()], "request_id": request_id}
        try:
            r = client.post("/v1/predict", json=body, headers={"X-Request-Key": request_id})
            answer = r.json() if r.status_code == 200 else None
            error = None if answer is not None else f"HTTP {r.status_code}: {r.text[:200]}"
        except httpx.HTTPError as exc:
            answer, error = None, f"{type(exc).__name__}: {exc}"
        with self._lock:
            self.stats.sent += 1
            if answer is None:
                self.stats.failed += 1
                if len(self.stats.errors) < 5 and error:
                    self.stats.errors.append(error)
                return
            self.stats.answered += 1
            self.stats.correct += int(answer["classes"][0] == label)
            self.stats.served_by[(str(answer["version"]), str(answer["role"]))] += 1
        if give_feedback:
            try:
                fb = client.post("/v1/feedback", json={"request_id": request_id, "label": label})
                if fb.status_code == 200:
                    with self._lock:
                        self.stats.feedback += 1
            except httpx.HTTPError:
                pass  # feedback is best effort, as a labelling team's would be
