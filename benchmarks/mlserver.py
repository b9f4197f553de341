"""MLServer for the serving benchmark: its own virtual environment (its pins differ from ours), made on
first use from the same package index, and a server for one MLflow model through its MLflow runtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lifecycle.child_process import ManagedProcess
from tests.conftest import free_port

MLSERVER_VENV = Path(__file__).resolve().parent.parent / ".venv-mlserver"
MLSERVER_PINS = ("mlserver==1.7.1", "mlserver-mlflow==1.7.1", "uvloop==0.21.0")
"""uvloop: MLServer 1.7.1's inference workers call ``asyncio.get_event_loop()``, which uvloop 0.22+ refuses."""


def mlserver_python() -> Path:
    """MLServer's interpreter, installing it into its own environment on first use."""
    python = MLSERVER_VENV / "bin" / "python"
    if not (MLSERVER_VENV / "bin" / "mlserver").exists():
        subprocess.run([sys.executable, "-m", "venv", str(MLSERVER_VENV)], check=True)
        pins = [f"{p}=={__import__(p).__version__}" for p in ("mlflow", "onnxruntime")]
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *MLSERVER_PINS, *pins],
            check=True,
        )  # fmt: skip
    return python


def start_mlserver(workdir: Path, model_dir: Path, name: str) -> tuple[ManagedProcess, str]:
    python = mlserver_python()
    root = workdir / "mlserver"
    (root / name).mkdir(parents=True, exist_ok=True)
    port = free_port()
    (root / "settings.json").write_text(json.dumps({
        "http_port": port, "grpc_port": free_port(), "metrics_port": free_port(), "host": "127.0.0.1",
    }))  # fmt: skip
    (root / name / "model-settings.json").write_text(json.dumps({
        "name": name, "implementation": "mlserver_mlflow.MLflowRuntime", "parameters": {"uri": str(model_dir)},
    }))  # fmt: skip
    env = {**os.environ, "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    process = ManagedProcess(
        "mlserver", [str(python.parent / "mlserver"), "start", str(root)],
        health_url=f"http://127.0.0.1:{port}/v2/models/{name}/ready", log_path=workdir / "mlserver.log",
        env=env, cwd=root, startup_timeout_s=240,
    )  # fmt: skip
    process.start()
    return process, f"http://127.0.0.1:{port}"
