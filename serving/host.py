"""Every model one serving process serves: which they are, which are loaded, which make room.

**Which.** Each poll lists the registered models that have the serving alias in one registry call
(or only those named in ``LIFECYCLE_SERVING_MODELS``), so a model that gets its first ``champion``
(in the MLflow UI, say) is served within one poll interval, without a restart.

**Loaded when used.** A model loads on its first request (inference, metadata or readiness call);
the default model loads at start and is never unloaded. Loads run one at a time.

**Within a memory budget.** A model's footprint is what the process's resident set grew by while
it loaded (at least its files' size). When a load takes the loaded models over the budget, the
least recently used models that are idle (no request in flight, no rollout under way) are unloaded
until they fit; a model loads again on its next request.

**Failures stay with their model.** A model that cannot be loaded answers 503 with the reason, and
is tried again on a request after ``retry_s``; every other model keeps serving.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lifecycle.errors import LifecycleError
from serving.batching import MicroBatcher
from serving.inference import Answered, Inference, InferRequest
from serving.predictor import PredictInput, Prediction, Predictor
from serving.routing import Router
from serving.settings import ModelServing
from serving.slot import ModelNotReadyError, ModelSlot

log = logging.getLogger(__name__)

MB = 2**20


class NotServedError(LifecycleError):
    """The model is not served by this process (→ 404)."""


@dataclass
class HostedModel:
    """One model's serving stack: its slot (hot swap), rollout router, predictor and batcher."""

    name: str
    slot: ModelSlot
    router: Router
    predictor: Predictor
    batcher: MicroBatcher[PredictInput, Prediction]
    """The JSON rows API's batcher (``/v1/predict``)."""
    inference: Inference
    tensor_batcher: MicroBatcher[InferRequest, Answered]
    """The Open Inference Protocol's batcher."""
    limits: ModelServing
    pinned: bool = False
    """The default model: loaded at start, never unloaded."""
    last_used: float = 0.0
    in_flight: int = 0
    footprint_bytes: int = 0
    load_error: str | None = None
    failed_at: float | None = None
    loads: int = 0
    unloads: int = 0
    _closed: bool = field(default=False, repr=False)

    @property
    def loaded(self) -> bool:
        return self.slot.ready

    @property
    def in_rollout(self) -> bool:
        return self.router.challenger is not None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.batcher.close()
        self.tensor_batcher.close()
        if self.predictor.shadow is not None:
            self.predictor.shadow.close()
        self.router.close()

    def status(self) -> dict[str, object]:
        s = self.slot.status
        return {
            "loaded": self.loaded,
            "version": s.version,
            "alias": s.alias,
            "registry": s.registry,
            "last_check": s.last_check,
            "last_error": self.load_error or s.last_error,
            "swaps": s.swaps,
            "swap_history": s.history[-10:],
            "footprint_mb": round(self.footprint_bytes / MB, 1),
            "in_flight": self.in_flight,
            "loads": self.loads,
            "unloads": self.unloads,
            "rollout": self.rollout_status(),
            "batching": {"max_rows": self.batcher.max_rows, **asdict(self.batcher.stats)},
            "tensor_batching": {
                "max_items": self.tensor_batcher.max_rows,
                **asdict(self.tensor_batcher.stats),
            },
            "limits": self.limits.model_dump(),
        }

    def rollout_status(self) -> dict[str, object] | None:
        challenger = self.router.challenger
        if challenger is None:
            return None
        shadow = self.predictor.shadow
        return {
            "rollout_id": challenger.plan.rollout_id,
            "challenger": challenger.plan.challenger,
            "loaded": challenger.served is not None,
            "error": challenger.error,
            "canary_weight": challenger.plan.canary_weight,
            "mirror_share": challenger.plan.mirror_share,
            "shadow": challenger.mirror.stats()
            if challenger.mirror is not None
            else (shadow.stats() if shadow is not None else None),
        }


def resident_bytes() -> int:
    """The process's resident set (Linux ``/proc/self/statm``); 0 where it cannot be read."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class ModelHost:
    def __init__(
        self,
        build: Callable[[str, bool], HostedModel],
        list_served: Callable[[], dict[str, str]],
        *,
        default: str | None,
        names: Collection[str] = (),
        memory_budget_bytes: int,
        retry_s: float,
        rss: Callable[[], int] = resident_bytes,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``build(name, pinned)`` makes a model's (unloaded) stack; ``list_served()`` answers
        ``{model: version}`` of the models with the serving alias; ``names``: serve only these."""
        self._build = build
        self._list = list_served
        self.default = default or None
        self._names = frozenset(names)
        self.memory_budget_bytes = memory_budget_bytes
        self._retry_s = retry_s
        self._rss = rss
        self._clock = clock
        self._models: dict[str, HostedModel] = {}
        self._versions: dict[str, str] = {}
        self._lock = threading.Lock()  # the model table and in-flight counts
        self._load_lock = threading.Lock()  # one load or swap at a time (footprints stay apart)
        self.listed = False
        self.registry_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- which models ----------------------------------------------------------------------------
    def discover(self) -> None:
        """List the models with the serving alias (one registry call); unreachable: keep the last."""
        try:
            listed = self._list()
        except LifecycleError as exc:
            self.registry_error = str(exc)
            log.warning("listing the served models failed; keeping the last list: %s", exc)
            return
        self.registry_error = None
        if self._names:
            listed = {n: v for n, v in listed.items() if n in self._names}
        self._versions = listed
        self.listed = True
        for name in listed:
            self.get(name)

    def names(self) -> list[str]:
        """Served models: those listed, the loaded ones (even if their alias went), the default."""
        with self._lock:
            known = set(self._versions) | {n for n, h in self._models.items() if h.loaded}
        if self.default is not None:
            known.add(self.default)
        return sorted(known)

    def get(self, name: str) -> HostedModel:
        """The model's stack, loaded or not. :raises NotServedError: not listed (any more) and not
        loaded."""
        with self._lock:
            hosted = self._models.get(name)
            listed = name == self.default or name in self._versions
            if hosted is not None and (listed or hosted.loaded):  # loaded: serves on without its alias
                return hosted
            if not listed:
                served = ", ".join(repr(n) for n in sorted(set(self._versions) | set(self._models))) or "none"
                raise NotServedError(f"model {name!r} is not served here (served: {served})")
        built = self._build(name, name == self.default)  # reads its tags from the registry: unlocked
        with self._lock:
            hosted = self._models.setdefault(name, built)
        if hosted is not built:  # built meanwhile by another thread
            built.close()
        return hosted

    # -- using a model ---------------------------------------------------------------------------
    def acquire(self, name: str, *, load: bool = True) -> HostedModel | None:
        """The loaded model, counted in flight until :meth:`release`; loads it first (blocking) when
        ``load``, else answers None when it is not loaded.

        :raises NotServedError: :raises ModelNotReadyError: it cannot be loaded (its reason)."""
        hosted = self.get(name)
        while True:
            with self._lock:
                if hosted.loaded:
                    hosted.in_flight += 1
                    hosted.last_used = self._clock()
                    return hosted
            if not load:
                return None
            self._load(hosted)

    def release(self, hosted: HostedModel) -> None:
        with self._lock:
            hosted.in_flight -= 1

    @contextmanager
    def using(self, name: str) -> Iterator[HostedModel]:
        """:meth:`acquire` (loading) ... :meth:`release`."""
        hosted = self.acquire(name)
        assert hosted is not None
        try:
            yield hosted
        finally:
            self.release(hosted)

    def _load(self, hosted: HostedModel) -> None:
        with self._load_lock:
            if hosted.loaded:
                return
            if hosted.failed_at is not None and self._clock() - hosted.failed_at < self._retry_s:
                raise ModelNotReadyError(f"model {hosted.name!r} could not be loaded: {hosted.load_error}")
            before = self._rss()
            hosted.slot.refresh(self._versions.get(hosted.name))
            if not hosted.loaded:
                s = hosted.slot.status
                hosted.failed_at = self._clock()
                hosted.load_error = s.last_error or s.registry
                raise ModelNotReadyError(f"model {hosted.name!r} could not be loaded: {hosted.load_error}")
            hosted.footprint_bytes = max(self._rss() - before, hosted.slot.current().file_bytes)
            hosted.failed_at = hosted.load_error = None
            hosted.loads += 1
            hosted.last_used = self._clock()
            self._refresh_router(hosted)
            log.info("loaded %s (%.1f MB)", hosted.name, hosted.footprint_bytes / MB)
            self._make_room(keep=hosted)

    def _make_room(self, keep: HostedModel) -> None:
        """Unload least recently used idle models until the loaded ones fit the budget."""
        with self._lock:
            loaded = [h for h in self._models.values() if h.loaded]
            total = sum(h.footprint_bytes for h in loaded)
            for hosted in sorted(loaded, key=lambda h: h.last_used):
                if total <= self.memory_budget_bytes:
                    break
                if hosted is keep or hosted.pinned or hosted.in_flight or hosted.in_rollout:
                    continue
                hosted.slot.unload()
                hosted.unloads += 1
                total -= hosted.footprint_bytes
                log.info("unloaded %s (least recently used) to stay within the memory budget", hosted.name)
        if total > self.memory_budget_bytes:
            log.warning(
                "loaded models take %.0f MB, over the %.0f MB budget: nothing idle is left to unload",
                total / MB, self.memory_budget_bytes / MB,
            )  # fmt: skip

    # -- keeping up with the registry ------------------------------------------------------------
    def refresh(self) -> None:
        """One poll: list the served models, swap loaded ones whose alias moved, refresh rollouts."""
        self.discover()
        with self._lock:
            loaded = [h for h in self._models.values() if h.loaded]
        for hosted in loaded:
            with self._load_lock:
                if hosted.loaded:  # not unloaded meanwhile
                    hosted.slot.refresh(self._versions.get(hosted.name))
            self._refresh_router(hosted)

    @staticmethod
    def _refresh_router(hosted: HostedModel) -> None:
        try:
            hosted.router.refresh()
        except Exception:
            log.exception("reading the rollout plan of %s failed; retrying at the next poll", hosted.name)

    def start(self, interval_s: float) -> None:
        """Discover, load the default model, then poll every ``interval_s`` in a background thread."""
        self.discover()
        if self.default is not None:
            try:
                self._load(self.get(self.default))
            except ModelNotReadyError as exc:
                log.warning("the default model is not loaded yet: %s", exc)

        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.refresh()
                    default = self.default
                    if default is not None and not self.get(default).loaded:
                        self._retry_default(default)
                except Exception:
                    log.exception("polling the registry failed; retrying in %.1f s", interval_s)

        self._thread = threading.Thread(target=loop, name="model-host", daemon=True)
        self._thread.start()

    def _retry_default(self, name: str) -> None:
        hosted = self.get(name)
        hosted.failed_at = None  # the poll is the retry
        try:
            self._load(hosted)
        except ModelNotReadyError as exc:
            log.debug("default model still not loaded: %s", exc)

    @property
    def ready(self) -> bool:
        """The default model is loaded (without one: the registry was listed once)."""
        if self.default is None:
            return self.listed
        hosted = self._models.get(self.default)
        return hosted is not None and hosted.loaded

    def loaded(self) -> list[HostedModel]:
        with self._lock:
            return [h for h in self._models.values() if h.loaded]

    def status(self) -> dict[str, object]:
        with self._lock:
            models = dict(self._models)
        return {
            "default": self.default,
            "registry_error": self.registry_error,
            "memory_budget_mb": round(self.memory_budget_bytes / MB, 1),
            "loaded_mb": round(sum(h.footprint_bytes for h in models.values() if h.loaded) / MB, 1),
            "models": {name: models[name].status() for name in sorted(models)},
        }

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:
            models = list(self._models.values())
        for hosted in models:
            hosted.close()
