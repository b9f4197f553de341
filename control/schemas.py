"""The control plane API's bodies and answers (its OpenAPI document is generated from them)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from monitoring.monitor import DriftCheck
from rollout.controller import RolloutStatus
from rollout.machine import Rollout


class ErrorAnswer(BaseModel):
    error: str = Field(description="What was wrong, in one line.")


class Health(BaseModel):
    ok: bool
    leader: bool = Field(description="This replica holds the leader lease and decides.")
    owner: str = Field(description="This replica's id (host:pid:suffix).")


class Traffic(BaseModel):
    canary: float = Field(description="Share of requests the challenger answers.")
    mirror: float = Field(description="Share of champion-answered requests mirrored to the challenger.")


class RolloutAnswer(BaseModel):
    id: int | None
    model: str
    champion: str
    challenger: str
    phase: str = Field(description="shadow, canary, promoted, rolled_back or aborted.")
    where: str = Field(description="The phase and step in words.")
    step: int
    steps: list[int] = Field(description="Canary traffic percentages.")
    paused: bool
    failures: int = Field(description="Consecutive failed analyses.")
    threshold: int = Field(description="Failed analyses in a row that roll back.")
    traffic: Traffic
    started_at: str
    step_started_at: str
    updated_at: str
    started_by: str
    reason: str
    interval_s: float

    @classmethod
    def of(cls, r: Rollout) -> RolloutAnswer:
        return cls(
            id=r.id, model=r.model, champion=r.champion, challenger=r.challenger, phase=r.phase.value,
            where=r.describe(), step=r.step, steps=list(r.policy.steps), paused=r.paused, failures=r.failures,
            threshold=r.policy.threshold, traffic=Traffic(canary=r.canary_weight, mirror=r.mirror_share),
            started_at=r.started_at.isoformat(), step_started_at=r.step_started_at.isoformat(),
            updated_at=r.updated_at.isoformat(), started_by=r.started_by, reason=r.reason,
            interval_s=r.policy.interval_s,
        )  # fmt: skip


class VerdictAnswer(BaseModel):
    ts: str
    phase: str
    step: int
    canary_weight: float
    outcome: str = Field(description="pass, fail or wait (too few samples).")
    checks: list[dict[str, Any]] = Field(description="Each check: its name, value, threshold, n and result.")
    samples: dict[str, int] = Field(description="Requests analysed per role.")
    decision: str


class RolloutStatusAnswer(BaseModel):
    rollout: RolloutAnswer
    verdicts: list[VerdictAnswer]

    @classmethod
    def of(cls, status: RolloutStatus) -> RolloutStatusAnswer:
        verdicts = [VerdictAnswer(**{**asdict(v), "ts": v.ts.isoformat()}) for v in status.verdicts]
        return cls(rollout=RolloutAnswer.of(status.rollout), verdicts=verdicts)


class RolloutOnly(BaseModel):
    rollout: RolloutAnswer


class StatusAnswer(BaseModel):
    leader: bool
    owner: str
    webhook: str = Field(description="registered, disabled (polling), or why it is unavailable.")
    registry: str = Field(description="The MLflow UI.")
    rollouts: list[RolloutAnswer] = Field(description="The latest 20 rollouts, newest first.")


class DetectorAnswer(BaseModel):
    name: str
    p_value: float
    threshold: float
    drift: bool
    statistic: float
    drifted: list[str] = Field(description="Features, signals or classes that fired.")


class DriftCheckAnswer(BaseModel):
    id: int | None
    ts: str
    model: str
    version: str
    drift: bool
    severity: str = Field(description="none, warning or critical.")
    summary: str
    n_current: int
    n_reference: int
    detectors: list[DetectorAnswer]
    seconds: float
    mlflow_run_id: str | None
    checked_by: str

    @classmethod
    def of(cls, check: DriftCheck) -> DriftCheckAnswer:
        v = check.verdict
        return cls(
            id=check.id, ts=check.ts.isoformat(), model=check.model, version=check.version, drift=v.drift,
            severity=v.severity.value, summary=v.summary(), n_current=v.n_current, n_reference=v.n_reference,
            detectors=[DetectorAnswer(**asdict(d)) for d in v.detectors], seconds=check.seconds,
            mlflow_run_id=check.run_id, checked_by=check.checked_by,
        )  # fmt: skip


class MonitorStatusAnswer(BaseModel):
    enabled: bool
    scheduler_running: bool
    leader: bool
    interval_s: float
    next_run: str | None
    checks: list[DriftCheckAnswer] = Field(description="The latest 20 drift checks, newest first.")


class ChecksAnswer(BaseModel):
    checks: list[DriftCheckAnswer]


class RunNowBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(
        default=None, min_length=1, max_length=256, description="One model; absent: every monitored model."
    )


class StartBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(pattern=r"^[1-9][0-9]{0,9}$", description="The version to roll out.")


class WebhookAnswer(BaseModel):
    delivery: str
    event: str = Field(description="entity.action of the MLflow event.")
    done: str = Field(description="What the control plane did about it.")
