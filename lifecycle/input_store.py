"""Sampled input tensors of served requests, kept as compressed NPY files for monitoring and
retraining to read back.

A request is sampled whole (all its items or none) at ``sample_rate``. Its items join the open
batch of their model; each item gets its reference — ``MODEL/FILE.npz#INDEX`` — at once, and
the batch is written (``numpy.savez_compressed``, written to a temporary name then renamed) by a
background thread when it holds ``batch_items`` items or ``flush_interval_s`` passed. Each item is
stored under ``INDEX/INPUT`` (items may differ in their dynamic dimensions). Retention, after each
write: files older than ``max_age_s`` go, then the oldest until the model's files fit ``max_bytes``.
A reference whose file was removed (or whose batch was never written: the process died) reads
back as None.

Files only, never pickles: ``numpy.load(..., allow_pickle=False)``. File names carry the host and
process id, so replicas sharing a directory never write the same file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import socket
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lifecycle.samples import npz_bytes

log = logging.getLogger(__name__)

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass
class _Batch:
    model: str
    file: str
    """``MODEL_DIR/NAME.npz``, relative to the store's root."""
    arrays: dict[str, NDArray[Any]] = field(default_factory=dict)
    items: int = 0
    opened: float = field(default_factory=time.monotonic)


@dataclass
class StoreStats:
    sampled_items: int = 0
    written_files: int = 0
    written_bytes: int = 0
    removed_files: int = 0
    write_failures: int = 0


class InputStore:
    def __init__(
        self,
        root: Path,
        *,
        sample_rate: float,
        batch_items: int = 256,
        flush_interval_s: float = 5.0,
        max_bytes: int = 2**30,
        max_age_s: float = 7 * 86_400,
        rng: random.Random | None = None,
    ) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be within [0, 1], got {sample_rate}")
        self.root = root
        self.sample_rate = sample_rate
        self._batch_items = batch_items
        self._flush_interval_s = flush_interval_s
        self._max_bytes = max_bytes
        self._max_age_s = max_age_s
        self._rng = rng or random.Random()  # noqa: S311 (sampling, not security)
        self._open: dict[str, _Batch] = {}
        self._full: list[_Batch] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._prefix = f"{_SAFE.sub('_', socket.gethostname())}-{os.getpid()}"
        self.stats = StoreStats()
        self._thread: threading.Thread | None = None

    # -- writing ---------------------------------------------------------------------------------
    def offer(self, model: str, inputs: Mapping[str, NDArray[Any]], n: int) -> list[str | None]:
        """Sample one request of ``n`` items; each item's reference, or None when not sampled."""
        if self.sample_rate <= 0.0 or self._rng.random() >= self.sample_rate:
            return [None] * n
        with self._lock:
            batch = self._open.get(model)
            if batch is None:
                batch = self._open[model] = self._new_batch(model)
            refs: list[str | None] = []
            for i in range(n):
                index = batch.items + i
                for name, array in inputs.items():
                    batch.arrays[f"{index}/{name}"] = array[i]
                refs.append(f"{batch.file}#{index}")
            batch.items += n
            self.stats.sampled_items += n
            if batch.items >= self._batch_items:
                self._full.append(self._open.pop(model))
                self._wake.set()
        return refs

    def _new_batch(self, model: str) -> _Batch:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        name = f"{stamp}-{self._prefix}-{uuid.uuid4().hex[:8]}.npz"
        return _Batch(model, f"{_model_dir(model)}/{name}")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="input-store", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Write every open batch, then stop."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30)
        else:
            self.flush(everything=True)

    def flush(self, *, everything: bool = False) -> None:
        """Write the full batches, and those open longer than the flush interval (or all)."""
        now = time.monotonic()
        with self._lock:
            due = self._full
            self._full = []
            for model, batch in list(self._open.items()):
                if everything or now - batch.opened >= self._flush_interval_s:
                    due.append(self._open.pop(model))
        for batch in due:
            try:
                self._write(batch)
            except Exception:  # the writer thread must outlive any one batch
                self.stats.write_failures += 1
                log.exception("writing %d sampled inputs of %s failed", batch.items, batch.model)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(min(self._flush_interval_s, 1.0))
            self._wake.clear()
            self.flush()
        self.flush(everything=True)

    def _write(self, batch: _Batch) -> None:
        path = self.root / batch.file
        partial = path.with_suffix(".partial")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            data = npz_bytes(batch.arrays)
            partial.write_bytes(data)
            partial.rename(path)
        except OSError:
            self.stats.write_failures += 1
            log.exception("writing %d sampled inputs of %s to %s failed", batch.items, batch.model, path)
            partial.unlink(missing_ok=True)
            return
        self.stats.written_files += 1
        self.stats.written_bytes += len(data)
        self._retain(path.parent)

    def _retain(self, directory: Path) -> None:
        """Remove what is too old, then the oldest beyond the size limit. Another replica may be
        removing the same files: one that is gone already is simply skipped."""
        files: list[tuple[float, int, Path]] = []
        for path in directory.glob("*.npz"):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            files.append((stat.st_mtime, stat.st_size, path))
        files.sort()
        now = time.time()
        total = sum(size for _, size, _ in files)
        for mtime, size, path in files:
            if now - mtime > self._max_age_s or total > self._max_bytes:
                path.unlink(missing_ok=True)
                total -= size
                self.stats.removed_files += 1

    # -- reading ---------------------------------------------------------------------------------
    def read(self, refs: Sequence[str | None]) -> list[dict[str, NDArray[Any]] | None]:
        """Each reference's input tensors (one item each, without the batch dimension), or None
        where there is none or its file is gone. Each file is opened once."""
        by_file: dict[str, list[tuple[int, str]]] = {}
        for position, ref in enumerate(refs):
            if ref is None:
                continue
            file, _, index = ref.rpartition("#")
            if not file or not index.isdigit() or ".." in Path(file).parts or Path(file).is_absolute():
                raise ValueError(f"not an input reference: {ref!r}")
            by_file.setdefault(file, []).append((position, index))
        found: list[dict[str, NDArray[Any]] | None] = [None] * len(refs)
        for file, wanted in by_file.items():
            path = self.root / file
            try:
                with np.load(path, allow_pickle=False) as archive:
                    keys: dict[str, dict[str, str]] = {}
                    for key in archive.files:
                        item_index, _, name = key.partition("/")
                        keys.setdefault(item_index, {})[name] = key
                    for position, index in wanted:
                        item = keys.get(index)
                        found[position] = {n: archive[k] for n, k in item.items()} if item else None
            except FileNotFoundError:
                continue
        return found

    def file_bytes(self, model: str) -> int:
        directory = self.root / _model_dir(model)
        total = 0
        for path in directory.glob("*.npz") if directory.exists() else ():
            with contextlib.suppress(FileNotFoundError):
                total += path.stat().st_size
        return total


def stack(items: Sequence[Mapping[str, NDArray[Any]]]) -> dict[str, NDArray[Any]]:
    """Items read back as one batch per input. :raises ValueError: items of different shapes."""
    if not items:
        return {}
    return {name: np.stack([item[name] for item in items]) for name in items[0]}


def _model_dir(model: str) -> str:
    return _SAFE.sub("_", model) or "_"
