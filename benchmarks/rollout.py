"""Shadow cost: the champion's latency with shadow mirroring on (``--shadow-share`` of requests,
default 100 %, mirrored to an INT8 challenger) vs off, in interleaved rounds on the same serving process (goal: p99 ≤ 1.10×).
Mirrored requests run in a child process by default; ``LIFECYCLE_SERVING_SHADOW_ISOLATION=thread`` measures
the in-process mirror thread instead.

The plan is written to the database exactly as the control plane writes it (a rollout in the
shadow phase, then aborted); serving picks it up within its poll interval.

    .venv/bin/python -m benchmarks.rollout [--example digits-teacher] [--rounds 4] [--requests 1500]

The load client shares the 2 cores with serving; both modes pay that equally.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import aiohttp
import httpx
import numpy as np
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from benchmarks.common import rounded, start_mlflow, write_results
from cli.workflows import train_and_register
from control.services import connect
from lifecycle.db import create_db_engine, session_factory
from lifecycle.db.schema import PredictionRow
from lifecycle.db.types import utcnow
from lifecycle.settings import RegistrySettings, Settings
from lifecycle.version_builder import package_onnx_model
from optimize.recipes.ort_quant import int8_static
from optimize.variant import Parent, RecipeOptions
from rollout import machine
from rollout.policy import RolloutPolicy
from rollout.store import RolloutStore
from serving.bentoml_process import ServingProcess
from serving.settings import ServingSettings
from tests.conftest import free_port

console = Console(width=160)


async def _concurrent_latencies(url: str, rows: np.ndarray, concurrency: int, n: int) -> list[float]:
    out: list[float] = []
    counter = iter(range(n))

    async def worker(http: aiohttp.ClientSession) -> None:
        for i in counter:
            body = {"instances": [rows[i % len(rows)].tolist()]}
            start = time.perf_counter()
            async with http.post(url, json=body) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"{url}: {r.status} {await r.text()}")
            out.append((time.perf_counter() - start) * 1e3)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:
        for _ in range(30):  # warm-up
            async with http.post(url, json={"instances": [rows[0].tolist()]}) as r:
                await r.read()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    return out


def _wait_for_plan(url: str, shadow: bool, timeout_s: float = 30) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = httpx.get(f"{url}/admin/status", timeout=10).json()
        rollout = status["rollout"]
        if (rollout is not None and rollout["loaded"]) == shadow:
            return dict(status)
        time.sleep(0.2)
    raise RuntimeError(f"serving did not {'start' if shadow else 'stop'} mirroring within {timeout_s} s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--example", default="digits-teacher")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--requests", type=int, default=1500, help="requests per mode, round and concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--shadow-share", type=float, default=1.0, help="share of requests mirrored when on")
    args = parser.parse_args()
    state, mlflow = start_mlflow("bench-rollout-")
    serving: ServingProcess | None = None
    try:
        settings = Settings(state_dir=state, registry=RegistrySettings(tracking_uri=mlflow.url))
        services = connect(settings)
        console.print(f"training and registering {args.example} and its INT8 variant …")
        champion = train_and_register(services.registry, args.example, alias="champion").version
        local = services.registry.download(champion.name, champion.version, state / "champion")
        data = local.splits()
        parent = Parent.of_splits(
            champion.name, champion.version, local.onnx_path.read_bytes(), local.contract, data
        )
        variant = int8_static(parent, RecipeOptions(), state / "int8")
        challenger = services.registry.register(
            package_onnx_model(
                champion.name, variant.files["model.onnx"].read_bytes(), data, contract=local.contract
            )
        )
        serving = ServingProcess(
            settings, ServingSettings(model=champion.name, port=free_port(), poll_interval_s=0.5)
        )
        serving.start()
        store = RolloutStore(session_factory(create_db_engine(settings.database_url)))
        policy = RolloutPolicy(shadow_share=args.shadow_share)
        url = f"{serving.url}/v1/predict"
        rows = data.x_test
        results: dict[tuple[str, int], list[tuple[float, float]]] = {}
        shadow_stats: list[dict[str, int]] = []
        for r in range(args.rounds):
            modes = ["off", "on"] if r % 2 == 0 else ["on", "off"]
            for mode in modes:
                for active in store.all_active():
                    store.save(machine.abort(active, utcnow(), "benchmark round over")[0])
                if mode == "on":
                    store.save(
                        machine.start(champion.name, champion.version, challenger.version, policy, utcnow())
                    )
                _wait_for_plan(serving.url, mode == "on")
                before = httpx.get(f"{serving.url}/admin/status", timeout=10).json()["rollout"]
                for c in args.concurrency:
                    lat = asyncio.run(_concurrent_latencies(url, rows, c, args.requests))
                    results.setdefault((mode, c), []).append(
                        (float(np.percentile(lat, 50)), float(np.percentile(lat, 99)))
                    )
                if mode == "on":
                    after = httpx.get(f"{serving.url}/admin/status", timeout=10).json()["rollout"]["shadow"]
                    shadow_stats.append(
                        {
                            k: after[k] - (before["shadow"][k] if before else 0)
                            for k in ("mirrored", "dropped", "failed")
                        }
                    )
            console.print(f"round {r + 1}/{args.rounds} done")

        table = Table(
            title=f"champion latency with shadow off / on ({champion.name} v{champion.version} fp32, shadow = INT8 v{challenger.version}); medians of {args.rounds} interleaved rounds"
        )
        for column in (
            "concurrency",
            "p50 off (ms)",
            "p50 on (ms)",
            "p99 off (ms)",
            "p99 on (ms)",
            "p99 on / off",
        ):
            table.add_column(column, justify="right")
        worst = 0.0
        per_concurrency: dict[str, dict[str, float | None]] = {}
        for c in args.concurrency:
            off, on = results[("off", c)], results[("on", c)]
            medians = {
                f"{p}_{mode}_ms": statistics.median(b[i] for b in runs)
                for p, i in (("p50", 0), ("p99", 1))
                for mode, runs in (("off", off), ("on", on))
            }
            p99_ratio = medians["p99_on_ms"] / medians["p99_off_ms"]
            worst = max(worst, p99_ratio)
            table.add_row(
                str(c),
                *(f"{medians[k]:.3f}" for k in ("p50_off_ms", "p50_on_ms", "p99_off_ms", "p99_on_ms")),
                f"{p99_ratio:.3f}×",
            )
            per_concurrency[f"concurrency_{c}"] = {
                **{k: rounded(v, 3) for k, v in medians.items()},
                "p99_on_off_ratio": rounded(p99_ratio),
            }
        console.print(table)
        mirrored = sum(s["mirrored"] for s in shadow_stats)
        dropped = sum(s["dropped"] for s in shadow_stats)
        failed = sum(s["failed"] for s in shadow_stats)
        console.print(f"shadow: {mirrored} mirrored, {dropped} dropped (queue full), {failed} failed")
        console.print(
            f"{'ok    ' if worst <= 1.10 else 'MISSED'} worst champion p99 on / off: {worst:.3f}× (goal ≤ 1.10×)"
        )
        with session_factory(create_db_engine(settings.database_url))() as session:
            logged = session.scalar(
                select(func.count()).where(PredictionRow.role == "shadow", PredictionRow.error.is_(None))
            )
        console.print(f"shadow rows in the prediction log: {logged} (mirrored and answered: {mirrored})")
        figures: dict[str, Any] = {
            "shadow_share": args.shadow_share,
            **per_concurrency,
            "worst_p99_on_off_ratio": rounded(worst),
            "goal_met_p99_on_off_ratio": worst <= 1.10,
            "shadow_mirrored": mirrored,
            "shadow_dropped": dropped,
            "shadow_failed": failed,
            "shadow_rows_logged": int(logged or 0),
        }
        console.print(f"wrote {write_results('rollout', figures)}")
    finally:
        if serving is not None:
            serving.stop()
        mlflow.stop()


if __name__ == "__main__":
    main()
