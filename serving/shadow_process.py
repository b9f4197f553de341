"""Shadow mirroring to a child process that runs the challenger *and* logs its answers.

Measured on 2 cores (champion p99 at concurrency 1, shadow on vs off): a mirror thread in the serving
process cost 1.22–1.38×, and most of it was not the challenger's inference but the Python work around
it (softmax, log records, metrics) competing with the request path for the GIL; a child process that
only ran the model, with the parent still post-processing, measured 1.00× once that work went too.
So here the request path does one non-blocking ``send`` of a datagram (the raw bytes of the named
input tensors behind a small JSON header naming their dtypes and shapes: no pickle) and nothing
else; the child, at ``nice 19``, batches what has queued (requests whose item shapes match run as
one call), runs it, summarises the answers for the model's task (``lifecycle.answers``) and writes
the shadow rows to the prediction log itself.

The socket's send buffer is the bounded queue: when it is full the mirrored request is dropped and
counted, never waited for. A request larger than one datagram (an image batch) is written to a file
in a private directory (``/dev/shm`` where it exists) whose name the datagram carries; the child
reads and removes it. At most ``MAX_SPILLED`` such files wait at a time, each at most
``MAX_SPILL_BYTES``; beyond either, the request is dropped and counted. The child reports its counts back on the same socket; they are read
when status is asked for. The child exits when its socket closes (``close``, or the parent's death),
after flushing its log.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lifecycle.contract import ModelContract
from lifecycle.errors import LifecycleError

log = logging.getLogger(__name__)

FRAME = struct.Struct("<II")
"""A mirrored request: (header bytes, payload bytes), the JSON header (``{"ids": [...], "tensors":
[[name, dtype, shape], ...], "file"?: path}``), then each tensor's C-order bytes (none when they are
in ``file``)."""
SEND_BUFFER_BYTES = 4 * 1024 * 1024
"""Requested socket buffer (the kernel caps it at its ``wmem_max``): how much mirrored traffic may wait."""
RECEIVE_BYTES = 2 * 1024 * 1024
"""The child's receive buffer: a datagram never exceeds it."""
MAX_SPILLED = 32
MAX_SPILL_BYTES = 16 * 1024 * 1024


class ShadowProcessError(LifecycleError):
    """The shadow process could not start; the message says why."""


class ProcessMirror:
    """Mirrors requests to one challenger version running in a child process."""

    def __init__(
        self,
        *,
        model: str,
        version: str,
        files: dict[str, Path],
        runtime: str,
        inference_precision: str | None,
        database_url: str,
        contract: ModelContract,
        threads: int = 1,
        nice: int = 19,
        startup_timeout_s: float = 60.0,
    ) -> None:
        self.version = version
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for end in (parent, child):
            end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
            end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SEND_BUFFER_BYTES)
        spec = {
            "model": model, "version": version, "files": {k: str(v) for k, v in files.items()},
            "runtime": runtime, "inference_precision": inference_precision, "database_url": database_url,
            "threads": threads, "nice": nice, "fd": child.fileno(),
            "contract": contract.to_json(),
        }  # fmt: skip
        command = [sys.executable, "-m", "serving.shadow_worker", json.dumps(spec)]
        self._process = subprocess.Popen(command, pass_fds=[child.fileno()])
        child.close()
        parent.settimeout(startup_timeout_s)
        try:
            ready = json.loads(parent.recv(65536) or b'{"error": "exited before it was ready"}')
        except (TimeoutError, json.JSONDecodeError) as exc:
            ready = {"error": f"no ready message: {exc}"}
        if "error" in ready:
            parent.close()
            self._process.kill()
            self._process.wait()
            raise ShadowProcessError(f"shadow process for v{version}: {ready['error']}")
        parent.setblocking(False)
        self._socket = parent
        # SO_SNDBUF reports twice what the kernel lets one datagram take, less its bookkeeping
        self._max_datagram = (
            min(parent.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) // 2, RECEIVE_BYTES) - 1024
        )
        shm = Path("/dev/shm")  # noqa: S108 (a private directory of our own, made below)
        self._spill_dir = Path(tempfile.mkdtemp(prefix="shadow-", dir=shm if shm.is_dir() else None))
        self.precision = str(ready.get("precision"))
        self.sent = 0
        self.dropped = 0
        self._reported = {"mirrored": 0, "failed": 0}

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def offer(self, inputs: Mapping[str, NDArray[Any]], ids: list[str]) -> bool:
        """Send one mirrored request (named input tensors, one id per item) without waiting; False
        (and counted) when the queue is full, the request too large, or the child gone. Never raises."""
        arrays = [(name, np.ascontiguousarray(array)) for name, array in inputs.items()]
        described: dict[str, Any] = {"ids": ids, "tensors": [[n, a.dtype.str, a.shape] for n, a in arrays]}
        payload = sum(a.nbytes for _, a in arrays)
        header = json.dumps(described).encode()
        spilled: Path | None = None
        if FRAME.size + len(header) + payload + 256 > self._max_datagram:
            spilled = self._spill(arrays, payload)
            if spilled is None:
                self.dropped += 1
                return False
            header = json.dumps({**described, "file": str(spilled)}).encode()
        parts = [FRAME.pack(len(header), 0 if spilled else payload), header]
        if spilled is None:
            parts += [a.tobytes() for _, a in arrays]
        try:
            self._socket.send(b"".join(parts))
        except OSError:  # BlockingIOError: queue full; EMSGSIZE: too large; EPIPE: child gone
            if spilled is not None:
                spilled.unlink(missing_ok=True)
            self.dropped += 1
            return False
        self.sent += 1
        return True

    def _spill(self, arrays: list[tuple[str, NDArray[Any]]], payload: int) -> Path | None:
        """The tensors written to a file for the child; None when too many wait, the request is too
        large, or the write fails (``/dev/shm`` full: 64 MB in a default container)."""
        path = self._spill_dir / f"{self.sent}-{os.urandom(4).hex()}"
        try:
            waiting = sum(1 for _ in itertools.islice(self._spill_dir.iterdir(), MAX_SPILLED))
            if payload > MAX_SPILL_BYTES or waiting >= MAX_SPILLED:
                return None
            with path.open("wb") as f:
                for _, array in arrays:
                    f.write(array.data)
        except OSError:
            path.unlink(missing_ok=True)
            return None
        return path

    def stats(self) -> dict[str, int]:
        self._read_reports()
        done = self._reported["mirrored"] + self._reported["failed"]
        return {**self._reported, "dropped": self.dropped, "pending": max(0, self.sent - done)}

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop mirroring; the child finishes what it holds, flushes its log and exits."""
        self._read_reports()
        self._socket.close()
        try:
            self._process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.warning(
                "shadow process for v%s did not exit within %.0f s; killing it", self.version, timeout_s
            )
            self._process.kill()
            self._process.wait()
        shutil.rmtree(self._spill_dir, ignore_errors=True)

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Wait until the child has answered everything sent (tests and benchmarks)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.stats()["pending"] == 0:
                return True
            time.sleep(0.02)
        return False

    def _read_reports(self) -> None:
        while True:
            try:
                message = self._socket.recv(65536)
            except (BlockingIOError, OSError):
                return
            if not message:
                return
            report = json.loads(message)
            self._reported = {"mirrored": int(report["mirrored"]), "failed": int(report["failed"])}
