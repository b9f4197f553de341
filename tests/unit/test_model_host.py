"""The model host's bookkeeping as plain Python: which models are served, lazy loading, the memory
budget's least-recently-used unloading, and failures that stay with their model. Stand-in slots
(the real slot, router and runtime are served in tests/integration/test_serving_process.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import pytest

from lifecycle.errors import RegistryUnavailableError
from serving.batching import MicroBatcher
from serving.host import MB, HostedModel, ModelHost, NotServedError
from serving.settings import ModelServing, ServingSettings
from serving.slot import ModelNotReadyError, SlotStatus


@dataclass
class FakeSlot:
    name: str
    size_mb: int
    memory: list[int]
    """The fake process's resident set, in bytes (grows by ``size_mb`` on load)."""
    fails: bool = False
    version: str | None = None
    status: SlotStatus = field(init=False)
    loads: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.status = SlotStatus(model=self.name, alias="champion")

    @property
    def ready(self) -> bool:
        return self.version is not None

    def refresh(self, version: str | None = None) -> bool:
        self.loads.append(version)
        if self.fails:
            self.status.last_error = "loading v1 failed: model.onnx: invalid protobuf"
            return False
        self.version = version or "1"
        self.memory[0] += self.size_mb * MB
        return True

    def current(self) -> Any:
        return SimpleNamespace(file_bytes=self.size_mb * MB // 2)

    def unload(self) -> None:
        self.version = None
        self.memory[0] -= self.size_mb * MB


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def make_host(
    listed: dict[str, str] | Callable[[], dict[str, str]],
    sizes: dict[str, int],
    *,
    budget_mb: int = 100,
    default: str | None = "a",
    names: tuple[str, ...] = (),
    failing: tuple[str, ...] = (),
) -> tuple[ModelHost, dict[str, FakeSlot], Clock]:
    memory = [500 * MB]
    slots: dict[str, FakeSlot] = {}
    clock = Clock()

    def build(name: str, pinned: bool) -> HostedModel:
        slot = slots[name] = FakeSlot(name, sizes.get(name, 10), memory, fails=name in failing)
        router = SimpleNamespace(challenger=None, refresh=lambda: None, close=lambda: None)
        return HostedModel(
            name, cast(Any, slot), cast(Any, router), cast(Any, SimpleNamespace(shadow=None)),
            cast(Any, MicroBatcher(lambda items: list(items), max_rows=4)), cast(Any, None),
            cast(Any, MicroBatcher(lambda items: list(items), max_rows=4)), ModelServing.of(ServingSettings(), {}),
            pinned=pinned,
        )  # fmt: skip

    host = ModelHost(
        build, listed if callable(listed) else lambda: dict(listed), default=default, names=names,
        memory_budget_bytes=budget_mb * MB, retry_s=5.0, rss=lambda: memory[0], clock=clock,
    )  # fmt: skip
    return host, slots, clock


def test_models_are_found_by_alias_and_load_on_first_use_not_before() -> None:
    host, slots, _ = make_host({"a": "3", "b": "1"}, {})
    host.discover()
    assert host.names() == ["a", "b"] and not host.get("b").loaded
    with host.using("b") as hosted:
        assert hosted.loaded and hosted.in_flight == 1
    assert host.get("b").in_flight == 0 and slots["b"].loads == ["1"]  # the listed version
    with pytest.raises(NotServedError, match=r"model 'zzz' is not served here \(served: 'a', 'b'\)"):
        host.get("zzz")
    assert host.acquire("a", load=False) is None  # no load without asking for one


def test_only_the_named_models_are_served_when_names_are_given() -> None:
    host, _, _ = make_host({"a": "1", "b": "1", "c": "2"}, {}, names=("c",))
    host.discover()
    assert host.names() == ["a", "c"]  # the default model, and the one named
    with pytest.raises(NotServedError):
        host.get("b")


def test_a_model_that_gets_the_alias_later_is_served_at_the_next_listing() -> None:
    listing = {"a": "1"}
    host, _, _ = make_host(lambda: dict(listing), {})
    host.discover()
    with pytest.raises(NotServedError):
        host.get("late")
    listing["late"] = "1"
    host.refresh()
    with host.using("late") as hosted:
        assert hosted.slot.status.model == "late"


def test_a_model_that_lost_its_alias_serves_while_loaded_and_is_unknown_once_unloaded() -> None:
    listing = {"a": "1", "b": "1", "c": "1"}
    host, _, _ = make_host(lambda: dict(listing), {"b": 60, "c": 60}, budget_mb=100)
    host.discover()
    with host.using("b"):
        pass
    del listing["b"]
    host.refresh()
    with host.using("b") as hosted:  # loaded: keeps serving its last version
        assert hosted.loaded
    with host.using("c"):  # over budget: b, idle, is unloaded
        pass
    with pytest.raises(NotServedError, match="'b' is not served here"):
        host.get("b")


def test_over_budget_the_least_recently_used_idle_model_is_unloaded() -> None:
    host, slots, _ = make_host({n: "1" for n in "abcd"}, {"a": 30, "b": 30, "c": 30, "d": 30}, budget_mb=100)
    host.discover()
    for name in "abc":
        with host.using(name):
            pass
    assert [h.slot.status.model for h in host.loaded()] == ["a", "b", "c"]
    with host.using("b"):  # b is used again: c is now less recently used... but a is pinned
        pass
    held = host.acquire("c")  # c is in flight while d loads
    assert held is not None
    with host.using("d"):
        pass
    # a (default, pinned) and c (in flight) stay; b, the least recently used idle model, goes
    assert sorted(h.slot.status.model for h in host.loaded()) == ["a", "c", "d"]
    assert host.get("b").unloads == 1 and not slots["b"].ready
    host.release(held)
    with host.using("b") as hosted:  # loads again when asked
        assert hosted.loads == 2
    assert sorted(h.slot.status.model for h in host.loaded()) == ["a", "b", "d"]  # c went this time
    status = host.status()
    assert status["loaded_mb"] == 90.0 and status["memory_budget_mb"] == 100.0


def test_footprint_is_what_the_resident_set_grew_by_while_loading() -> None:
    host, _, _ = make_host({"a": "1", "b": "1"}, {"b": 40})
    host.discover()
    with host.using("b") as hosted:
        assert hosted.footprint_bytes == 40 * MB


def test_a_model_in_a_rollout_is_not_unloaded() -> None:
    host, _, _ = make_host({n: "1" for n in "abc"}, {"a": 10, "b": 50, "c": 50}, budget_mb=60)
    host.discover()
    with host.using("b") as b:
        b.router.challenger = object()  # type: ignore[misc]
    with host.using("c"):
        pass
    assert sorted(h.slot.status.model for h in host.loaded()) == ["b", "c"]  # over budget (and logged)
    b.router.challenger = None  # type: ignore[misc]
    with host.using("a"):
        pass
    assert sorted(h.slot.status.model for h in host.loaded()) == ["a", "c"]


def test_a_model_that_fails_to_load_answers_for_itself_and_is_retried_later() -> None:
    host, slots, clock = make_host({"a": "1", "bad": "1"}, {}, failing=("bad",))
    host.discover()
    with pytest.raises(
        ModelNotReadyError, match=r"'bad' could not be loaded: loading v1 failed: model\.onnx"
    ):
        host.acquire("bad")
    with pytest.raises(ModelNotReadyError):
        host.acquire("bad")  # within retry_s: not tried again
    assert len(slots["bad"].loads) == 1
    clock.now += 10
    slots["bad"].fails = False
    with host.using("bad") as hosted:
        assert hosted.loaded and hosted.load_error is None
    with host.using("a") as hosted:  # the other models never noticed
        assert hosted.loaded


def test_an_unreachable_registry_keeps_the_last_list() -> None:
    answers: list[dict[str, str] | Exception] = [{"a": "1", "b": "1"}, RegistryUnavailableError("down")]

    def listing() -> dict[str, str]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    host, _, _ = make_host(listing, {})
    host.discover()
    host.discover()
    assert host.names() == ["a", "b"] and host.registry_error == "down"


def test_readiness_is_the_default_model_loaded_or_without_one_a_listing() -> None:
    host, _, _ = make_host({"a": "1"}, {})
    host.discover()
    assert not host.ready
    with host.using("a"):
        pass
    assert host.ready
    headless, _, _ = make_host({"b": "1"}, {}, default=None)
    assert not headless.ready
    headless.discover()
    assert headless.ready
