"""Rollout policy settings (``LIFECYCLE_ROLLOUT_*``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from annotated_types import Ge, Gt, Le
from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lifecycle.names import ROLLOUT_TAG_PREFIX

Share = Annotated[float, Ge(0), Le(1)]
"""Registered-model tags ``lifecycle.rollout.<setting>`` override the policy for that model's rollouts."""


class RolloutPolicy(BaseSettings):
    """How a challenger is rolled out: shadow, canary steps, analysis thresholds and sample sizes.
    Per model, any field can be overridden by a registered-model tag ``lifecycle.rollout.<field>``."""

    model_config = SettingsConfigDict(env_prefix="LIFECYCLE_ROLLOUT_", extra="forbid", frozen=True)

    shadow: bool = True
    """Start with a shadow phase (mirrored traffic, never answering) before the canary steps."""
    shadow_share: Share = 1.0
    """Share of champion traffic mirrored to the challenger during the shadow phase."""
    canary_mirror_share: Share = 0.25
    """Share of champion-answered requests still mirrored during the canary (agreement checks)."""
    steps: tuple[int, ...] = (5, 10, 25, 50, 100)
    """Canary traffic percentages. Passing the analysis of the step before 100 promotes."""
    interval_s: Annotated[float, Gt(0)] = 60.0
    """Analysis interval: one verdict per interval per rollout."""
    threshold: Annotated[int, Ge(1)] = 2
    """Failed analyses that roll a rollout back."""
    min_shadow_pairs: Annotated[int, Ge(1)] = 200
    """Paired champion/challenger requests the shadow gate needs before it gives a verdict."""
    min_canary_requests: Annotated[int, Ge(1)] = 50
    """Challenger-answered requests each canary step needs before it gives a verdict."""
    min_canary_pairs: Annotated[int, Ge(1)] = 30
    """Mirrored pairs below which the canary's agreement checks are left out (reported as such)."""
    min_agreement: Share = 0.98
    """Top-1 agreement with the champion on paired requests (for a compressed variant of the same model)."""
    max_error_rate_increase: Share = 0.005
    """Challenger error rate may exceed the champion's by at most this much (0.005 = 0.5 pt)."""
    max_p99_ratio: Annotated[float, Gt(0)] = 1.5
    """Challenger p99 latency ≤ ratio × champion p99 + ``latency_slack_ms``."""
    latency_slack_ms: Annotated[float, Ge(0)] = 2.0
    """Absolute slack on the p99 check: sub-millisecond p99s on a shared machine are noise."""
    max_confidence_divergence: Share = 0.15
    """Largest Kolmogorov–Smirnov distance between the two models' confidences on paired requests."""

    @field_validator("steps")
    @classmethod
    def _check_steps(cls, steps: tuple[int, ...]) -> tuple[int, ...]:
        if not steps or steps[-1] != 100:
            raise ValueError(f"canary steps must end at 100 (%), got {list(steps)}")
        if any(not 0 < s <= 100 for s in steps) or list(steps) != sorted(set(steps)):
            raise ValueError(
                f"canary steps must be strictly increasing percentages in (0, 100], got {list(steps)}"
            )
        return steps

    def with_overrides(self, tags: Mapping[str, str]) -> RolloutPolicy:
        """This policy with the settings a model's ``lifecycle.rollout.*`` tags give (set them in the
        MLflow UI, like Flagger's per-canary analysis): ``interval_s`` = ``5``, ``steps`` = ``10,50,100``.

        :raises ValueError: naming the tag, for an unknown setting or a value that does not validate.
        """
        overrides: dict[str, Any] = {}
        for key, value in tags.items():
            if not key.startswith(ROLLOUT_TAG_PREFIX):
                continue
            name = key.removeprefix(ROLLOUT_TAG_PREFIX)
            if name not in type(self).model_fields:
                raise ValueError(
                    f"tag {key!r}: no rollout setting {name!r}; known: {', '.join(type(self).model_fields)}"
                )
            overrides[name] = tuple(v.strip() for v in value.split(",")) if name == "steps" else value
        if not overrides:
            return self
        try:
            return type(self).model_validate({**self.model_dump(), **overrides})
        except ValidationError as exc:
            problems = "; ".join(
                f"tag '{ROLLOUT_TAG_PREFIX}{e['loc'][0]}' = {tags.get(ROLLOUT_TAG_PREFIX + str(e['loc'][0]))!r}: {e['msg']}"
                for e in exc.errors()
            )
            raise ValueError(problems) from None
