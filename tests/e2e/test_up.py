"""What a user does on a fresh machine, as real processes: `lifecycle up` (what `make run` runs) on an
empty state directory — MLflow UI up, the digits teacher trained and champion, its variants optimized
and registered, serving answering, `lifecycle predict` showing it — then `lifecycle-demo` through the
whole loop (rollout by alias, shift, drift alert, retrain, rollout), then Ctrl-C stops everything."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lifecycle.db import create_db_engine, session_factory
from registry.mlflow import MlflowModelRegistry
from retrain.jobs import RetrainJobs
from tests.conftest import free_port


def _wait_for(process: subprocess.Popen[str], log: Path, text: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in log.read_text():
            return
        if process.poll() is not None:
            pytest.fail(f"lifecycle up exited with {process.returncode}:\n{log.read_text()}")
        time.sleep(0.5)
    pytest.fail(f"{text!r} not printed within {timeout_s} s:\n{log.read_text()}")


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_up_then_demo_completes_the_loop_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    port, serving_port, control_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "LIFECYCLE_STATE_DIR": str(tmp_path / "state"),
        "LIFECYCLE_REGISTRY_PORT": str(port),
        "LIFECYCLE_SERVING_PORT": str(serving_port),
        "LIFECYCLE_CONTROL_PORT": str(control_port),
        "COLUMNS": "200",
    }
    env.pop("LIFECYCLE_REGISTRY_TRACKING_URI", None)
    log = tmp_path / "up.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "up"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        _wait_for(process, log, "press Ctrl-C to stop", timeout_s=600)
        output = " ".join(log.read_text().split())
        url = f"http://127.0.0.1:{port}"
        assert f"MLflow UI ready at {url}" in output
        assert "registered digits v1 as champion" in output
        assert httpx.get(url, timeout=5).status_code == 200  # the UI itself

        champion = MlflowModelRegistry(url).get_by_alias("digits", "champion")
        assert champion.version == "1"
        assert champion.metrics["test_accuracy"] >= 0.97
        assert 1_000_000 <= champion.metrics["parameter_count"] <= 3_000_000
        assert champion.tags["lifecycle.role"] == "teacher"
        assert (tmp_path / "state" / "mlflow.db").exists() and (tmp_path / "state" / "lifecycle.db").exists()

        serving = f"http://127.0.0.1:{serving_port}"
        assert f"serving at {serving} (ready)" in output
        answer = httpx.post(f"{serving}/v1/predict", json={"instances": [[0.0] * 64]}, timeout=10)
        assert answer.status_code == 200 and answer.json()["version"] == "1"
        predicted = subprocess.run(
            [sys.executable, "-m", "cli", "predict", "--sample", "3"], env=env, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert predicted.returncode == 0, predicted.stderr
        assert "digits v1 (champion)" in predicted.stdout
        control = httpx.get(f"http://127.0.0.1:{control_port}/status", timeout=10).json()
        assert control["webhook"] == "registered" and control["rollouts"] == []
        monitor = httpx.get(f"http://127.0.0.1:{control_port}/monitor/status", timeout=10).json()
        assert monitor["scheduler_running"] is True and monitor["next_run"]
        no_rollout = subprocess.run(
            [sys.executable, "-m", "cli", "rollout", "status", "digits"], env=env,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert no_rollout.returncode == 1 and "has no rollout" in no_rollout.stderr
        seeded = {v.tags.get("lifecycle.recipe") for v in MlflowModelRegistry(url).list_versions("digits")}
        assert {"train", "ort-int8-static", "distill+ort-int8-static"} <= seeded

        started = time.monotonic()
        demo = subprocess.run(
            [sys.executable, "-m", "demo"], env=env, capture_output=True, text=True, timeout=900
        )
        print(demo.stdout[-6000:])
        assert demo.returncode == 0, f"{demo.stdout[-4000:]}\n{demo.stderr[-4000:]}"
        out = " ".join(demo.stdout.split())
        assert "digits@champion = v3" in out  # the distilled student, promoted by its rollout
        assert ", 0 failed," in out  # no client saw an error through two rollouts
        assert "critical drift" in out
        registry = MlflowModelRegistry(url)
        champion = registry.get_by_alias("digits", "champion")
        assert champion.tags["lifecycle.recipe"] in ("retrain-distill", "ort-int8-static")
        assert champion.tags.get("lifecycle.retrain_job") == "1", champion.tags
        # the drift check triggered that retrain (the tour's manual fallback would record "manual")
        engine = create_db_engine(f"sqlite:///{tmp_path / 'state' / 'lifecycle.db'}")
        (job,) = RetrainJobs(session_factory(engine)).history("digits")
        engine.dispose()
        assert (job.id, job.trigger, job.status) == (1, "drift", "succeeded"), job
        assert "job 1 (drift)" in out
        rows = {
            m.group(1): (float(m.group(3)), float(m.group(4)))
            for m in re.finditer(r"│ (\w[\w ]*?) +│ +(\d+) │ +([\d.]+) │ +([\d.]+) │", demo.stdout)
        }
        old_clean, old_shifted = rows["distilled student"]
        new_clean, new_shifted = rows["retrained student"]
        assert new_shifted > old_shifted + 0.1, rows  # the retrain recovered accuracy on the shifted inputs
        assert new_clean >= old_clean - 0.01, rows
        print(f"demo wall time {time.monotonic() - started:.0f} s")
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=120)
    assert code == 0, log.read_text()
    assert "stopped" in log.read_text()
    for stopped in (
        f"http://127.0.0.1:{port}/health",
        f"http://127.0.0.1:{serving_port}/livez",
        f"http://127.0.0.1:{control_port}/healthz",
    ):
        with pytest.raises(httpx.ConnectError):
            httpx.get(stopped, timeout=2)
