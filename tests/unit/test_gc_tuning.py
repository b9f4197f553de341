"""The serving worker's collector set-up (run in a child interpreter: freezing is process-wide) and
the pause watch."""

from __future__ import annotations

import gc
import json
import subprocess
import sys

from serving.gc_tuning import watch


def _in_child(code: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout))


def test_settle_heap_freezes_what_exists_and_sets_the_young_threshold() -> None:
    result = _in_child(
        "import gc, json\n"
        "from serving.gc_tuning import settle_heap\n"
        "keep = [[i] for i in range(20000)]\n"
        "before = gc.get_freeze_count()\n"
        "settle_heap(freeze=True, gen0_threshold=4321)\n"
        "print(json.dumps({'before': before, 'frozen': gc.get_freeze_count(),"
        " 'left': len(gc.get_objects()), 'threshold': gc.get_threshold()}))\n"
    )
    assert result["before"] == 0
    assert isinstance(result["frozen"], int) and result["frozen"] > 20_000  # the lists and the imports
    assert isinstance(result["left"], int) and result["left"] < 1_000  # nothing left for a full scan
    assert result["threshold"] == [4321, *gc.get_threshold()[1:]]


def test_settle_heap_can_leave_the_collector_as_python_sets_it() -> None:
    result = _in_child(
        "import gc, json\n"
        "from serving.gc_tuning import settle_heap\n"
        "default = gc.get_threshold()\n"
        "settle_heap(freeze=False, gen0_threshold=0)\n"
        "print(json.dumps({'frozen': gc.get_freeze_count(), 'same': gc.get_threshold() == default}))\n"
    )
    assert result == {"frozen": 0, "same": True}


def test_watch_counts_collections_and_their_pauses() -> None:
    w = watch()
    assert watch() is w and gc.callbacks.count(w) == 1  # installed once per process
    before = w.status()
    gc.collect()
    after = w.status()
    assert after["collections"][2] == before["collections"][2] + 1  # type: ignore[index]
    assert after["pause_s"] > before["pause_s"]  # type: ignore[operator]
    assert after["longest_pause_ms"] > 0  # type: ignore[operator]
