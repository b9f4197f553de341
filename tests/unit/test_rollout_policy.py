from __future__ import annotations

import pytest

from rollout.policy import RolloutPolicy

BASE = RolloutPolicy(interval_s=60, steps=(5, 10, 25, 50, 100))


def test_overrides_come_from_lifecycle_rollout_tags_only() -> None:
    policy = BASE.with_overrides(
        {"lifecycle.rollout.interval_s": "5", "lifecycle.rollout.steps": "10,50,100", "team": "x"}
    )
    assert policy.interval_s == 5.0 and policy.steps == (10, 50, 100)
    assert policy.threshold == BASE.threshold
    assert BASE.with_overrides({"team": "x"}) is BASE


@pytest.mark.parametrize(
    ("tags", "named"),
    [
        ({"lifecycle.rollout.intervall_s": "5"}, "no rollout setting 'intervall_s'"),
        ({"lifecycle.rollout.interval_s": "soon"}, "'lifecycle.rollout.interval_s' = 'soon'"),
        ({"lifecycle.rollout.steps": "10,50"}, "'lifecycle.rollout.steps' = '10,50'"),
        ({"lifecycle.rollout.min_agreement": "1.5"}, "'lifecycle.rollout.min_agreement' = '1.5'"),
    ],
)
def test_a_bad_tag_is_named_in_the_error(tags: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        BASE.with_overrides(tags)
