"""Adaptive micro-batching: no wait when idle, merging under load, failures kept to their request."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import pytest

from serving.batching import LONE_WINDOW, MicroBatcher


class Recorder:
    """A batch function that records its batches and can be held mid-call."""

    def __init__(self, fail_on: int | None = None, delay_s: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.threads: list[str] = []
        self.fail_on = fail_on
        self.delay_s = delay_s
        self.release = threading.Event()
        self.release.set()

    def __call__(self, items: Sequence[int]) -> list[int | BaseException]:
        self.batches.append(list(items))
        self.threads.append(threading.current_thread().name)
        self.release.wait(5)
        time.sleep(self.delay_s)
        return [ValueError(f"bad item {i}") if i == self.fail_on else i * 10 for i in items]


def test_a_lone_request_runs_at_once_and_alone() -> None:
    run = Recorder()

    async def main() -> float:
        batcher = MicroBatcher(run, max_rows=8)
        start = time.perf_counter()
        assert await batcher.submit(3, rows=1) == 30
        return time.perf_counter() - start

    assert asyncio.run(main()) < 0.5
    assert run.batches == [[3]]


def test_requests_arriving_during_a_batch_run_together_next_within_max_rows() -> None:
    run = Recorder()
    run.release.clear()  # hold the first batch while the others arrive

    async def main() -> list[int]:
        batcher = MicroBatcher(run, max_rows=4)
        first = asyncio.create_task(batcher.submit(0, rows=1))
        await asyncio.sleep(0.05)
        rest = [asyncio.create_task(batcher.submit(i, rows=1)) for i in range(1, 7)]
        await asyncio.sleep(0.05)
        run.release.set()
        return list(await asyncio.gather(first, *rest))

    assert asyncio.run(main()) == [0, 10, 20, 30, 40, 50, 60]
    assert run.batches == [[0], [1, 2, 3, 4], [5, 6]]


def test_rows_not_requests_bound_a_batch() -> None:
    run = Recorder()
    run.release.clear()

    async def main() -> None:
        batcher = MicroBatcher(run, max_rows=10)
        first = asyncio.create_task(batcher.submit(0, rows=1))
        await asyncio.sleep(0.05)
        rest = [asyncio.create_task(batcher.submit(i, rows=4)) for i in (1, 2, 3)]
        await asyncio.sleep(0.05)
        run.release.set()
        await asyncio.gather(first, *rest)

    asyncio.run(main())
    assert run.batches == [[0], [1, 2], [3]]  # 4 + 4 rows fit in 10, a third 4 does not


def test_an_item_error_fails_only_that_request() -> None:
    run = Recorder(fail_on=2)
    run.release.clear()

    async def main() -> list[object]:
        batcher = MicroBatcher(run, max_rows=8)
        tasks = [asyncio.create_task(batcher.submit(i, rows=1)) for i in range(4)]
        await asyncio.sleep(0.05)
        run.release.set()
        return list(await asyncio.gather(*tasks, return_exceptions=True))

    results = asyncio.run(main())
    assert results[0] == 0 and results[1] == 10 and results[3] == 30
    assert isinstance(results[2], ValueError) and "bad item 2" in str(results[2])


def test_a_raising_batch_function_fails_its_batch_and_the_next_batch_still_runs() -> None:
    calls = {"n": 0}

    def run(items: Sequence[int]) -> list[int | BaseException]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("runtime crashed")
        return [i for i in items]

    async def main() -> None:
        batcher = MicroBatcher(run, max_rows=8)
        with pytest.raises(RuntimeError, match="runtime crashed"):
            await batcher.submit(1, rows=1)
        assert await batcher.submit(2, rows=1) == 2

    asyncio.run(main())


def test_a_cancelled_caller_is_skipped() -> None:
    run = Recorder()
    run.release.clear()

    async def main() -> None:
        batcher = MicroBatcher(run, max_rows=8)
        first = asyncio.create_task(batcher.submit(0, rows=1))
        await asyncio.sleep(0.05)
        gone = asyncio.create_task(batcher.submit(1, rows=1))
        kept = asyncio.create_task(batcher.submit(2, rows=1))
        await asyncio.sleep(0.01)
        gone.cancel()
        run.release.set()
        assert await first == 0 and await kept == 20

    asyncio.run(main())
    assert run.batches == [[0], [2]]


def test_the_event_loop_keeps_running_while_a_batch_runs() -> None:
    run = Recorder(delay_s=0.3)

    async def main() -> int:
        batcher = MicroBatcher(run, max_rows=8)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        await batcher.submit(1, rows=1)
        task.cancel()
        return ticks

    assert asyncio.run(main()) >= 10  # the loop ticked during the 0.3 s call


def test_lone_fast_calls_run_inline_unless_they_may_block() -> None:
    run = Recorder()
    blocking = {"now": False}

    async def main() -> None:
        batcher = MicroBatcher(run, max_rows=8, inline_max_s=1.0, may_block=lambda rows: blocking["now"])
        await batcher.submit(1, rows=1)  # first call: speed unknown, runs on the batch thread
        await batcher.submit(2, rows=1)  # known fast, cannot block: inline
        blocking["now"] = True
        await batcher.submit(3, rows=1)  # could block: batch thread
        assert batcher.stats.inline == 1 and batcher.stats.batches == 3

    asyncio.run(main())
    assert run.threads[0] != threading.main_thread().name
    assert run.threads[1] == threading.main_thread().name
    assert run.threads[2] != threading.main_thread().name


def test_an_inline_request_runs_in_its_own_task_and_requests_arriving_together_still_batch() -> None:
    tasks: list[asyncio.Task[object] | None] = []

    def run(items: Sequence[int]) -> list[int]:
        try:
            tasks.append(asyncio.current_task())
        except RuntimeError:  # on the batch thread: no running loop
            tasks.append(None)
        return [i * 10 for i in items]

    async def main() -> None:
        batcher = MicroBatcher(run, max_rows=8, inline_max_s=1.0, may_block=lambda rows: False)
        await batcher.submit(1, rows=1)  # speed unknown: batch thread
        caller = asyncio.create_task(batcher.submit(2, rows=1))
        assert await caller == 20
        assert tasks[-1] is caller  # no batch task in between
        # requests that arrive in the same loop turn (a burst read from several connections) all
        # reach the queue before the first one decides to run alone: one batch, not 5 inline calls
        inline_before = batcher.stats.inline
        assert await asyncio.gather(*(batcher.submit(i, rows=1) for i in range(5))) == [0, 10, 20, 30, 40]
        assert batcher.stats.inline == inline_before and batcher.stats.largest == 5

    asyncio.run(main())


def test_a_caller_cancelled_while_deciding_to_run_alone_is_skipped() -> None:
    run = Recorder()

    async def main() -> None:
        batcher = MicroBatcher(run, max_rows=8, inline_max_s=1.0, may_block=lambda rows: False)
        await batcher.submit(1, rows=1)
        doomed = asyncio.create_task(batcher.submit(2, rows=1))
        await asyncio.sleep(0)  # it has queued and yielded once
        doomed.cancel()
        assert await batcher.submit(3, rows=1) == 30
        with pytest.raises(asyncio.CancelledError):
            await doomed

    asyncio.run(main())
    assert [2] not in run.batches and run.batches[-1] == [3]


def test_one_stall_does_not_push_lone_requests_off_the_loop_but_a_slow_model_does() -> None:
    run = Recorder()

    async def main() -> None:
        batcher = MicroBatcher(run, max_rows=8, inline_max_s=0.02, may_block=lambda rows: False)
        for i in range(3):
            await batcher.submit(i, rows=1)
        run.delay_s = 0.5  # one stall, 25× the limit
        await batcher.submit(10, rows=1)
        run.delay_s = 0.0
        inline_before = batcher.stats.inline
        await batcher.submit(11, rows=1)
        assert batcher.stats.inline == inline_before + 1  # one stall does not move the median
        run.delay_s = 0.06  # the model is really slow now: 3× the limit
        for i in range(12):
            await batcher.submit(20 + i, rows=1)
        run.delay_s = 0.0
        inline_before = batcher.stats.inline
        await batcher.submit(40, rows=1)
        assert batcher.stats.inline == inline_before  # the median rose above the limit: thread

    asyncio.run(main())


def test_stalls_short_of_half_the_window_keep_lone_requests_on_the_loop() -> None:
    run = Recorder()

    async def main() -> None:
        batcher = MicroBatcher(run, max_rows=8, inline_max_s=0.02, may_block=lambda rows: False)
        for i in range(LONE_WINDOW // 2 + 1):
            await batcher.submit(i, rows=1)
        run.delay_s = 0.1  # 7 stalls in a row at 5× the limit: a running average would cross it
        for i in range(LONE_WINDOW // 2):
            await batcher.submit(100 + i, rows=1)
        run.delay_s = 0.0
        inline_before = batcher.stats.inline
        await batcher.submit(200, rows=1)
        assert batcher.stats.inline == inline_before + 1

    asyncio.run(main())


def test_batches_do_not_count_towards_the_lone_call_estimate() -> None:
    run = Recorder()

    async def main() -> None:
        batcher = MicroBatcher(run, max_rows=8, inline_max_s=0.05, may_block=lambda rows: True)
        await batcher.submit(1, rows=1)
        estimate = batcher._call_s
        run.release.clear()
        first = asyncio.ensure_future(batcher.submit(2, rows=1))
        await asyncio.sleep(0.02)
        rest = [asyncio.ensure_future(batcher.submit(i, rows=1)) for i in range(3, 6)]
        await asyncio.sleep(0.02)
        run.delay_s = 0.2
        run.release.set()
        await asyncio.gather(first, *rest)
        assert run.batches == [[1], [2], [3, 4, 5]]
        lone = batcher._call_s  # after [2]: held ~0.02 s, then slept 0.2 s (the delay was set first)
        assert lone > estimate
        assert batcher.stats.largest == 3 and len(batcher._lone_s) == 2  # [3, 4, 5] added no sample
        assert batcher._lone_s[1] >= 0.2

    asyncio.run(main())


def test_max_rows_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_rows"):
        MicroBatcher(Recorder(), max_rows=0)


def test_a_lone_inline_request_goes_to_run_one_and_its_error_fails_only_it() -> None:
    run = Recorder()
    lone: list[int] = []

    def run_one(item: int) -> int:
        lone.append(item)
        if item == 4:
            raise ValueError("bad item 4")
        return item * 100

    async def main() -> None:
        batcher = MicroBatcher(
            run, max_rows=8, inline_max_s=1.0, may_block=lambda rows: False, run_one=run_one
        )
        assert await batcher.submit(1, rows=1) == 10  # speed unknown: a batch of one on the thread
        assert await batcher.submit(2, rows=1) == 200  # known fast: run_one, on the loop
        with pytest.raises(ValueError, match="bad item 4"):
            await batcher.submit(4, rows=1)
        assert await asyncio.gather(*(batcher.submit(i, rows=1) for i in (5, 6))) == [50, 60]  # batched
        assert batcher.stats.inline == 2

    asyncio.run(main())
    assert lone == [2, 4] and run.batches == [[1], [5, 6]]


def test_a_max_wait_lets_requests_that_arrive_apart_share_a_batch() -> None:
    for wait_s, expected in ((0.0, [[1], [2]]), (0.2, [[1, 2]])):
        run = Recorder()

        async def main(run: Recorder = run, wait_s: float = wait_s) -> None:
            batcher = MicroBatcher(run, max_rows=8, max_wait_s=wait_s)

            async def later() -> int:
                await asyncio.sleep(0.05)
                return await batcher.submit(2, rows=1)

            assert await asyncio.gather(batcher.submit(1, rows=1), later()) == [10, 20]
            batcher.close()

        asyncio.run(main())
        assert run.batches == expected, wait_s
