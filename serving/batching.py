"""Adaptive micro-batching for the JSON predict API, with no added wait.

A request that finds the model idle runs at once, alone; requests that arrive while a batch runs
queue up and run together as the next batch (up to ``max_rows`` rows). Under low load nothing waits
for company; under high load per-request runtime calls turn into one call per batch. This is the
"batch whatever queued while the previous batch ran" policy of inference servers with a zero queue
delay; BentoML's own dispatcher (the array API) instead waits to fill batches, which costs tens of
milliseconds at concurrency 1.

Batches run on one dedicated thread, so the event loop keeps accepting and parsing requests (and
answering health checks) while the runtime works, and a blocking call in the batch function (the
prediction log's back-pressure) never blocks the loop. One exception: a lone request, when recent
calls were fast (``inline_max_s``) and ``may_block`` says the call cannot block, runs on the event
loop itself. The hop to the thread and back cost ~0.5 ms per request at concurrency 1 on the 2-core
machine this was measured on (ONNX Runtime call ~1 ms), a third of the whole request.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

LONE_WINDOW = 15
"""Lone calls whose median decides whether the next lone request may run on the event loop."""

BatchFunction = Callable[[Sequence[Item]], Sequence["Result | BaseException"]]


@dataclass(slots=True)
class _Pending(Generic[Item, Result]):
    item: Item
    rows: int
    future: asyncio.Future[Result]


@dataclass
class BatchStats:
    batches: int = 0
    inline: int = 0
    items: int = 0
    largest: int = 0


class MicroBatcher(Generic[Item, Result]):
    """``await submit(item, rows)`` answers with ``run([... item ...])``'s entry for ``item``.

    ``run`` gets every item of a batch and returns one result or exception per item, in order; an
    exception returned for one item fails only that item's ``submit``. An exception *raised* by
    ``run`` fails the whole batch.
    """

    def __init__(
        self,
        run: BatchFunction[Item, Result],
        *,
        max_rows: int,
        inline_max_s: float = 0.0,
        may_block: Callable[[int], bool] = lambda rows: True,
        run_one: Callable[[Item], Result] | None = None,
        name: str = "batcher",
        max_wait_s: float = 0.0,
    ) -> None:
        """``run_one``: answers a lone request that runs at once (raises instead of returning an
        exception); without it, ``run`` gets a batch of one. ``max_wait_s``: how long a batch that
        is not full waits for more (Triton's ``max_queue_delay``); 0, the default, never waits."""
        if max_rows < 1:
            raise ValueError(f"max_rows must be at least 1, got {max_rows}")
        self._run = run
        self.max_rows = max_rows
        self._inline_max_s = inline_max_s
        self._may_block = may_block
        self._run_one = run_one
        self._max_wait_s = max_wait_s
        self._lone_s: deque[float] = deque(maxlen=LONE_WINDOW)  # recent lone calls; none: unknown
        self._call_s = float("inf")  # their median; inline only once it is known
        self._queue: deque[_Pending[Item, Result]] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self.stats = BatchStats()

    async def submit(self, item: Item, rows: int) -> Result:
        loop = asyncio.get_running_loop()
        pending: _Pending[Item, Result] = _Pending(item, rows, loop.create_future())
        self._queue.append(pending)
        if self._worker is None and len(self._queue) == 1 and self._max_wait_s <= 0:
            # The batcher is idle. Yield once, so that requests which arrived together reach the
            # queue behind this one (they then start the batch worker); if none did, run this one
            # here, in its own task: no batch task, and one loop turn fewer than through it.
            try:
                await asyncio.sleep(0)
            except asyncio.CancelledError:
                pending.future.cancel()  # the worker skips it
                raise
            if self._worker is None and len(self._queue) == 1 and self._lone_may_run_inline(rows):
                self._queue.popleft()
                return self._run_inline(item)
        if self._worker is None:
            self._worker = loop.create_task(self._drain())
        return await pending.future

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def _take(self) -> list[_Pending[Item, Result]]:
        """The next batch: at least one item, then more while they fit in ``max_rows``."""
        batch = [self._queue.popleft()]
        rows = batch[0].rows
        while self._queue and rows + self._queue[0].rows <= self.max_rows:
            rows += self._queue[0].rows
            batch.append(self._queue.popleft())
        return batch

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self._max_wait_s > 0 and sum(p.rows for p in self._queue) < self.max_rows:
                await asyncio.sleep(self._max_wait_s)  # let the batch fill
            batch = [p for p in self._take_live() if not p.future.done()]  # skip cancelled callers
            if not batch:
                if not self._queue:
                    self._worker = None  # no await since the check: a new submit starts a new drain
                    return
                continue
            self.stats.batches += 1
            self.stats.items += len(batch)
            self.stats.largest = max(self.stats.largest, len(batch))
            items = [p.item for p in batch]
            try:
                if self._inline(batch):
                    self.stats.inline += 1
                    results = self._timed_run(items)
                else:
                    results = await loop.run_in_executor(self._executor, self._timed_run, items)
                if len(results) != len(batch):
                    raise RuntimeError(
                        f"batch function returned {len(results)} results for {len(batch)} items"
                    )
            except Exception as exc:  # handed to every caller of the batch
                results = [exc] * len(batch)
            for pending, result in zip(batch, results, strict=True):
                if pending.future.done():
                    continue
                if isinstance(result, BaseException):
                    pending.future.set_exception(result)
                else:
                    pending.future.set_result(result)

    def _timed_run(self, items: list[Item]) -> Sequence[Result | BaseException]:
        start = time.perf_counter()
        try:
            return self._run(items)
        finally:
            if len(items) == 1:  # the estimate is for lone calls: the only ones that may run inline
                self._observe(time.perf_counter() - start)

    def _observe(self, elapsed: float) -> None:
        """The median of the last ``LONE_WINDOW`` lone calls: stalls (a noisy neighbour, a GC
        pause) move it only once they are most of the window, so they do not send the following
        requests through the thread hop, while a model that is really slow lifts it above the limit
        within a few calls. (A capped running average was tried first: on a 2-core VM a few stalls
        lifted it over the limit, and a third of the lone requests to a 1 ms model took the hop.)"""
        self._lone_s.append(elapsed)
        self._call_s = statistics.median(self._lone_s)

    def _inline(self, batch: list[_Pending[Item, Result]]) -> bool:
        return len(batch) == 1 and not self._queue and self._lone_may_run_inline(batch[0].rows)

    def _lone_may_run_inline(self, rows: int) -> bool:
        """Whether a lone request (nothing else queued) may run on the event loop."""
        return self._call_s <= self._inline_max_s and not self._may_block(rows)

    def _run_inline(self, item: Item) -> Result:
        """A lone request that found the batcher idle, answered in its caller's task."""
        self.stats.batches += 1
        self.stats.inline += 1
        self.stats.items += 1
        self.stats.largest = max(self.stats.largest, 1)
        if self._run_one is not None:
            start = time.perf_counter()
            try:
                return self._run_one(item)
            finally:
                self._observe(time.perf_counter() - start)
        results = self._timed_run([item])
        if len(results) != 1:
            raise RuntimeError(f"batch function returned {len(results)} results for 1 item")
        if isinstance(results[0], BaseException):
            raise results[0]
        return results[0]

    def _take_live(self) -> list[_Pending[Item, Result]]:
        return self._take() if self._queue else []
