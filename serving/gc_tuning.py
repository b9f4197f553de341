"""The cyclic garbage collector, set up for a request server, and a watch on its pauses.

The serving worker imports MLflow, pandas, SQLAlchemy and BentoML: ~300,000 objects that live as
long as the process. CPython 3.11 walks all of them in every full (generation 2) collection, with
the event loop stopped: ~170–190 ms each on the 2-core machine, 19–22 times in a 40 s load test.
Batching made it worse: 32 requests in flight keep their objects alive at once, so the young
generations overflow ~10× more often per request than with batching off, and survivors push full
collections. Measured side by side (digits teacher, concurrency 32): 574 req/s untuned, 670 with the
freeze, 719 with the freeze and a generation-0 threshold of 5,000; time in the collector 5.1 s →
0.25 s.

- :func:`settle_heap` runs one full collection and then ``gc.freeze()``: what exists once the
  service is built and its first model loaded is never scanned again. Frozen objects are still
  freed by reference counting when dropped (a swapped-out model is); only a reference cycle among
  them would outlive its use.
- A higher generation-0 threshold: fewer young collections, each still small.
"""

from __future__ import annotations

import gc
import time
from typing import Any


class GcWatch:
    """Collections per generation, and the time the collector stopped the process (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.pause_s = 0.0
        self.longest_s = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        # No lock: the collector holds the GIL from "start" to "stop", so no other collection and no
        # reader interleaves; and a lock here could deadlock (a reader holding it allocates, the
        # allocation starts a collection, the collection calls this in the same thread).
        if phase == "start":
            self._started = time.perf_counter()
            return
        elapsed = time.perf_counter() - self._started
        self.collections[info["generation"]] += 1
        self.pause_s += elapsed
        self.longest_s = max(self.longest_s, elapsed)

    def status(self) -> dict[str, object]:
        return {
            "frozen_objects": gc.get_freeze_count(),
            "thresholds": list(gc.get_threshold()),
            "collections": list(self.collections),
            "pause_s": round(self.pause_s, 4),
            "longest_pause_ms": round(self.longest_s * 1e3, 3),
        }


WATCH = GcWatch()
"""One per process: the collector is."""


def watch() -> GcWatch:
    """Start counting collections (once per process) and return the watch."""
    if WATCH not in gc.callbacks:
        gc.callbacks.append(WATCH)
    return WATCH


def settle_heap(*, freeze: bool, gen0_threshold: int) -> None:
    """Collect and freeze what exists now (``freeze``), and set the generation-0 threshold (0: keep
    Python's). Call once the process is built and before it takes traffic: the collection it runs
    takes as long as a full one (~0.2 s here)."""
    if freeze:
        gc.collect()
        gc.freeze()
    if gen0_threshold:
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(gen0_threshold, gen1, gen2)
