"""The rollout state machine: pure functions from (rollout, event) to (rollout, actions).

Phases: shadow → canary step i → promoted | rolled_back | aborted; ``paused`` is a flag that
freezes progress (traffic stays where it is) until resumed. The caller persists the new rollout and
carries out the actions (move aliases, tag the version, alert) — this module does neither.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from rollout.analysis import Outcome, Verdict
from rollout.policy import RolloutPolicy


class Phase(StrEnum):
    SHADOW = "shadow"
    CANARY = "canary"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"

    @property
    def terminal(self) -> bool:
        return self in (Phase.PROMOTED, Phase.ROLLED_BACK, Phase.ABORTED)


class ActionKind(StrEnum):
    PROMOTE = "promote"
    """Move alias ``champion`` to the challenger and remove alias ``challenger``."""
    REMOVE_CHALLENGER = "remove_challenger"
    """Remove alias ``challenger`` (rollback or abort)."""
    TAG_VERSION = "tag_version"
    """Tag the challenger version with the outcome and its reason."""
    ALERT = "alert"


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    reason: str


@dataclass(frozen=True)
class Rollout:
    model: str
    champion: str
    challenger: str
    phase: Phase
    step: int
    """Index into ``policy.steps`` (meaningful in the canary phase)."""
    failures: int
    paused: bool
    step_started_at: datetime
    started_at: datetime
    updated_at: datetime
    policy: RolloutPolicy
    reason: str = ""
    started_by: str = ""
    id: int | None = None

    @property
    def active(self) -> bool:
        return not self.phase.terminal

    @property
    def canary_weight(self) -> float:
        """Share of live traffic the challenger answers."""
        if self.phase is not Phase.CANARY:
            return 0.0
        return self.policy.steps[self.step] / 100.0

    @property
    def mirror_share(self) -> float:
        """Share of champion-answered traffic mirrored to the challenger (off the request path)."""
        if self.phase is Phase.SHADOW:
            return self.policy.shadow_share
        if self.phase is Phase.CANARY:
            return self.policy.canary_mirror_share
        return 0.0

    def describe(self) -> str:
        steps = self.policy.steps
        where = {
            Phase.SHADOW: "shadow",
            Phase.CANARY: f"canary step {self.step + 1}/{len(steps) - 1} ({steps[self.step]} %)",
        }.get(self.phase, self.phase.value)
        return f"{where}{' (paused)' if self.paused else ''}"


Transition = tuple[Rollout, list[Action]]


def start(
    model: str, champion: str, challenger: str, policy: RolloutPolicy, now: datetime, *, started_by: str = ""
) -> Rollout:
    if champion == challenger:
        raise ValueError(f"version {challenger} of {model} is already the champion")
    phase = Phase.SHADOW if policy.shadow else Phase.CANARY
    return Rollout(
        model, champion, challenger, phase, 0, 0, False, now, now, now, policy, started_by=started_by
    )


def on_verdict(r: Rollout, verdict: Verdict, now: datetime) -> Transition:
    """Advance on a pass, count a failure (rolling back at ``policy.threshold``), wait when inconclusive."""
    policy = r.policy
    if not r.active or r.paused or verdict.outcome is Outcome.INCONCLUSIVE:
        return r, []
    if verdict.outcome is Outcome.FAIL:
        failures = r.failures + 1
        if failures >= policy.threshold:
            reason = f"{failures} failed analyses (threshold {policy.threshold}); last: {verdict.summary()}"
            return _end(replace(r, failures=failures), Phase.ROLLED_BACK, reason, now)
        return replace(r, failures=failures, step_started_at=now, updated_at=now), []
    next_step = 0 if r.phase is Phase.SHADOW else r.step + 1
    if policy.steps[next_step] == 100:  # the challenger never sits at 100 %: that is promotion
        return _end(r, Phase.PROMOTED, "shadow and every canary step passed", now)
    return replace(r, phase=Phase.CANARY, step=next_step, step_started_at=now, updated_at=now), []


def pause(r: Rollout, now: datetime) -> Transition:
    return (replace(r, paused=True, updated_at=now), []) if r.active else (r, [])


def resume(r: Rollout, now: datetime) -> Transition:
    if not r.active or not r.paused:
        return r, []
    return replace(r, paused=False, step_started_at=now, updated_at=now), []


def promote_now(r: Rollout, now: datetime, actor: str) -> Transition:
    return _end(r, Phase.PROMOTED, f"promoted by {actor}", now) if r.active else (r, [])


def abort(r: Rollout, now: datetime, reason: str) -> Transition:
    return _end(r, Phase.ABORTED, reason, now) if r.active else (r, [])


def champion_moved(r: Rollout, version: str, now: datetime) -> Transition:
    """Alias ``champion`` moved outside the rollout (e.g. in the MLflow UI)."""
    if not r.active or version == r.champion:
        return r, []
    if version == r.challenger:  # someone promoted by hand: the alias already moved
        return replace(
            r, phase=Phase.PROMOTED, reason="champion moved to the challenger by hand", updated_at=now
        ), []
    return abort(r, now, f"champion moved to v{version} outside the rollout")


def _end(r: Rollout, phase: Phase, reason: str, now: datetime) -> Transition:
    ended = replace(r, phase=phase, paused=False, reason=reason, updated_at=now)
    tag = Action(ActionKind.TAG_VERSION, reason)
    if phase is Phase.PROMOTED:
        return ended, [Action(ActionKind.PROMOTE, reason), tag]
    actions = [Action(ActionKind.REMOVE_CHALLENGER, reason), tag]
    if phase is Phase.ROLLED_BACK:
        actions.append(Action(ActionKind.ALERT, reason))
    return ended, actions
