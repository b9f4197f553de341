"""Shadow mirroring off the request path: a bounded queue and one worker that runs the challenger.

When the queue is full a mirrored request is dropped and counted, never waited for; a challenger
failure is logged as its error and never reaches the client.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from numpy.typing import NDArray

from lifecycle.tensors import merge_compatible
from serving.routing import Challenger

log = logging.getLogger(__name__)

RunShadow = Callable[[Challenger, dict[str, NDArray[Any]], list[str]], None]


@dataclass(frozen=True)
class _Job:
    challenger: Challenger
    inputs: dict[str, NDArray[Any]]
    ids: list[str]


class ShadowMirror:
    def __init__(self, run: RunShadow, *, max_queue: int = 1000, max_batch: int = 64) -> None:
        self._run = run
        self._max_batch = max_batch
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=max_queue)
        self.mirrored = 0
        self.dropped = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._work, name="shadow-mirror", daemon=True)
        self._thread.start()

    def offer(self, challenger: Challenger, inputs: dict[str, NDArray[Any]], ids: list[str]) -> bool:
        """Queue one mirrored request (named input tensors, one id per item); False (and counted)
        when the queue is full."""
        try:
            self._queue.put_nowait(_Job(challenger, inputs, ids))
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
        _lower_priority()
        while True:
            jobs, stop = self._take()
            # requests queued meanwhile run as one batch where their item shapes match: one runtime
            # call, one log submit
            for challenger, group in _by_challenger(jobs):
                for inputs, members in merge_compatible([job.inputs for job in group]):
                    try:
                        self._run(challenger, inputs, [i for m in members for i in group[m].ids])
                        self.mirrored += len(members)
                    except Exception as exc:  # recorded as the challenger's error by the runner
                        self.failed += len(members)
                        log.debug("shadow run failed: %s", exc)
            if stop:
                return

    def _take(self) -> tuple[list[_Job], bool]:
        first = self._queue.get()
        if first is None:
            return [], True
        jobs = [first]
        while len(jobs) < self._max_batch:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            jobs.append(job)
        return jobs, False

    def stats(self) -> dict[str, int]:
        return {
            "mirrored": self.mirrored,
            "dropped": self.dropped,
            "failed": self.failed,
            "pending": self.pending,
        }


def _lower_priority() -> None:
    """Mirrored runs yield the CPU to requests: on Linux a thread has its own nice value."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError) as exc:  # not Linux, or not permitted: run at normal priority
        log.debug("could not lower the shadow thread's priority: %s", exc)


def _by_challenger(jobs: list[_Job]) -> list[tuple[Challenger, list[_Job]]]:
    groups: dict[int, tuple[Challenger, list[_Job]]] = {}
    for job in jobs:
        groups.setdefault(id(job.challenger.shadow), (job.challenger, []))[1].append(job)
    return list(groups.values())
