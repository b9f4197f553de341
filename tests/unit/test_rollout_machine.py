"""The rollout state machine, including property tests over random verdict sequences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollout import machine as m
from rollout.analysis import Outcome, Verdict
from rollout.machine import ActionKind, Phase, Rollout
from rollout.policy import RolloutPolicy

T0 = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = RolloutPolicy(steps=(5, 10, 25, 50, 100), threshold=2)
PASS, FAIL, WAIT = Verdict(Outcome.PASS), Verdict(Outcome.FAIL), Verdict(Outcome.INCONCLUSIVE)


def run(
    verdicts: list[Verdict], policy: RolloutPolicy = POLICY
) -> tuple[Rollout, list[tuple[Rollout, list[m.Action]]]]:
    r = m.start("digits", "1", "2", policy, T0)
    trace = []
    for i, v in enumerate(verdicts):
        r, actions = m.on_verdict(r, v, T0 + timedelta(seconds=i + 1))
        trace.append((r, actions))
    return r, trace


def test_happy_path_goes_shadow_then_every_step_then_promotes() -> None:
    r = m.start("digits", "1", "2", POLICY, T0)
    assert (r.phase, r.canary_weight, r.mirror_share) == (Phase.SHADOW, 0.0, 1.0)
    weights = []
    for _ in range(4):
        r, actions = m.on_verdict(r, PASS, T0)
        assert actions == []
        weights.append(r.canary_weight)
    assert weights == [0.05, 0.10, 0.25, 0.50]
    r, actions = m.on_verdict(r, PASS, T0)
    assert r.phase is Phase.PROMOTED and r.canary_weight == 0.0
    assert [a.kind for a in actions] == [ActionKind.PROMOTE, ActionKind.TAG_VERSION]


def test_threshold_failures_roll_back_with_alias_removal_tag_and_alert() -> None:
    r, trace = run([PASS, FAIL, WAIT, FAIL])
    assert r.phase is Phase.ROLLED_BACK and r.failures == 2
    assert [a.kind for a in trace[-1][1]] == [
        ActionKind.REMOVE_CHALLENGER,
        ActionKind.TAG_VERSION,
        ActionKind.ALERT,
    ]
    assert "2 failed analyses" in r.reason


def test_inconclusive_waits_on_the_same_step() -> None:
    r, _ = run([PASS, PASS, WAIT, WAIT, WAIT])
    assert (r.phase, r.step) == (Phase.CANARY, 1)


def test_pause_freezes_progress_and_keeps_traffic_resume_continues() -> None:
    r, _ = run([PASS, PASS])
    r, _ = m.pause(r, T0)
    paused, _ = m.on_verdict(r, PASS, T0)
    assert paused == r and paused.canary_weight == 0.10
    assert "paused" in paused.describe()
    r, _ = m.resume(r, T0)
    r, _ = m.on_verdict(r, PASS, T0)
    assert r.step == 2


def test_manual_controls() -> None:
    r, _ = run([PASS])
    promoted, actions = m.promote_now(r, T0, "cli:ana")
    assert promoted.phase is Phase.PROMOTED and actions[0].kind is ActionKind.PROMOTE
    aborted, actions = m.abort(r, T0, "challenger alias deleted")
    assert aborted.phase is Phase.ABORTED and actions[0].kind is ActionKind.REMOVE_CHALLENGER
    assert m.abort(aborted, T0, "again") == (aborted, [])  # terminal states absorb


def test_champion_moved_by_hand() -> None:
    r, _ = run([PASS])
    to_challenger, actions = m.champion_moved(r, "2", T0)
    assert to_challenger.phase is Phase.PROMOTED and actions == []  # the alias already moved
    elsewhere, actions = m.champion_moved(r, "7", T0)
    assert elsewhere.phase is Phase.ABORTED and actions[0].kind is ActionKind.REMOVE_CHALLENGER
    assert m.champion_moved(r, "1", T0) == (r, [])


def test_start_refuses_the_champion_itself() -> None:
    with pytest.raises(ValueError, match="already the champion"):
        m.start("digits", "3", "3", POLICY, T0)


def test_without_shadow_starts_in_canary_and_steps_must_end_at_100() -> None:
    r = m.start("digits", "1", "2", RolloutPolicy(shadow=False), T0)
    assert (r.phase, r.canary_weight) == (Phase.CANARY, 0.05)
    with pytest.raises(ValueError, match="end at 100"):
        RolloutPolicy(steps=(5, 50))
    with pytest.raises(ValueError, match="strictly increasing"):
        RolloutPolicy(steps=(50, 10, 100))


# passes dominate, so that long runs reach promotion; the rarer events interleave
EVENTS = st.lists(
    st.sampled_from(
        ["pass"] * 8 + ["fail", "fail", "wait", "pause", "resume", "abort", "promote", "champion_moved"]
    ),
    max_size=40,
)


def _apply(r: Rollout, event: str, now: datetime) -> tuple[Rollout, list[m.Action]]:
    verdicts = {"pass": PASS, "fail": FAIL, "wait": WAIT}
    if event in verdicts:
        return m.on_verdict(r, verdicts[event], now)
    if event == "pause":
        return m.pause(r, now)
    if event == "resume":
        return m.resume(r, now)
    if event == "abort":
        return m.abort(r, now, "abort")
    if event == "promote":
        return m.promote_now(r, now, "test")
    return m.champion_moved(r, "9", now)


@settings(max_examples=400, deadline=None)
@given(
    events=EVENTS,
    threshold=st.integers(1, 4),
    steps=st.sampled_from([(100,), (50, 100), (5, 10, 25, 50, 100), (1, 2, 3, 4, 5, 100)]),
    shadow=st.booleans(),
)
def test_properties_over_random_event_sequences(
    events: list[str], threshold: int, steps: tuple[int, ...], shadow: bool
) -> None:
    policy = RolloutPolicy(threshold=threshold, steps=steps, shadow=shadow)
    if not shadow and steps == (100,):
        return  # a canary that starts at 100 % is a promotion; nothing to roll out
    r = m.start("digits", "1", "2", policy, T0)
    champions = {"1"}
    passed_steps: set[int] = set()
    shadow_passed = not shadow
    promotions = 0
    for i, event in enumerate(events):
        before = r
        r, actions = _apply(r, event, T0 + timedelta(seconds=i))
        kinds = [a.kind for a in actions]
        if before.active and not before.paused and event == "pass":
            if before.phase is Phase.SHADOW:
                shadow_passed = True
            else:
                passed_steps.add(before.step)
        if ActionKind.PROMOTE in kinds:
            promotions += 1
            champions = {"2"}
            if event == "pass":  # automatic promotion only after the shadow gate and every step < 100 passed
                assert shadow_passed and passed_steps == set(range(len(steps) - 1))
        # the challenger's traffic is always one of the configured steps, or none
        assert r.canary_weight in {0.0} | {s / 100 for s in steps if s < 100}
        if r.phase is Phase.ROLLED_BACK:
            assert r.canary_weight == 0.0 and r.mirror_share == 0.0
            if before.active:
                assert ActionKind.REMOVE_CHALLENGER in kinds and ActionKind.ALERT in kinds
                assert ActionKind.PROMOTE not in kinds
        if not before.active:
            assert r == before and actions == []  # terminal states absorb every event
        assert r.failures <= threshold
    assert promotions <= 1 and len(champions) == 1  # never two champions, never promoted twice
