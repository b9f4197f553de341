"""Retraining settings (``LIFECYCLE_RETRAIN_*``)."""

from __future__ import annotations

from typing import Annotated, Literal

from annotated_types import Ge, Gt, Le
from pydantic_settings import BaseSettings, SettingsConfigDict


class RetrainSettings(BaseSettings):
    """When retraining runs, what it learns from, how the student is distilled and gated."""

    model_config = SettingsConfigDict(env_prefix="LIFECYCLE_RETRAIN_", extra="forbid")

    on_drift: Literal["critical", "warning", "never"] = "critical"
    """Drift severity at or above which a check triggers a retrain."""
    cron: str | None = None
    """Crontab expression (UTC) of scheduled retrains, e.g. ``0 3 * * *``; unset: none."""
    cooldown_s: Annotated[float, Ge(0)] = 3600.0
    """No automatic retrain of a model within this long of its last successful one."""
    lock_ttl_s: Annotated[float, Gt(0)] = 1800.0
    """A retrain holds the per-model lock this long at most (a crashed one frees it then)."""
    window_hours: Annotated[float, Gt(0)] = 24.0
    """Production inputs from this far back are learned from."""
    max_production: Annotated[int, Ge(0)] = 20_000
    """Production inputs learned from at most (the newest)."""
    epochs: Annotated[int, Ge(1)] = 60
    """Epochs of the distillation (bounded by ``max_steps``)."""
    max_steps: Annotated[int, Ge(1)] = 4000
    """Optimizer steps of the distillation at most: with many rows, fewer epochs (never below 5)."""
    temperature: Annotated[float, Gt(0)] = 2.0
    """Softmax temperature of the distillation loss."""
    alpha: Annotated[float, Ge(0), Le(1)] = 0.7
    """Weight of the teacher's soft targets; the rest goes to labeled feedback."""
    refresh_teacher_min_feedback: Annotated[int, Ge(1)] = 20
    """With at least this many labeled feedback rows (and a teacher with weights), the teacher is first
    fine-tuned on them and registered as a new teacher version."""
    refresh_epochs: Annotated[int, Ge(1)] = 8
    """Epochs of a teacher refresh (bounded by ``refresh_max_steps``)."""
    pseudo_label_confidence: Annotated[float, Gt(0), Le(1)] = 0.9
    """In a teacher refresh, unlabeled production rows the teacher gives at least this top-class
    probability are learned with that class as their label (self-training)."""
    refresh_lr: Annotated[float, Gt(0)] = 1e-3
    """Learning rate of a teacher refresh."""
    refresh_max_steps: Annotated[int, Ge(1)] = 200
    """Optimizer steps of a teacher refresh at most: with many rows, fewer epochs (never below 3)."""
    augment_copies: Annotated[int, Ge(0)] = 3
    """Augmented copies of each production row the student also distils on (image networks only;
    the teacher labels them)."""
    relax_agreement: bool = True
    """Tag the challenger so its rollout does not gate on agreement with the champion (it is meant to
    answer differently where the champion has gone wrong); error rate and latency still gate, and the
    retrain's own gates (clean accuracy, accuracy on held-out feedback) have passed."""
    quantize: bool = True
    """Register an INT8 (ORT static) variant of the new student and roll that out when it passes."""
    max_accuracy_drop: Annotated[float, Ge(0)] = 0.01
    """Gate: the new student may lose at most this much accuracy on the clean reference validation
    split against the champion; the INT8 variant at most 0.5 pt against the student."""
    seed: int = 0
    """Seed of the data split, initialisation and batch order of a retrain."""
