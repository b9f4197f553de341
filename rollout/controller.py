"""The rollout controller: turns registry aliases into rollouts, runs each step's analysis, and
carries out what the state machine decides (move aliases, tag versions, alert).

MLflow aliases say *which* versions (``champion`` serves, ``challenger`` is rolled out); the
database says *how much* traffic and *why*. ``reconcile`` makes the two agree and is idempotent,
so a webhook, a poll and a restart all go through the same path.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from lifecycle.alerts import Alert, Alerter
from lifecycle.db.types import utcnow
from lifecycle.errors import LifecycleError, UnknownModelError
from lifecycle.names import CHALLENGER, CHAMPION, TAG_ROLLOUT_OUTCOME, TAG_ROLLOUT_REASON, Severity
from registry.abc import ModelRegistry
from rollout import machine
from rollout.analysis import analyse
from rollout.machine import Action, ActionKind, Phase, Rollout
from rollout.policy import RolloutPolicy
from rollout.store import RolloutStore, StoredVerdict
from rollout.windows import WindowReader

log = logging.getLogger(__name__)


class RolloutError(LifecycleError):
    """A rollout command cannot be carried out (no rollout, no champion, …)."""


@dataclass(frozen=True)
class RolloutStatus:
    rollout: Rollout
    verdicts: list[StoredVerdict]


class RolloutController:
    def __init__(
        self,
        store: RolloutStore,
        windows: WindowReader,
        registry: ModelRegistry,
        alerter: Alerter,
        policy: RolloutPolicy,
        *,
        actor: str = "control-plane",
        watch: Sequence[str] = (),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._windows = windows
        self._registry = registry
        self._alerter = alerter
        self.policy = policy
        self._actor = actor
        self._watch = set(watch)
        self._clock = clock
        self._lock = threading.RLock()  # one decision at a time: ticks, webhooks and admin calls
        self._last_analysis: dict[int, datetime] = {}
        self._known_models: set[str] = set()

    # --- reacting to the registry -------------------------------------------------------------

    def reconcile(self, model: str) -> Rollout | None:
        """Make the rollout state of ``model`` agree with its aliases; returns the active rollout."""
        with self._lock:
            aliases = self._registry.aliases(model)
            self._known_models.add(model)
            champion, challenger = aliases.get(CHAMPION), aliases.get(CHALLENGER)
            active = self._store.active(model)
            now = self._clock()
            if active is not None:
                if champion is not None and champion != active.champion:
                    active = self._apply(*machine.champion_moved(active, champion, now), aliases)
                elif challenger != active.challenger:
                    why = (
                        "alias challenger deleted"
                        if challenger is None
                        else f"challenger moved to v{challenger}"
                    )
                    active = self._apply(*machine.abort(active, now, why), aliases)
                if active.active:
                    return active
            if challenger is None or champion is None or challenger == champion:
                if challenger is not None and champion is None:
                    log.warning(
                        "%s@challenger=v%s but no champion to compare with; not rolling out",
                        model,
                        challenger,
                    )
                return None
            rollout = self._store.save(
                machine.start(
                    model,
                    champion,
                    challenger,
                    self.policy_for(model, challenger),
                    now,
                    started_by=self._actor,
                )
            )
            log.info(
                "rollout %d: %s v%s -> v%s starts in %s",
                rollout.id,
                model,
                champion,
                challenger,
                rollout.phase,
            )
            return rollout

    def policy_for(self, model: str, challenger: str | None = None) -> RolloutPolicy:
        """The controller's policy with the model's ``lifecycle.rollout.*`` tags applied, then the
        challenger version's (a retrained challenger carries its own); tags that do not validate are
        reported and left out."""
        policy = self._overridden(self.policy, model, "model", self._registry.model_tags(model))
        if challenger is not None:
            tags = dict(self._registry.get_version(model, challenger).tags)
            policy = self._overridden(policy, model, f"v{challenger}", tags)
        return policy

    @staticmethod
    def _overridden(policy: RolloutPolicy, model: str, where: str, tags: dict[str, str]) -> RolloutPolicy:
        try:
            return policy.with_overrides(tags)
        except ValueError as exc:
            log.warning("%s %s: ignoring its rollout tags: %s", model, where, exc)
            return policy

    def reconcile_all(self) -> None:
        """Poll every model with an active rollout, every model seen before, and the registry's list."""
        models = {r.model for r in self._store.all_active()} | self._known_models
        models |= set(self._registry.list_models())
        for model in sorted(models):
            try:
                self.reconcile(model)
            except UnknownModelError:
                self._known_models.discard(model)

    def on_version_created(self, model: str, version: str) -> None:
        """A new version in a watched model (e.g. MLflow's "Promote model" copied one in): it becomes
        the challenger, or the champion when the model has none yet."""
        if model not in self._watch:
            return
        with self._lock:
            aliases = self._registry.aliases(model)
            alias = CHALLENGER if aliases.get(CHAMPION) not in (None, version) else CHAMPION
            self._registry.set_alias(model, alias, version, actor=self._actor)
            log.info("new version %s v%s of a watched model set as %s", model, version, alias)
        self.reconcile(model)

    # --- analysis ---------------------------------------------------------------------------

    def tick(self) -> None:
        """Analyse every active, unpaused rollout whose interval has passed since its last analysis."""
        with self._lock:
            active = self._store.all_active()
            ids = {r.id for r in active}
            self._last_analysis = {k: v for k, v in self._last_analysis.items() if k in ids}  # ended ones go
            for rollout in active:
                assert rollout.id is not None
                now = self._clock()
                last = max(
                    rollout.step_started_at, self._last_analysis.get(rollout.id, rollout.step_started_at)
                )
                if rollout.paused or (now - last).total_seconds() < rollout.policy.interval_s:
                    continue
                self._last_analysis[rollout.id] = now
                self._analyse(rollout, now)

    def _analyse(self, rollout: Rollout, now: datetime) -> Rollout:
        window = self._windows.read(rollout, rollout.step_started_at)
        verdict = analyse(window, rollout.policy, shadow=rollout.phase is Phase.SHADOW)
        after, actions = machine.on_verdict(rollout, verdict, now)
        decision = _decision(rollout, after)
        self._store.add_verdict(rollout, verdict, decision, now)
        log.info(
            "rollout %d %s: %s (%s) -> %s",
            rollout.id,
            rollout.describe(),
            verdict.outcome,
            verdict.summary(),
            decision,
        )
        if after == rollout:
            return rollout
        return self._apply(after, actions, self._registry.aliases(rollout.model))

    # --- manual control ---------------------------------------------------------------------

    def start(self, model: str, version: str, actor: str) -> Rollout:
        """Set alias ``challenger`` (exactly what the MLflow UI does) and start its rollout."""
        with self._lock:
            self._registry.get_version(model, version)
            self._registry.set_alias(model, CHALLENGER, version, actor=actor)
            rollout = self.reconcile(model)
            if rollout is None or rollout.challenger != version:
                raise RolloutError(
                    f"{model} v{version} did not start a rollout: {model} needs a champion to compare with"
                )
            return rollout

    def pause(self, model: str) -> Rollout:
        return self._manual(model, lambda r, now: machine.pause(r, now))

    def resume(self, model: str) -> Rollout:
        return self._manual(model, lambda r, now: machine.resume(r, now))

    def promote(self, model: str, actor: str) -> Rollout:
        return self._manual(model, lambda r, now: machine.promote_now(r, now, actor))

    def abort(self, model: str, actor: str) -> Rollout:
        return self._manual(model, lambda r, now: machine.abort(r, now, f"aborted by {actor}"))

    def status(self, model: str, verdicts: int = 5) -> RolloutStatus | None:
        history = self._store.history(model, limit=1)
        if not history:
            return None
        rollout = history[0]
        assert rollout.id is not None
        return RolloutStatus(rollout, self._store.verdicts(rollout.id, verdicts))

    def _manual(self, model: str, change: Callable[[Rollout, datetime], machine.Transition]) -> Rollout:
        with self._lock:
            rollout = self._store.active(model)
            if rollout is None:
                raise RolloutError(f"{model} has no active rollout")
            after, actions = change(rollout, self._clock())
            return self._apply(after, actions, self._registry.aliases(model))

    # --- carrying out decisions -------------------------------------------------------------

    def _apply(self, rollout: Rollout, actions: list[Action], aliases: dict[str, str]) -> Rollout:
        """Registry first, then the database: a crash in between is repaired by ``reconcile``
        (the champion alias already moved → promoted; challenger alias gone → aborted)."""
        model, version = rollout.model, rollout.challenger
        for action in actions:
            if action.kind is ActionKind.PROMOTE:
                self._registry.set_alias(model, CHAMPION, version, actor=self._actor)
                if aliases.get(CHALLENGER) == version:
                    self._registry.delete_alias(model, CHALLENGER, actor=self._actor)
            elif action.kind is ActionKind.REMOVE_CHALLENGER:
                if aliases.get(CHALLENGER) == version:  # not a newer challenger set meanwhile
                    self._registry.delete_alias(model, CHALLENGER, actor=self._actor)
            elif action.kind is ActionKind.TAG_VERSION:
                self._registry.set_version_tag(model, version, TAG_ROLLOUT_OUTCOME, rollout.phase.value)
                self._registry.set_version_tag(model, version, TAG_ROLLOUT_REASON, action.reason[:4000])
            elif action.kind is ActionKind.ALERT:
                self._alerter.raise_alert(
                    Alert(
                        source="rollout",
                        severity=Severity.CRITICAL,
                        key=f"rollout:{model}:{version}",
                        title=f"{model} v{version} rolled back",
                        message=action.reason,
                        details={
                            "rollout_id": rollout.id,
                            "champion": rollout.champion,
                            "challenger": version,
                        },
                    )
                )
        saved = self._store.save(rollout)
        if not saved.active:
            log.info(
                "rollout %d of %s v%s ended: %s (%s)", saved.id, model, version, saved.phase, saved.reason
            )
        return saved


def _decision(before: Rollout, after: Rollout) -> str:
    if after.phase is not before.phase and after.phase.terminal:
        return f"{after.phase.value}: {after.reason}"
    if after.phase is not before.phase or after.step != before.step:
        return f"advance to {after.describe()}"
    if after.failures != before.failures:
        return f"failure {after.failures}/{after.policy.threshold}; stay at {after.describe()}"
    if before.paused:
        return "paused"
    return f"wait at {after.describe()}"
