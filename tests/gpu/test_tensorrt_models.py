"""TensorRT variants of the real pretrained models, built and run on an NVIDIA GPU.

One command on a machine with a GPU: ``make test-gpu`` (installs the tensorrt extra, then runs this
folder). Everywhere else every test is skipped with the reason TensorRT gives (no package, no
cuda-python, or no GPU visible to CUDA)."""

from __future__ import annotations

from pathlib import Path

import pytest

from intake.pretrained import PRETRAINED
from lifecycle.runtimes.base import RuntimeUnavailableError
from optimize.run import optimize
from registry.memory import InMemoryModelRegistry, InMemoryRunTracker


def _tensorrt_unavailable() -> str | None:
    from lifecycle.runtimes import tensorrt

    try:
        tensorrt._import()
    except RuntimeUnavailableError as exc:
        return str(exc)
    return None


REASON = _tensorrt_unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"TensorRT cannot run here: {REASON}")


@pytest.mark.parametrize("model", list(PRETRAINED))
def test_tensorrt_variants_build_run_and_are_judged(model: str, tmp_path: Path) -> None:
    package = PRETRAINED[model](tmp_path, n=64)
    registry, tracker = InMemoryModelRegistry(), InMemoryRunTracker()
    registry.register(package)
    report = optimize(
        registry, tracker, package.name, "1", tmp_path / "run", recipes=["tensorrt-fp16", "tensorrt-int8"],
        rounds=50, batch_rounds=5,
    )  # fmt: skip
    for name in ("tensorrt-fp16", "tensorrt-int8"):
        row = next(r for r in report.rows if r.name == name)
        assert row.status in ("registered", "rejected"), report.table  # built, run and judged
        assert row.runtime == "tensorrt" and row.value is not None
