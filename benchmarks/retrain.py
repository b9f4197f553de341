"""Retraining benchmark: does distillation-based retraining recover what a shift cost?

Digits, a medium image shift (rotation ≤ 40°, translation ≤ 0.2, zoom ± 0.2) on every production
input, true labels for 5 % of them as feedback. The deployed champion is the INT8 distilled student of
the teacher. Reported on the clean test split and on the same test split shifted: the old champion,
the teacher before and after its refresh, and the retrained champion (the challenger).
Goal: recover ≥ 50 % of the accuracy the old champion lost to the shift, lose ≤ 1 pt on clean data,
and the whole retrain (data → registered challenger) in ≤ 5 minutes on 2 cores.

    .venv/bin/python -m benchmarks.retrain [--production 500] [--feedback 0.05] [--seed 0]

The production inputs are rows no model was trained or selected on (carved out of the training
split before anything is trained).
"""

from __future__ import annotations

import argparse
import time
import uuid
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from sklearn.datasets import load_digits
from sqlalchemy import insert

from benchmarks.common import rounded, start_mlflow, write_results
from control.services import connect
from lifecycle.alerts import Alerter
from lifecycle.data import split
from lifecycle.db import session_factory
from lifecycle.db.feedback import FeedbackStore
from lifecycle.db.schema import PredictionRow
from lifecycle.db.types import utcnow
from lifecycle.distillation import DistillConfig, distill
from lifecycle.examples import get_example
from lifecycle.runtimes.base import run_batched
from lifecycle.runtimes.load import load_version
from lifecycle.settings import RegistrySettings, Settings
from lifecycle.training import accuracy
from lifecycle.version_builder import package_onnx_model, package_torch_model
from monitoring.shifts import Shift, window
from optimize.recipes.ort_quant import int8_static
from optimize.variant import Parent, RecipeOptions
from registry.mlflow import MlflowModelRegistry
from retrain.jobs import RetrainJobs
from retrain.pipeline import Retrainer
from retrain.settings import RetrainSettings

console = Console(width=160)
SHIFT = Shift("image", "medium", 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--production", type=int, default=500)
    parser.add_argument("--feedback", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    bunch = load_digits()
    names = tuple(f"pixel_{r}_{c}" for r in range(8) for c in range(8))
    full = split("digits", bunch.data, bunch.target, names, tuple(map(str, range(10))), seed=args.seed)
    pool_x, pool_y = full.x_train[: args.production], full.y_train[: args.production]
    data = replace(full, x_train=full.x_train[args.production :], y_train=full.y_train[args.production :])
    test_x, test_y = data.x_test, data.y_test
    # each test row shifted in place (row order kept, so labels still line up)
    shifted_test = np.stack(
        [window(r[None], test_y[:1], 1, SHIFT, rng, image_shape=(8, 8))[0] for r in test_x]
    )

    state, mlflow = start_mlflow("bench-retrain-")
    try:
        settings = Settings(state_dir=state, registry=RegistrySettings(tracking_uri=mlflow.url))
        services = connect(settings)
        registry = services.registry
        model = "digits"
        console.print(
            f"train {len(data.x_train)}, production pool {len(pool_x)}, test {len(test_x)}; training the teacher …"
        )
        teacher_ex = get_example("digits-teacher")
        teacher, teacher_arch, _ = teacher_ex.train(data, args.seed)
        registry.register(
            package_torch_model(
                model, teacher, data, architecture=teacher_arch, tags={"lifecycle.role": "teacher"}
            )
        )
        console.print("distilling and quantizing the deployed student …")
        student, student_arch = get_example("digits-student").build(data)
        with torch.no_grad():
            soft = teacher(torch.from_numpy(data.x_train)).numpy()
        distill(
            student, soft, data.x_train, data.y_train, data.x_val, data.y_val, DistillConfig(seed=args.seed)
        )
        fp32 = package_torch_model(model, student, data, architecture=student_arch,
                                   tags={"lifecycle.role": "student", "lifecycle.teacher_version": "1"})  # fmt: skip
        fp32_version = registry.register(fp32).version
        int8 = int8_static(
            Parent.of_splits(model, fp32_version, fp32.onnx_model, fp32.contract, data),
            RecipeOptions(),
            state / "int8",
        )
        champion = registry.register(
            package_onnx_model(
                model,
                int8.files["model.onnx"].read_bytes(),
                data,
                contract=fp32.contract,
                tags={
                    "lifecycle.role": "variant",
                    "lifecycle.recipe": "ort-int8-static",
                    "lifecycle.teacher_version": "1",
                    "lifecycle.parent_version": fp32_version,
                },
            )
        ).version
        registry.set_alias(model, "champion", champion, actor="benchmark")

        production = np.stack(
            [window(r[None], pool_y[:1], 1, SHIFT, rng, image_shape=(8, 8))[0] for r in pool_x]
        )
        sessions = session_factory(services.engine)
        now = utcnow()
        ids = [uuid.uuid4().hex for _ in range(len(production))]
        rows = [
            {"request_id": rid, "ts": now, "model_name": model, "version": champion, "role": "champion", "features": x.tolist(),
             "predicted_class": None, "confidence": None, "latency_ms": 0.0, "error": None}
            for rid, x in zip(ids, production, strict=True)
        ]  # fmt: skip
        with services.engine.begin() as conn:
            conn.execute(insert(PredictionRow), rows)
        labeled = rng.choice(len(ids), size=max(1, round(args.feedback * len(ids))), replace=False)
        store = FeedbackStore(sessions)
        for i in labeled:
            store.record(model, ids[i], int(pool_y[i]), "benchmark")

        retrainer = Retrainer(
            RetrainJobs(sessions), services.locks, registry,
            MlflowModelRegistry(settings.tracking_uri, experiment="lifecycle-retrain"), Alerter(sessions),
            RetrainSettings(refresh_teacher_min_feedback=10, cooldown_s=0), sessions, owner="benchmark",
        )  # fmt: skip
        console.print(f"retraining on {len(production)} shifted production inputs, {len(labeled)} labeled …")
        started = time.perf_counter()
        job = retrainer.run(model, "manual", "benchmark")
        seconds = time.perf_counter() - started
        if job.status != "succeeded":
            raise SystemExit(f"retrain failed: {job.error}")

        def scores(version: str) -> tuple[float, float]:
            v = registry.get_version(model, version)
            runner = load_version(registry.download(model, version, state / "eval" / version), dict(v.tags))
            return accuracy(run_batched(runner, test_x), test_y), accuracy(
                run_batched(runner, shifted_test), test_y
            )

        rows_out = [  # label, figures key, version
            ("old champion (INT8 student)", "old_champion", champion),
            ("teacher before refresh", "teacher_before", "1"),
            ("teacher after refresh", "teacher_after", str(job.teacher_version)),
            ("retrained champion (challenger)", "challenger", str(job.challenger_version)),
        ]
        table = Table(
            title=f"accuracy, digits test split ({len(test_x)} rows), clean and with the shift ({SHIFT})"
        )
        for column in ("model", "version", "clean", "shifted"):
            table.add_column(column, justify="left" if column == "model" else "right")
        results = {}
        for label, key, version in rows_out:
            clean, shifted = scores(version)
            results[key] = (clean, shifted)
            table.add_row(label, version, f"{clean:.4f}", f"{shifted:.4f}")
        console.print(table)
        old_clean, old_shifted = results["old_champion"]
        new_clean, new_shifted = results["challenger"]
        lost = old_clean - old_shifted
        recovered = (new_shifted - old_shifted) / lost if lost > 0 else float("nan")
        clean_loss = old_clean - new_clean
        console.print(
            f"samples: {job.counts}; retrain metrics: { {k: round(v, 4) for k, v in job.metrics.items()} }"
        )
        met = {
            "recovered": recovered >= 0.5,
            "clean_drop": clean_loss <= 0.01,
            "retrain_time": seconds <= 300,
        }
        checks = [
            (
                f"recovered {recovered:.0%} of the {lost * 100:.1f} pt lost to the shift (goal ≥ 50 %)",
                met["recovered"],
            ),
            (f"clean accuracy change {-clean_loss * 100:+.2f} pt (goal ≥ −1 pt)", met["clean_drop"]),
            (f"retrain, data → registered challenger: {seconds:.0f} s (goal ≤ 300 s)", met["retrain_time"]),
        ]
        for label, ok in checks:
            console.print(f"{'ok    ' if ok else 'MISSED'} {label}")
        figures: dict[str, Any] = {
            "production_rows": len(production),
            "labeled_rows": len(labeled),
            "test_rows": len(test_x),
            **{
                key: {
                    "version": version,
                    "clean_accuracy": rounded(results[key][0]),
                    "shifted_accuracy": rounded(results[key][1]),
                }
                for _, key, version in rows_out
            },
            "shift_loss_pt": rounded(lost * 100, 2),
            "recovered_ratio": rounded(recovered),
            "clean_drop_pt": rounded(clean_loss * 100, 2),
            "retrain_s": rounded(seconds, 1),
            **{f"goal_met_{k}": v for k, v in met.items()},
            "samples": dict(job.counts),
            "retrain_metrics": {k: rounded(v) for k, v in job.metrics.items()},
        }
        console.print(f"wrote {write_results('retrain', figures)}")
    finally:
        mlflow.stop()


if __name__ == "__main__":
    main()
