"""Shadow mirroring off the request path: a bounded queue and one worker that runs the challenger.

When the queue is full a mirrored request is dropped and counted, never waited for; a challenger
failure is logged as its error and never reaches the client.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from serving.routing import Challenger

log = logging.getLogger(__name__)

RunShadow = Callable[[Challenger, NDArray[np.float32], str], None]


@dataclass(frozen=True)
class _Job:
    challenger: Challenger
    x: NDArray[np.float32]
    request_id: str


class ShadowMirror:
    def __init__(self, run: RunShadow, *, max_queue: int = 1000) -> None:
        self._run = run
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=max_queue)
        self.mirrored = 0
        self.dropped = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._work, name="shadow-mirror", daemon=True)
        self._thread.start()

    def offer(self, challenger: Challenger, x: NDArray[np.float32], request_id: str) -> bool:
        """Queue one mirrored request; False (and counted) when the queue is full."""
        try:
            self._queue.put_nowait(_Job(challenger, x, request_id))
            return True
        except queue.Full:
            self.dropped += 1
            return False

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def close(self, timeout_s: float = 10.0) -> None:
        try:
            self._queue.put(None, timeout=timeout_s)
        except queue.Full:
            log.warning("shadow queue still full at shutdown; %d mirrored requests dropped", self.pending)
            return
        self._thread.join(timeout_s)

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                self._run(job.challenger, job.x, job.request_id)
                self.mirrored += 1
            except Exception as exc:  # recorded as the challenger's error by the runner
                self.failed += 1
                log.debug("shadow run failed: %s", exc)

    def stats(self) -> dict[str, int]:
        return {
            "mirrored": self.mirrored,
            "dropped": self.dropped,
            "failed": self.failed,
            "pending": self.pending,
        }
