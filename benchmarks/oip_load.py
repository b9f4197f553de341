"""Load for the Open Inference Protocol part of the serving benchmark: requests as a client encodes them
(JSON, or binary tensors), latency at concurrency 1, throughput at 32, fixed-rate (open-loop) load on
several models at once, and the service's status."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from lifecycle.runtimes.onnxruntime import OrtRunner
from serving.oip import DATATYPES, HEADER_LENGTH


@dataclass
class Served:
    """A registered model as the benchmark calls it."""

    name: str
    onnx: Path
    feeds: dict[str, np.ndarray]
    binary: bool
    rate: float
    """Requests per second under the mixed load."""


def body_of(model: Served) -> tuple[bytes, dict[str, str]]:
    """The request a client sends: JSON numbers, or (binary) a JSON header followed by the raw
    tensors (the protocol's binary tensor data extension)."""
    inputs = []
    for name, array in model.feeds.items():
        entry: dict[str, Any] = {
            "name": name,
            "shape": list(array.shape),
            "datatype": DATATYPES[array.dtype.name],
        }
        if model.binary:
            entry["parameters"] = {"binary_data_size": array.nbytes}
        else:
            entry["data"] = array.ravel().tolist()
        inputs.append(entry)
    message: dict[str, Any] = {"inputs": inputs}
    if model.binary:  # and the answer in binary too, as a binary client asks (a JSON list of 49,152
        message["parameters"] = {"binary_data_output": True}  # floats costs the server ~30 ms)
    header = json.dumps(message).encode()
    if not model.binary:
        return header, {"Content-Type": "application/json"}
    payload = b"".join(np.ascontiguousarray(a).tobytes() for a in model.feeds.values())
    return header + payload, {HEADER_LENGTH: str(len(header)), "Content-Type": "application/octet-stream"}


async def _infer_ms(http: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]) -> float:
    start = time.perf_counter()
    async with http.post(url, data=body, headers=headers) as r:
        await r.read()
        if r.status != 200:
            raise RuntimeError(f"{url}: {r.status} {await r.text()}")
    return (time.perf_counter() - start) * 1e3


async def c1_p50(url: str, body: bytes, headers: dict[str, str], n: int) -> float:
    async with aiohttp.ClientSession() as http:
        for _ in range(10):
            await _infer_ms(http, url, body, headers)
        return statistics.median([await _infer_ms(http, url, body, headers) for _ in range(n)])


def raw_p50(runner: OrtRunner, feeds: dict[str, np.ndarray], n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        runner.run_named(feeds)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


async def throughput(url: str, body: bytes, headers: dict[str, str], seconds: float) -> tuple[float, int]:
    done, errors = 0, 0
    stop = time.perf_counter() + seconds

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal done, errors
        while time.perf_counter() < stop:
            async with http.post(url, data=body, headers=headers) as r:
                await r.read()
                done, errors = (done + 1, errors) if r.status == 200 else (done, errors + 1)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as http:
        start = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(32)))
        return done / (time.perf_counter() - start), errors


async def paced(base: str, models: list[Served], seconds: float) -> dict[str, list[float]]:
    """Each model at its own fixed rate (open loop: a request starts on schedule, whatever the
    others do) for ``seconds``; every request's latency in ms. :raises RuntimeError: a failed one."""
    out: dict[str, list[float]] = {m.name: [] for m in models}

    async def one(http: aiohttp.ClientSession, m: Served, body: bytes, headers: dict[str, str]) -> None:
        out[m.name].append(await _infer_ms(http, f"{base}/v2/models/{m.name}/infer", body, headers))

    async def drive(http: aiohttp.ClientSession, m: Served) -> None:
        body, headers = body_of(m)
        start, tasks, k = time.perf_counter(), [], 0
        while (due := start + k / m.rate) < start + seconds:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(one(http, m, body, headers)))
            k += 1
        await asyncio.gather(*tasks)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as http:
        await asyncio.gather(*(drive(http, m) for m in models))
    return out


def p99(values: list[float]) -> float:
    return float(np.percentile(values, 99))


async def status(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/admin/status") as r:
        return dict(await r.json())


async def drained(url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (log := (await status(url))["prediction_log"])["pending"] or log["written"] != log["accepted"]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the prediction log did not drain within {timeout_s:.0f} s: {log}")
        await asyncio.sleep(0.2)
