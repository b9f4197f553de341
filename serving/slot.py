"""One served model's current version, swapped atomically when the registry alias moves.

A new version is downloaded, verified (sha256), loaded and warmed up *beside* the current one; only
then does the slot switch, so requests in flight finish on the old model and no request fails.
If the registry is unreachable, the last good model keeps serving and the status says so. The model
host (``serving.host``) decides when a slot loads, refreshes and unloads.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lifecycle.contract import ModelContract
from lifecycle.db.types import utcnow
from lifecycle.errors import LifecycleError
from lifecycle.local_version import LocalVersion
from lifecycle.runtimes.base import Runner
from lifecycle.runtimes.load import load_version
from registry.abc import ModelRegistry

log = logging.getLogger(__name__)


class ModelNotReadyError(LifecycleError):
    """No model has been loaded yet."""


@dataclass(frozen=True)
class Served:
    name: str
    version: str
    role: str
    runner: Runner
    contract: ModelContract
    loaded_at: str
    file_bytes: int = 0
    """Size of the model's files (the floor of its memory estimate)."""


@dataclass
class SlotStatus:
    model: str
    alias: str
    version: str | None = None
    registry: str = "not contacted yet"
    last_check: str | None = None
    last_error: str | None = None
    swaps: int = 0
    history: list[str] = field(default_factory=list)


class ModelSlot:
    def __init__(
        self, registry: ModelRegistry, model: str, alias: str, cache_dir: Path, *, runtime_threads: int = 0
    ) -> None:
        self._registry = registry
        self._cache_dir = cache_dir
        self._threads = runtime_threads
        self._served: Served | None = None
        self._lock = threading.Lock()
        self.status = SlotStatus(model=model, alias=alias)

    def current(self) -> Served:
        served = self._served
        if served is None:
            raise ModelNotReadyError(
                f"no version of {self.status.model}@{self.status.alias} is loaded yet ({self.status.registry})"
            )
        return served

    @property
    def ready(self) -> bool:
        return self._served is not None

    def refresh(self, version: str | None = None) -> bool:
        """Load and swap in the alias's version when it moved. True when a swap happened.

        ``version``: the alias's version as the caller just listed it (one registry call for every
        model of the host); without it, the slot asks the registry itself."""
        status = self.status
        status.last_check = utcnow().isoformat()
        try:
            # one cheap call per poll; the full version (tags) only when the alias moved
            if version is None:
                version = self._registry.aliases(status.model).get(status.alias)
            if version is None:
                raise ModelNotReadyError(f"model {status.model!r} has no alias {status.alias!r}")
            status.registry = "ok"
            if self._served is not None and version == self._served.version:
                return False
            target = self._registry.get_version(status.model, version)
        except LifecycleError as exc:
            status.registry = f"unreachable or refusing: {exc}"
            status.last_error = str(exc)
            log.warning("registry check failed, serving last good model (%s): %s", status.version, exc)
            return False
        try:
            served = self._load(target.name, target.version, dict(target.tags))
        except Exception as exc:
            status.last_error = f"loading v{target.version} failed: {exc}"
            log.exception("loading %s v%s failed; keeping v%s", target.name, target.version, status.version)
            return False
        with self._lock:
            previous, self._served = self._served, served
        status.version, status.swaps, status.last_error = served.version, status.swaps + 1, None
        status.history.append(
            f"{served.loaded_at} v{previous.version if previous else '-'} -> v{served.version}"
        )
        log.info("now serving %s v%s", served.name, served.version)
        return True

    def unload(self) -> None:
        """Drop the loaded version (the host frees its memory); requests in flight finish on it."""
        with self._lock:
            previous, self._served = self._served, None
        if previous is not None:
            self.status.version = None
            self.status.history.append(f"{utcnow().isoformat()} v{previous.version} -> unloaded")

    def _load(
        self,
        name: str,
        version: str,
        tags: dict[str, str],
        role: str = "champion",
        threads: int | None = None,
    ) -> Served:
        local = self._registry.download(name, version, self._cache_dir / name / version)
        runner = load_version(local, tags, threads=self._threads if threads is None else threads)
        contract = local.contract
        runner.run_named(warm_up_inputs(contract))  # before taking traffic: first-call allocations
        file_bytes = sum(p.stat().st_size for p in local.model_paths.values() if p.is_file())
        return Served(name, version, role, runner, contract, utcnow().isoformat(), file_bytes)

    def fetch(self, version: str) -> tuple[LocalVersion, dict[str, str]]:
        """Download (verified) another version of the served model; its files and tags."""
        target = self._registry.get_version(self.status.model, version)
        local = self._registry.download(
            target.name, target.version, self._cache_dir / target.name / target.version
        )
        return local, dict(target.tags)

    def load_other(self, version: str, role: str, threads: int | None = None) -> Served:
        """Load another version of the served model (a challenger) the same verified way."""
        target = self._registry.get_version(self.status.model, version)
        return self._load(target.name, target.version, dict(target.tags), role, threads)


def warm_up_inputs(contract: ModelContract) -> dict[str, NDArray[Any]]:
    """One item per input, every value 1 (a valid token id, mask and pixel); named dimensions besides
    the batch take size 32 (a sequence of 32 tokens, an image a 32 × 32 CNN still reduces)."""
    sizes = {d: 32 for spec in contract.inputs for d in spec.item_shape if isinstance(d, str)}
    return {
        spec.name: np.ones(spec.example_shape(1, sizes), dtype=spec.numpy_dtype) for spec in contract.inputs
    }
