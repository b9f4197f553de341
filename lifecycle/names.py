"""The words every stage shares: aliases, traffic roles, tag keys and one severity scale.

Aliases and tags are what the MLflow UI shows and what an operator sets there, so each is spelled
in this one place.
"""

from __future__ import annotations

from enum import StrEnum

CHAMPION = "champion"
"""The alias of the version that answers requests."""
CHALLENGER = "challenger"
"""The alias of the version being rolled out; setting it starts a rollout."""

SHADOW = "shadow"
"""A role and rollout phase: mirrored requests, compared, never answering."""
CANARY = "canary"
"""A role and rollout phase: a stepped share of requests answered by the challenger."""
ACTIVE_PHASES = (SHADOW, CANARY)
"""The rollout phases in which serving routes traffic to the challenger."""

TAG_ARTIFACT_SHA256 = "lifecycle.artifact_sha256"
TAG_RUN_ID = "lifecycle.run_id"
TAG_TASK = "lifecycle.task"
"""The contract's task (classification, regression, embedding, detection, tensors)."""
TAG_METRIC = "lifecycle.metric"
"""The name of the version's headline metric (``test_<metric>``)."""
TAG_ROLLOUT_OUTCOME = "lifecycle.rollout"
"""Set on a challenger when its rollout ends: promoted or rolled back."""
TAG_ROLLOUT_REASON = "lifecycle.rollout_reason"
ROLLOUT_TAG_PREFIX = "lifecycle.rollout."
"""Per-model rollout policy overrides, as registered-model tags (``lifecycle.rollout.steps``)."""
SERVING_TAG_PREFIX = "lifecycle.serving."
"""Per-model serving overrides, as registered-model tags (``lifecycle.serving.max_batch_size``)."""


class Severity(StrEnum):
    """How bad a finding is: a drift verdict (``none`` … ``critical``) or an alert (``info`` …)."""

    NONE = "none"
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"
