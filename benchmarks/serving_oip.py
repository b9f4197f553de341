"""The Open Inference Protocol part of ``benchmarks.serving`` (``--part oip``): one serving process
serves the digits teacher, EfficientNet-Lite0 (3×224×224 float32) and all-MiniLM-L6-v2 (128
tokens) at once, all three loaded from the registry.

- concurrency 1: our OIP p50 over the raw ONNX Runtime p50 in-process, binary tensors for
  EfficientNet-Lite0 and MiniLM (goal ≤ +1.0 ms), JSON for digits (goal ≤ +1.5 ms); the raw
  runtime and the server measured in alternating rounds;
- concurrency 32 on the digits ONNX model: ours (OIP JSON) vs MLServer 1.7 (its OIP REST server,
  the model through its MLflow runtime; goal ≥ 1.2×) and ``mlflow models serve`` (goal ≥ 1.0×);
  MLServer runs from its own virtual environment (``.venv-mlserver``, made on first use from the
  same package index), as its pins differ from ours;
- three models under mixed load for ``--mixed-seconds``: each at a fixed request rate, alone and
  then all together; each model's p99 mixed / alone (goal ≤ 1.3×) and the records logged vs the
  requests answered (goal: 0 lost);
- memory: each model's footprint as the host measured it (resident-set growth while it loaded)
  against its ONNX file (goal ≤ 1.5× the file + 64 MB);
- storage per 1,000 requests for each model: its prediction-log rows (measured in the database)
  plus, at the sampling rate, its compressed input tensors (measured by writing them).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table
from sqlalchemy import func, select

from benchmarks.common import rounded
from benchmarks.mlserver import start_mlserver
from benchmarks.oip_load import Served, body_of, c1_p50, drained, p99, paced, raw_p50, status, throughput
from intake import pretrained
from intake.zoo import imagenet_normalise, photo_crops, sentences, tokenize
from lifecycle.child_process import ManagedProcess
from lifecycle.db import create_db_engine, session_factory
from lifecycle.db.schema import PredictionRow
from lifecycle.input_store import InputStore
from lifecycle.runtimes.onnxruntime import OrtRunner
from lifecycle.settings import Settings
from registry.abc import ModelRegistry
from serving.bentoml_process import ServingProcess
from serving.settings import ServingSettings
from tests.conftest import free_port

FOOTPRINT_CONSTANT_MB = 64.0
"""The stated constant of the memory goal: per-model bookkeeping, arena and session overhead."""


def register(registry: ModelRegistry, workdir: Path, digits: str) -> list[Served]:
    """EfficientNet-Lite0 and MiniLM registered beside the digits model, all three @champion."""
    served = []
    local = registry.download(digits, "1", workdir / "digits")
    x = local.splits().x_test[:1].astype(np.float32)
    served.append(Served(digits, local.onnx_path, {"x": x}, binary=False, rate=40.0))
    for name, package, feeds, rate in (
        ("efficientnet-lite0", pretrained.efficientnet_lite0(workdir, n=16), None, 8.0),
        (
            "minilm",
            pretrained.minilm(workdir, n=16, length=128),
            tokenize(sentences(1, seed=5), length=128),
            8.0,
        ),
    ):
        version = registry.register(package)
        registry.set_alias(name, "champion", version.version, actor="benchmark")
        path = workdir / f"{name}.onnx"
        path.write_bytes(package.model_files["model.onnx"])
        image: dict[str, np.ndarray] = {
            package.contract.inputs[0].name: imagenet_normalise(photo_crops(1, seed=9))
        }
        served.append(Served(name, path, dict(feeds) if feeds is not None else image, binary=True, rate=rate))
    return served


def storage_per_1000(
    settings: Settings, models: list[Served], sample_rate: float, workdir: Path
) -> dict[str, Any]:
    """Bytes per 1,000 requests of each model: its logged rows, and its sampled inputs at the rate."""
    engine = create_db_engine(settings.database_url)
    out: dict[str, Any] = {}
    with session_factory(engine)() as session:
        for m in models:
            rows = session.execute(
                select(PredictionRow.features, PredictionRow.summary, PredictionRow.inputs_ref)
                .where(PredictionRow.model_name == m.name).limit(200)
            ).all()  # fmt: skip
            row_bytes = statistics.mean(
                len(json.dumps(r.features)) + len(json.dumps(r.summary)) + len(r.inputs_ref or "") + 120
                for r in rows
            )  # 120: the fixed columns (ids, times, names, numbers) as stored
            store = InputStore(workdir / "store-probe", sample_rate=1.0, batch_items=50)
            for _ in range(50):
                store.offer(m.name, m.feeds, 1)
            store.flush(everything=True)
            item_bytes = store.file_bytes(m.name) / 50
            tabular = len(m.feeds) == 1 and next(iter(m.feeds.values())).ndim == 2
            inputs = 0.0 if tabular else sample_rate * item_bytes
            out[m.name] = {
                "row_bytes": rounded(row_bytes, 1),
                "input_bytes_per_item_compressed": rounded(item_bytes, 1),
                "per_1000_requests_kb": rounded(1000 * (row_bytes + inputs) / 1024, 1),
            }
    engine.dispose()
    return out


def logged_counts(settings: Settings, names: list[str]) -> dict[str, int]:
    engine = create_db_engine(settings.database_url)
    with session_factory(engine)() as session:
        counts = dict(
            session.execute(
                select(PredictionRow.model_name, func.count())
                .where(PredictionRow.model_name.in_(names))
                .group_by(PredictionRow.model_name)
            ).all()
        )
    engine.dispose()
    return {n: int(counts.get(n, 0)) for n in names}


def run(
    settings: Settings, registry: ModelRegistry, digits: str, workdir: Path, mlflow_url: str, *,
    rounds: int, requests: int, seconds: float, mixed_seconds: float, console: Any,
) -> dict[str, Any]:  # fmt: skip
    """Every figure of the OIP part; the caller writes them into ``serving.json``."""
    models = register(registry, workdir, digits)
    serving = ServingSettings(model=digits, port=free_port())
    ours = ServingProcess(settings, serving)
    mlserver, mlflow_serve = None, None
    processes: list[Any] = []
    try:
        ours.start()
        processes.append(ours)
        deadline = time.monotonic() + 120
        while not ours.ready() and time.monotonic() < deadline:
            time.sleep(0.2)
        base = ours.url
        for m in models:  # loads each (lazily) before anything is timed
            body, headers = body_of(m)
            asyncio.run(c1_p50(f"{base}/v2/models/{m.name}/infer", body, headers, 5))

        # -- concurrency 1 against the raw runtime, alternating rounds --------------------------
        over: dict[str, list[float]] = {m.name: [] for m in models}
        c1: dict[str, list[float]] = {m.name: [] for m in models}
        raw: dict[str, list[float]] = {m.name: [] for m in models}
        runners = {m.name: OrtRunner(m.onnx) for m in models}
        for r in range(rounds):
            for m in models:
                count = requests if m.name == digits else max(60, requests // 8)
                raw_ms = raw_p50(runners[m.name], m.feeds, count)
                body, headers = body_of(m)
                ms = asyncio.run(c1_p50(f"{base}/v2/models/{m.name}/infer", body, headers, count))
                raw[m.name].append(raw_ms)
                c1[m.name].append(ms)
                over[m.name].append(ms - raw_ms)
            console.print(f"c1 round {r + 1}/{rounds} done")
        del runners

        # -- concurrency 32 on the digits model: ours vs MLServer vs mlflow models serve ----------
        digits_model = models[0]
        local = registry.download(digits, "1", workdir / "digits-mlflow")
        mlserver, mlserver_url = start_mlserver(workdir, local.model_dir, digits)
        processes.append(mlserver)
        mlflow_port = free_port()
        env = {
            **os.environ, "MLFLOW_TRACKING_URI": mlflow_url,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }  # fmt: skip
        mlflow_serve = ManagedProcess(
            "mlflow models serve",
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{digits}/1", "--env-manager", "local",
             "-p", str(mlflow_port), "-h", "127.0.0.1"],
            health_url=f"http://127.0.0.1:{mlflow_port}/ping", log_path=workdir / "mlflow-serve.log", env=env,
            startup_timeout_s=180,
        )  # fmt: skip
        mlflow_serve.start()
        processes.append(mlflow_serve)
        json_body, json_headers = body_of(digits_model)
        x = digits_model.feeds["x"]
        targets = {
            "ours": (f"{base}/v2/models/{digits}/infer", json_body, json_headers),
            "mlserver": (f"{mlserver_url}/v2/models/{digits}/infer", json_body, json_headers),
            "mlflow_serve": (
                f"http://127.0.0.1:{mlflow_port}/invocations", json.dumps({"inputs": x.tolist()}).encode(),
                {"Content-Type": "application/json"},
            ),
        }  # fmt: skip
        rps: dict[str, list[float]] = {k: [] for k in targets}
        errors: dict[str, int] = dict.fromkeys(targets, 0)
        for r in range(rounds):
            for key in targets if r % 2 == 0 else reversed(list(targets)):
                url, body, headers = targets[key]
                asyncio.run(c1_p50(url, body, headers, 20))
                rate, errs = asyncio.run(throughput(url, body, headers, seconds))
                rps[key].append(rate)
                errors[key] += errs
            console.print(f"c32 round {r + 1}/{rounds} done")
        for p in (mlserver, mlflow_serve):
            p.stop()
            processes.remove(p)

        # -- three models: alone, then mixed -------------------------------------------------------
        asyncio.run(drained(base))
        before = logged_counts(settings, [m.name for m in models])
        alone = {m.name: asyncio.run(paced(base, [m], mixed_seconds / 3))[m.name] for m in models}
        mixed = asyncio.run(paced(base, models, mixed_seconds))
        asyncio.run(drained(base))
        after = logged_counts(settings, [m.name for m in models])
        host = asyncio.run(status(base))["host"]
        answered = {m.name: len(alone[m.name]) + len(mixed[m.name]) for m in models}
        items = {m.name: next(iter(m.feeds.values())).shape[0] for m in models}
        lost = {m.name: answered[m.name] * items[m.name] - (after[m.name] - before[m.name]) for m in models}
    finally:
        for p in processes:
            p.stop()

    storage = storage_per_1000(settings, models, serving.input_sample_rate, workdir)
    footprints = {
        m.name: {
            "footprint_mb": host["models"][m.name]["footprint_mb"],
            "onnx_mb": rounded(m.onnx.stat().st_size / 2**20, 1),
            "goal_mb": rounded(1.5 * m.onnx.stat().st_size / 2**20 + FOOTPRINT_CONSTANT_MB, 1),
        }
        for m in models
    }
    med_over = {name: statistics.median(v) for name, v in over.items()}
    ratio = {m.name: p99(mixed[m.name]) / p99(alone[m.name]) for m in models}
    med_rps = {k: statistics.median(v) for k, v in rps.items()}
    table = Table(title="Open Inference Protocol: three models in one process")
    for column in ("model", "raw p50 (ms)", "OIP p50 c1 (ms)", "over raw (ms)", "p99 alone", "p99 mixed", "mixed/alone",
                   "lost", "footprint / file (MB)", "per 1,000 req (KB)"):  # fmt: skip
        table.add_column(column, justify="left" if column == "model" else "right")
    for m in models:
        n = m.name
        table.add_row(
            f"{n} ({'binary' if m.binary else 'JSON'})", f"{statistics.median(raw[n]):.3f}",
            f"{statistics.median(c1[n]):.3f}", f"{med_over[n]:+.3f}", f"{p99(alone[n]):.1f}", f"{p99(mixed[n]):.1f}",
            f"{ratio[n]:.2f}", str(lost[n]), f"{footprints[n]['footprint_mb']} / {footprints[n]['onnx_mb']}",
            str(storage[n]["per_1000_requests_kb"]),
        )  # fmt: skip
    console.print(table)
    console.print(
        "c32 on the digits model (req/s): "
        + ", ".join(f"{k} {v:.0f}" for k, v in med_rps.items())
        + f"; errors {errors}"
    )
    binary = [m.name for m in models if m.binary]
    return {
        "oip_binary_c1_over_raw_ms": rounded(max(med_over[n] for n in binary), 3),
        "oip_json_c1_over_raw_ms": rounded(med_over[digits], 3),
        "c32_vs_mlserver": rounded(med_rps["ours"] / med_rps["mlserver"]),
        "c32_vs_mlflow_serve": rounded(med_rps["ours"] / med_rps["mlflow_serve"]),
        "lost_records": sum(lost.values()),
        "p99_mixed_vs_alone": rounded(max(ratio.values())),
        "rss_per_model_mb": {n: f["footprint_mb"] for n, f in footprints.items()},
        "oip": {
            "c1": {
                m.name: {
                    "raw_p50_ms": rounded(statistics.median(raw[m.name]), 3),
                    "oip_p50_ms": rounded(statistics.median(c1[m.name]), 3),
                    "over_raw_ms": rounded(med_over[m.name], 3),
                    "encoding": "binary" if m.binary else "json",
                }
                for m in models
            },
            "c32_rps": {k: rounded(v, 1) for k, v in med_rps.items()},
            "c32_errors": errors,
            "mixed": {
                m.name: {
                    "rate_rps": m.rate,
                    "p99_alone_ms": rounded(p99(alone[m.name]), 2),
                    "p99_mixed_ms": rounded(p99(mixed[m.name]), 2),
                    "ratio": rounded(ratio[m.name]),
                    "answered": answered[m.name],
                    "lost_records": lost[m.name],
                }
                for m in models
            },
            "mixed_seconds": mixed_seconds,
            "footprints": footprints,
            "footprint_constant_mb": FOOTPRINT_CONSTANT_MB,
            "storage": storage,
            "input_sample_rate": serving.input_sample_rate,
            "goal_met": {
                "oip_binary_c1": max(med_over[n] for n in binary) <= 1.0,
                "oip_json_c1": med_over[digits] <= 1.5,
                "c32_vs_mlserver": med_rps["ours"] >= 1.2 * med_rps["mlserver"],
                "c32_vs_mlflow_serve": med_rps["ours"] >= med_rps["mlflow_serve"],
                "lost_records": sum(lost.values()) == 0,
                "p99_mixed_vs_alone": max(ratio.values()) <= 1.3,
                "memory": all(f["footprint_mb"] <= f["goal_mb"] for f in footprints.values()),
            },
        },
    }
