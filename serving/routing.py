"""Request routing from the persisted rollout plan: which model answers, which requests are mirrored.

The plan (challenger version, canary share, mirror share) is read from the database that the
control plane writes; a replica keeps no rollout state of its own. With a request key the canary
decision is a stable hash (sticky: the same key keeps its model while the share only grows);
without one it is random.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, replace

from lifecycle.db.traffic import TrafficPlan
from lifecycle.names import CANARY, SHADOW
from serving.shadow_process import ProcessMirror
from serving.slot import Served

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Challenger:
    plan: TrafficPlan
    served: Served | None
    """None when the challenger could not be loaded: requests routed to it count as its errors."""
    shadow: Served | None = None
    """The same version loaded in this process for mirrored runs on a thread (one intra-op thread,
    so that mirroring takes at most one core from the champion)."""
    error: str | None = None
    mirror: ProcessMirror | None = None
    """Or: the same version in a child process that runs and logs mirrored requests itself."""


def key_bucket(key: str) -> float:
    """A stable position in [0, 1) for a request key."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest) / 2.0**64


class Router:
    def __init__(
        self,
        model: str,
        plan_source: Callable[[str], TrafficPlan | None],
        loader: Callable[[str, str], Served],
        *,
        mirror_loader: Callable[[str], ProcessMirror] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._model = model
        self._plan_source = plan_source
        self._loader = loader
        self._mirror_loader = mirror_loader
        self._rng = rng or random.Random()  # noqa: S311 (traffic splitting, not security)
        self._challenger: Challenger | None = None

    @property
    def challenger(self) -> Challenger | None:
        return self._challenger

    def refresh(self) -> None:
        """Read the plan; load a new challenger beside the champion before routing to it."""
        plan = self._plan_source(self._model)
        current = self._challenger
        if plan is None:
            self._challenger = None
            _retire(current)
            return
        if current is not None and current.plan.challenger == plan.challenger:
            if current.mirror is not None and not current.mirror.alive and self._mirror_loader is not None:
                log.warning("shadow process of v%s exited; starting a new one", plan.challenger)
                _retire(current)
                current = replace(current, mirror=self._mirror_loader(plan.challenger))
            self._challenger = replace(current, plan=plan)
            return
        try:
            served = self._loader(plan.challenger, CANARY)
            if self._mirror_loader is not None:
                self._challenger = Challenger(plan, served, mirror=self._mirror_loader(plan.challenger))
            else:
                self._challenger = Challenger(plan, served, self._loader(plan.challenger, SHADOW))
            _retire(current)
            log.info(
                "challenger v%s loaded: canary %.0f %%, mirror %.0f %%",
                plan.challenger,
                plan.canary_weight * 100,
                plan.mirror_share * 100,
            )
        except Exception as exc:
            log.exception("loading challenger v%s failed", plan.challenger)
            error = f"challenger v{plan.challenger} could not be loaded: {exc}"
            self._challenger = Challenger(plan, None, None, error)
            _retire(current)

    def close(self) -> None:
        """Stop routing; stop the challenger's shadow process, if any."""
        current, self._challenger = self._challenger, None
        _retire(current)

    def canary(self, key: str | None) -> Challenger | None:
        """The challenger when this request falls in the canary share, else None (champion answers)."""
        c = self._challenger
        if c is None or c.plan.canary_weight <= 0.0:
            return None
        position = key_bucket(key) if key else self._rng.random()
        return c if position < c.plan.canary_weight else None

    def mirror(self) -> Challenger | None:
        """The challenger when this champion-answered request is to be mirrored to it."""
        c = self._challenger
        if c is None or c.plan.mirror_share <= 0.0:
            return None
        return c if self._rng.random() < c.plan.mirror_share else None


def _retire(challenger: Challenger | None) -> None:
    """Stop a replaced challenger's shadow process (it flushes what it logged)."""
    if challenger is not None and challenger.mirror is not None:
        try:
            challenger.mirror.close()
        except Exception:
            log.exception("stopping the shadow process of v%s failed", challenger.plan.challenger)
