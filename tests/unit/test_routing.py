"""Routing from a traffic plan: sticky canary by request key, random otherwise, mirror share."""

from __future__ import annotations

import random
import uuid

import pytest

from lifecycle.db.traffic import TrafficPlan
from serving.routing import Router, key_bucket
from serving.slot import Served


def _router(plan: TrafficPlan | None, fail_load: bool = False) -> Router:
    def load(version: str, role: str) -> Served:
        if fail_load:
            raise RuntimeError("artifact checksum mismatch")
        return Served("m", version, role, runner=None, contract=None, loaded_at="")  # type: ignore[arg-type]

    router = Router("m", lambda _: plan, load, rng=random.Random(0))
    router.refresh()
    return router


def test_no_plan_means_champion_only() -> None:
    router = _router(None)
    assert router.canary("k") is None and router.mirror() is None


@pytest.mark.parametrize("weight", [0.05, 0.25, 0.5])
def test_canary_share_by_key_is_sticky_and_close_to_the_weight(weight: float) -> None:
    router = _router(TrafficPlan(1, "2", weight, 0.0))
    keys = [uuid.uuid4().hex for _ in range(4000)]
    chosen = {k for k in keys if router.canary(k) is not None}
    assert abs(len(chosen) / len(keys) - weight) < 0.03
    assert chosen == {k for k in keys if router.canary(k) is not None}  # same key, same answer
    wider = _router(TrafficPlan(1, "2", min(1.0, weight * 2), 0.0))
    assert chosen <= {k for k in keys if wider.canary(k) is not None}  # a growing share keeps its keys


def test_without_a_key_the_share_is_random_and_mirroring_follows_its_share() -> None:
    router = _router(TrafficPlan(1, "2", 0.25, 0.5))
    canary = sum(router.canary(None) is not None for _ in range(4000)) / 4000
    mirrored = sum(router.mirror() is not None for _ in range(4000)) / 4000
    assert abs(canary - 0.25) < 0.03 and abs(mirrored - 0.5) < 0.03


def test_a_challenger_that_cannot_load_is_still_routed_so_its_errors_count() -> None:
    router = _router(TrafficPlan(1, "2", 1.0, 1.0), fail_load=True)
    routed = router.canary("k")
    assert routed is not None and routed.served is None and "checksum" in (routed.error or "")


def test_key_bucket_is_uniform_in_unit_interval() -> None:
    buckets = [key_bucket(str(i)) for i in range(10_000)]
    assert min(buckets) >= 0.0 and max(buckets) < 1.0
    assert abs(sum(b < 0.1 for b in buckets) / len(buckets) - 0.1) < 0.01
