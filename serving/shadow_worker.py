"""The child side of :class:`serving.shadow_process.ProcessMirror`:
``python -m serving.shadow_worker '<json spec>'``.

Lowers its priority, loads the challenger, says ready, then repeatedly takes every mirrored request
that has queued (up to ``MAX_BATCH``), runs them as one batch and logs the rows with role ``shadow``
(their inputs are the champion's rows with the same ids, so they are not stored twice). Exits when
the socket closes, after flushing the log.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path

import numpy as np

from lifecycle.contract import ModelContract
from lifecycle.db import create_db_engine, session_factory
from lifecycle.db.types import utcnow
from lifecycle.names import SHADOW
from lifecycle.runtimes.base import class_logits
from lifecycle.runtimes.load import load_runner
from serving.metrics import serving_metrics
from serving.prediction_log import LogOverloadedError, PredictionLog, RecordBatch
from serving.predictor import Answer
from serving.shadow_process import FRAME

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
        if spec.get("contract"):  # a classifier answers its class logits, as in the serving process
            runner = class_logits(runner, ModelContract.from_json(spec["contract"]))
        engine = create_db_engine(spec["database_url"])
        prediction_log = PredictionLog(session_factory(engine))
    except Exception as exc:
        sock.sendall(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
        return 1
    sock.sendall(json.dumps({"ready": True, "precision": runner.precision}).encode())
    model, version = str(spec["model"]), str(spec["version"])
    labels = (model, version, SHADOW)
    metrics = serving_metrics()
    buffer = bytearray(2 * 1024 * 1024)
    counts = {"mirrored": 0, "failed": 0}
    try:
        while True:
            batch = _receive(sock, buffer)
            if not batch:
                return 0  # the parent closed the socket (or died)
            x = np.concatenate([rows for rows, _ in batch])
            ids = [i for _, request_ids in batch for i in request_ids]
            start = time.perf_counter()
            try:
                answer: Answer | None = Answer.of(runner.run(x))
                error = None
            except Exception as exc:
                answer, error = None, repr(exc)
            latency_s = time.perf_counter() - start
            now = utcnow()
            try:
                prediction_log.submit(
                    RecordBatch(
                        ids, now, model, version, SHADOW, None,
                        None if answer is None else answer.classes,
                        None if answer is None else answer.confidences,
                        latency_s * 1e3 / len(x), error,
                    )
                )  # fmt: skip
            except LogOverloadedError:  # the database is not keeping up: these mirrored rows are lost
                error = error or "prediction log overloaded"
            counts["failed" if error else "mirrored"] += len(batch)
            if answer is not None:
                metrics.rows.labels(*labels).inc(len(x))
                metrics.latency.labels(*labels).observe(latency_s)
            with contextlib.suppress(OSError):  # the parent reads these when asked; never wait for it
                sock.send(json.dumps(counts).encode(), socket.MSG_DONTWAIT)
    finally:
        prediction_log.close()
        engine.dispose()


def _receive(sock: socket.socket, buffer: bytearray) -> list[tuple[np.ndarray, list[str]]]:
    """Block for one mirrored request, then take whatever else has queued (up to ``MAX_BATCH``).
    Empty when the socket closed."""
    batch: list[tuple[np.ndarray, list[str]]] = []
    flags = 0
    while len(batch) < MAX_BATCH:
        try:
            n = sock.recv_into(buffer, len(buffer), flags)
        except BlockingIOError:
            break
        if n == 0:
            return batch if flags else []
        header_size, rows, columns = FRAME.unpack_from(buffer)
        if FRAME.size + header_size + rows * columns * 4 != n:  # truncated: larger than the buffer
            flags = socket.MSG_DONTWAIT
            continue
        header = json.loads(bytes(buffer[FRAME.size : FRAME.size + header_size]))
        start = FRAME.size + header_size
        x = np.frombuffer(bytes(buffer[start : start + rows * columns * 4]), dtype=np.float32)
        batch.append((x.reshape(rows, columns), list(header["ids"])))
        flags = socket.MSG_DONTWAIT
    return batch


if __name__ == "__main__":
    sys.exit(main())
