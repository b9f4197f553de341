"""The child side of :class:`serving.shadow_process.ProcessMirror`:
``python -m serving.shadow_worker '<json spec>'``.

Lowers its priority, loads the challenger, says ready, then repeatedly takes every mirrored request
that has queued (up to ``MAX_BATCH``), runs those whose item shapes match as one batch, and logs
each item's answer for the model's task (``lifecycle.answers``) with role ``shadow`` (their inputs
are the champion's with the same ids, so they are not stored twice). Exits when the socket closes,
after flushing the log.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lifecycle.answers import ItemAnswers, summarize
from lifecycle.contract import ModelContract
from lifecycle.db import create_db_engine, session_factory
from lifecycle.db.types import utcnow
from lifecycle.names import SHADOW
from lifecycle.runtimes.base import Runner
from lifecycle.runtimes.load import load_runner
from lifecycle.tensors import merge_compatible
from serving.metrics import ModelSeries, serving_metrics
from serving.prediction_log import LogOverloadedError, PredictionLog, RecordBatch
from serving.shadow_process import FRAME, RECEIVE_BYTES

MAX_BATCH = 64
"""Most mirrored requests in one runtime call."""


def main() -> int:
    spec = json.loads(sys.argv[1])
    sock = socket.socket(fileno=int(spec["fd"]))
    with contextlib.suppress(OSError):  # not permitted here: run at the parent's priority
        os.nice(int(spec["nice"]))
    try:
        files = {k: Path(v) for k, v in spec["files"].items()}
        runner = load_runner(
            files,
            spec["runtime"],
            inference_precision=spec["inference_precision"],
            threads=int(spec["threads"]),
        )
        contract = ModelContract.from_json(spec["contract"])
        engine = create_db_engine(spec["database_url"])
        prediction_log = PredictionLog(session_factory(engine))
    except Exception as exc:
        sock.sendall(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
        return 1
    sock.sendall(json.dumps({"ready": True, "precision": runner.precision}).encode())
    # stopped with the serving process (SIGTERM to its group): still write what was logged
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    model, version = str(spec["model"]), str(spec["version"])
    series = serving_metrics().series(model, version, SHADOW)
    buffer = bytearray(RECEIVE_BYTES)
    counts = {"mirrored": 0, "failed": 0}
    try:
        while True:
            batch = _receive(sock, buffer)
            if not batch:
                return 0  # the parent closed the socket (or died)
            for inputs, members in merge_compatible([request for request, _ in batch]):
                ids = [i for m in members for i in batch[m][1]]
                error = _run(runner, contract, inputs, ids, (model, version), prediction_log, series)
                counts["failed" if error else "mirrored"] += len(members)
            series.flush()
            with contextlib.suppress(OSError):  # the parent reads these when asked; never wait for it
                sock.send(json.dumps(counts).encode(), socket.MSG_DONTWAIT)
    finally:
        prediction_log.close()
        engine.dispose()


def _run(
    runner: Runner, contract: ModelContract, inputs: dict[str, NDArray[Any]], ids: list[str],
    labels: tuple[str, str], prediction_log: PredictionLog, series: ModelSeries,
) -> str | None:  # fmt: skip
    """Run one merged batch and log it; the error, if the run or the log failed."""
    start = time.perf_counter()
    answers: ItemAnswers | None = None
    try:
        outputs = contract.validate_outputs(runner.run_named(inputs))
        answers = summarize(contract, inputs, outputs)
        error = None
    except Exception as exc:
        error = repr(exc)
    latency_s = time.perf_counter() - start
    try:
        prediction_log.submit(
            RecordBatch(
                ids, utcnow(), *labels, SHADOW, None,
                None if answers is None else answers.classes,
                None if answers is None else answers.confidences,
                latency_s * 1e3 / len(ids), error,
                summaries=None if answers is None else answers.summaries,
            )
        )  # fmt: skip
    except LogOverloadedError:  # the database is not keeping up: these mirrored rows are lost
        error = error or "prediction log overloaded"
    if answers is not None:
        series.observe(latency_s, answers.confidences or (), rows=len(ids))
    return error


def _receive(sock: socket.socket, buffer: bytearray) -> list[tuple[dict[str, NDArray[Any]], list[str]]]:
    """Block for one mirrored request, then take whatever else has queued (up to ``MAX_BATCH``).
    Empty when the socket closed."""
    batch: list[tuple[dict[str, NDArray[Any]], list[str]]] = []
    flags = 0
    while len(batch) < MAX_BATCH:
        try:
            n = sock.recv_into(buffer, len(buffer), flags)
        except BlockingIOError:
            break
        if n == 0:
            return batch if flags else []
        flags = socket.MSG_DONTWAIT
        header_size, payload_size = FRAME.unpack_from(buffer)
        if FRAME.size + header_size + payload_size != n:  # truncated: larger than the buffer
            continue
        header = json.loads(bytes(buffer[FRAME.size : FRAME.size + header_size]))
        start = FRAME.size + header_size
        if "file" in header:  # too large for a datagram: the parent wrote it to a file
            spilled = Path(header["file"])
            try:
                data = spilled.read_bytes()
            except OSError:
                continue
            spilled.unlink(missing_ok=True)
        else:
            data = bytes(buffer[start : start + payload_size])
        batch.append((_tensors(header["tensors"], data), list(header["ids"])))
    return batch


def _tensors(described: list[list[Any]], data: bytes) -> dict[str, NDArray[Any]]:
    """The named arrays a header describes, read from ``data`` (numbers only: no object dtypes)."""
    tensors: dict[str, NDArray[Any]] = {}
    offset = 0
    for name, dtype, shape in described:
        dt = np.dtype(str(dtype))
        if dt.hasobject:
            raise ValueError(f"tensor {name!r}: dtype {dtype} holds objects")
        count = int(np.prod(shape))
        tensors[str(name)] = np.frombuffer(data, dtype=dt, count=count, offset=offset).reshape(shape)
        offset += count * dt.itemsize
    return tensors


if __name__ == "__main__":
    sys.exit(main())
