"""What the benchmarks share: a throw-away state directory with its own MLflow server, and the
results file every benchmark writes (``benchmarks/results/NAME.json``, read by ``docs/generate.py``)."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from optimize.cpu import cpu_summary
from registry.server import MlflowServerProcess
from tests.conftest import free_port

RESULTS_DIR = Path(__file__).parent / "results"


def start_mlflow(prefix: str) -> tuple[Path, MlflowServerProcess]:
    """A fresh state directory and a started MLflow server (SQLite, local artifacts) on a free port."""
    os.environ["BENTOML_DO_NOT_TRACK"] = "true"
    state = Path(tempfile.mkdtemp(prefix=prefix))
    mlflow = MlflowServerProcess(
        host="127.0.0.1", port=free_port(), backend_uri=f"sqlite:///{state / 'mlflow.db'}",
        artifacts_dir=state / "mlartifacts", state_dir=state,
    )  # fmt: skip
    mlflow.start()
    return state, mlflow


def rounded(value: float | None, digits: int = 4) -> float | None:
    """``value`` as a plain float rounded to ``digits``; ``None`` for a missing or non-finite value
    (JSON has no NaN)."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def write_results(
    name: str, figures: dict[str, Any], *, merge: bool = False, argv: Sequence[str] | None = None
) -> Path:
    """Write ``benchmarks/results/{name}.json``: the benchmark's name, the date (UTC), the machine,
    the command (``argv`` defaults to this process's arguments) and ``figures``; with ``merge``, over
    the previous file's figures (a run of some models keeps the others'). Returns the path."""
    path = RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(exist_ok=True)
    if merge and path.exists():
        figures = {**json.loads(path.read_text())["figures"], **figures}
    arguments = sys.argv[1:] if argv is None else list(argv)
    path.write_text(json.dumps({
        "benchmark": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()}: {cpu_summary()}",
        "command": " ".join([f"python -m benchmarks.{name}", *arguments]),
        "figures": figures,
    }, indent=2, default=float) + "\n")  # fmt: skip
    return path
