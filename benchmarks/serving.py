"""Serving benchmark, everything in one run on the same registered version and the same load client
(aiohttp, which can drive concurrency 32 on loopback):

- raw runtime p50 in-process vs our service's p50 at concurrency 1 (goal: ≤ raw + 1.5 ms); the raw
  runtime is also timed with 2 ms idle between calls, which is how a server at concurrency 1 calls it;
- our cost over a bare BentoML service on the same ONNX file with the same framework path and
  settings (a FastAPI route mounted into the service, as our ``/v1/predict``): routing, validation,
  batching, metrics, prediction log; goal ≤ +0.3 ms at concurrency 1, judged on 3 blocks of requests
  sent one at a time to ours and the bare route in a shuffled order (finer than the round medians,
  which are shown too). Also shown: bare services with ``@bentoml.api`` (async, tuned like ours;
  and written the default way: a sync API, access log on);
- throughput at concurrency 32: ours vs ``mlflow models serve`` (goal ≥ 1.0×), and our adaptive
  batching on vs off (the same service started with ``LIFECYCLE_SERVING_MAX_BATCH_SIZE=1``; goal
  ≥ 1.5×); BentoML's own batching (``/v1/predict_array``) for comparison;
- bounded load for ``--soak`` seconds, then shutdown: requests answered == records logged;
- ``--part oip``: the Open Inference Protocol with three models in one process (``benchmarks.serving_oip``).

    .venv/bin/python -m benchmarks.serving [--example digits-teacher] [--rounds 5] [--seconds 8] [--soak 60]

The load client shares the 2 cores with the servers; every system pays that equally.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from benchmarks import serving_oip
from benchmarks.common import rounded, start_mlflow, write_results
from cli.workflows import train_and_register
from control.services import connect
from lifecycle.child_process import ManagedProcess
from lifecycle.db import create_db_engine, session_factory
from lifecycle.db.schema import PredictionRow
from lifecycle.runtimes.onnxruntime import OrtRunner
from lifecycle.settings import RegistrySettings, Settings
from serving.bentoml_process import ServingProcess
from serving.settings import ServingSettings
from tests.conftest import free_port

console = Console(width=160)
OURS = "ours /v1/predict (adaptive batching)"
UNBATCHED = "ours, batching off"
BARE = "bare BentoML, same path and settings as ours"
MLFLOW = "mlflow models serve"
BENTOML_BATCHING = "ours /v1/predict_array (BentoML batching)"
BARE_TUNED = "bare BentoML, async @bentoml.api, tuned"
BARE_DEFAULTS = "bare BentoML, defaults (sync API)"
KEYS = {
    OURS: "ours",
    UNBATCHED: "ours_unbatched",
    BENTOML_BATCHING: "ours_bentoml_batching",
    BARE: "bare_route",
    BARE_TUNED: "bare_api_tuned",
    BARE_DEFAULTS: "bare_api_defaults",
    MLFLOW: "mlflow_serve",
}
"""The systems' keys in the results file."""


async def _post_ms(http: aiohttp.ClientSession, url: str, body: dict[str, object]) -> float:
    start = time.perf_counter()
    async with http.post(url, json=body) as r:
        await r.read()
        if r.status != 200:
            raise RuntimeError(f"{url}: {r.status} {await r.text()}")
    return (time.perf_counter() - start) * 1e3


async def _warm(http: aiohttp.ClientSession, url: str, body: dict[str, object]) -> None:
    for _ in range(20):
        await _post_ms(http, url, body)


async def _latencies(url: str, body: dict[str, object], n: int) -> list[float]:
    async with aiohttp.ClientSession() as http:
        await _warm(http, url, body)
        return [await _post_ms(http, url, body) for _ in range(n)]


async def _paired(
    targets: dict[str, tuple[str, dict[str, object]]], n: int, seed: int
) -> dict[str, list[float]]:
    """``n`` requests to each target, one at a time, in a shuffled order: every target is timed over
    the same seconds, so a noisy minute shifts them all alike (a fixed alternation biased the
    positions in the cycle)."""
    order = [name for name in targets for _ in range(n)]
    random.Random(seed).shuffle(order)
    out: dict[str, list[float]] = {name: [] for name in targets}
    sessions = {name: aiohttp.ClientSession() for name in targets}
    try:
        for name, (url, body) in targets.items():
            await _warm(sessions[name], url, body)
        for name in order:
            url, body = targets[name]
            out[name].append(await _post_ms(sessions[name], url, body))
    finally:
        for http in sessions.values():
            await http.close()
    return out


async def _throughput(
    url: str, body: dict[str, object], concurrency: int, seconds: float
) -> tuple[float, int, int]:
    done, errors = 0, 0
    stop = time.perf_counter() + seconds

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal done, errors
        while time.perf_counter() < stop:
            async with http.post(url, json=body) as r:
                await r.read()
                if r.status == 200:
                    done += 1
                else:
                    errors += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        start = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        return done / (time.perf_counter() - start), done, errors


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--example", default="digits-teacher", help="the model served (digits-student: a tiny one)"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=400, help="requests per concurrency-1 measurement")
    parser.add_argument("--seconds", type=float, default=8.0, help="per concurrency-32 measurement")
    parser.add_argument("--soak", type=float, default=60.0)
    parser.add_argument(
        "--paired",
        type=int,
        default=1500,
        help="requests per server in each of 3 shuffled ours-vs-bare blocks",
    )
    parser.add_argument(
        "--part", choices=("all", "rows", "oip"), default="all",
        help="rows: the JSON rows API against the raw runtime, bare BentoML and mlflow; oip: the Open "
        "Inference Protocol with three models (benchmarks.serving_oip); a part's run keeps the other's figures",
    )  # fmt: skip
    parser.add_argument("--mixed-seconds", type=float, default=60.0, help="the three models' mixed load")
    args = parser.parse_args()
    state, mlflow = start_mlflow("bench-serving-")
    try:
        settings = Settings(state_dir=state, registry=RegistrySettings(tracking_uri=mlflow.url))
        services = connect(settings)
        console.print(f"training and registering {args.example} …")
        version = train_and_register(services.registry, args.example, alias="champion").version
        figures: dict[str, Any] = {}
        if args.part in ("all", "rows"):
            figures |= rows_part(args, settings, version, state, mlflow.url)
        if args.part in ("all", "oip"):
            figures |= serving_oip.run(
                settings, services.registry, version.name, state, mlflow.url, rounds=args.rounds,
                requests=args.requests, seconds=args.seconds, mixed_seconds=args.mixed_seconds, console=console,
            )  # fmt: skip
        console.print(f"wrote {write_results('serving', figures, merge=True)}")
    finally:
        mlflow.stop()


def rows_part(
    args: argparse.Namespace, settings: Settings, version: Any, state: Path, mlflow_url: str
) -> dict[str, Any]:
    """The JSON rows API (``/v1/predict``): every figure of the rows part."""
    processes: list[ManagedProcess | ServingProcess] = []
    services = connect(settings)
    try:
        local = services.registry.download(version.name, version.version, state / "model")
        x_test = local.splits().x_test
        x = x_test[:1]
        row = {"instances": x.tolist()}

        runner = OrtRunner(local.onnx_path)
        raw: list[float] = []  # p50 of a tight loop, measured in every round beside the servers
        # and with idle gaps between calls, as a server at concurrency 1 calls it (caches and
        # intra-op threads cool down between requests: every server pays this, no HTTP involved)
        raw_gaps: list[float] = []

        ours = ServingProcess(settings, ServingSettings(model=version.name, port=free_port()))
        unbatched_settings = settings.model_copy(update={"state_dir": state / "unbatched"})
        unbatched = ServingProcess(
            unbatched_settings, ServingSettings(model=version.name, port=free_port(), max_batch_size=1)
        )
        bare_port, tuned_port, route_port, mlflow_port = free_port(), free_port(), free_port(), free_port()
        env = {
            **os.environ,
            "BARE_MODEL_PATH": str(local.onnx_path),
            "MLFLOW_TRACKING_URI": mlflow_url,
            # `mlflow models serve` execs `uvicorn` by name: the venv's bin must be on PATH
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        bare, tuned, bare_route = (
            ManagedProcess(
                name, [sys.executable, "-m", "bentoml", "serve", f"benchmarks.bare_service:{name}", "--port", str(port)],
                health_url=f"http://127.0.0.1:{port}/readyz", log_path=state / f"{name}.log", env=env, cwd=Path.cwd(),
            )
            for name, port in (("Bare", bare_port), ("BareTuned", tuned_port), ("BareRoute", route_port))
        )  # fmt: skip
        served = ManagedProcess(
            "mlflow models serve",
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{version.name}/{version.version}",
             "--env-manager", "local", "-p", str(mlflow_port), "-h", "127.0.0.1"],
            health_url=f"http://127.0.0.1:{mlflow_port}/ping", log_path=state / "mlflow-serve.log", env=env,
            startup_timeout_s=180,
        )  # fmt: skip
        for p in (ours, unbatched, bare, tuned, bare_route, served):
            p.start()
            processes.append(p)
        deadline = time.monotonic() + 60
        while not (ours.ready() and unbatched.ready()) and time.monotonic() < deadline:
            time.sleep(0.2)

        urls = {
            OURS: (f"{ours.url}/v1/predict", row),
            UNBATCHED: (f"{unbatched.url}/v1/predict", row),
            BENTOML_BATCHING: (f"{ours.url}/v1/predict_array", {"x": x.tolist()}),
            BARE: (f"http://127.0.0.1:{route_port}/v1/predict", row),
            BARE_TUNED: (f"http://127.0.0.1:{tuned_port}/v1/predict", row),
            BARE_DEFAULTS: (f"http://127.0.0.1:{bare_port}/v1/predict", row),
            MLFLOW: (f"http://127.0.0.1:{mlflow_port}/invocations", {"inputs": x.tolist()}),
        }
        c1: dict[str, list[float]] = {k: [] for k in urls}
        c32: dict[str, list[float]] = {k: [] for k in urls}
        errors: dict[str, int] = dict.fromkeys(urls, 0)
        for r in range(args.rounds):
            raw.append(_raw_p50(runner, x, 2000))
            raw_gaps.append(_raw_p50(runner, x, 300, gap_s=0.002))
            order = list(urls) if r % 2 == 0 else list(reversed(urls))
            for name in order:  # interleaved rounds: each system measured in every round
                url, body = urls[name]
                c1[name].append(statistics.median(asyncio.run(_latencies(url, body, args.requests))))
                rate, _, errs = asyncio.run(_throughput(url, body, 32, args.seconds))
                c32[name].append(rate)
                errors[name] += errs
            console.print(f"round {r + 1}/{args.rounds} done")
        # ours vs the bare route, request by request in a shuffled order: finer than round medians
        paired = [
            asyncio.run(_paired({OURS: urls[OURS], BARE: urls[BARE]}, args.paired, seed)) for seed in range(3)
        ]
        over_bare_blocks = [statistics.median(p[OURS]) - statistics.median(p[BARE]) for p in paired]

        raw_p50 = statistics.median(raw)
        med = {k: statistics.median(v) for k, v in c1.items()}
        # paired per round: each system against the raw runtime measured in the same round
        over = {k: statistics.median(a - b for a, b in zip(v, raw, strict=True)) for k, v in c1.items()}
        rps = {k: statistics.median(v) for k, v in c32.items()}
        table = Table(title=f"serving, {args.example} v1 (ONNX Runtime), medians of interleaved rounds")
        for column in ("system", "p50 c1 (ms)", "over raw (ms)", "req/s c32", "errors c32"):
            table.add_column(column, justify="left" if column == "system" else "right")
        table.add_row("raw ORT in-process (tight loop, every round)", f"{raw_p50:.3f}", "0", "–", "–")
        gaps = statistics.median(a - b for a, b in zip(raw_gaps, raw, strict=True))
        table.add_row(
            "raw ORT in-process, 2 ms idle between calls",
            f"{statistics.median(raw_gaps):.3f}", f"{gaps:+.3f}", "–", "–",
        )  # fmt: skip
        for name in urls:
            table.add_row(
                name, f"{med[name]:.3f}", f"{over[name]:+.3f}", f"{rps[name]:.0f}", str(errors[name])
            )
        console.print(table)
        over_bare_rounds = statistics.median(a - b for a, b in zip(c1[OURS], c1[BARE], strict=True))
        over_bare = statistics.median(over_bare_blocks)
        blocks = " / ".join(f"{d:+.2f}" for d in over_bare_blocks)
        met = {
            "over_raw": over[OURS] <= 1.5,
            "over_bare": over_bare <= 0.3,
            "over_mlflow": rps[OURS] >= rps[MLFLOW],
            "batching_on_off": rps[OURS] >= 1.5 * rps[UNBATCHED],
        }
        checks = [
            (f"ours c1 over raw: {over[OURS]:+.2f} ms (goal ≤ +1.5)", met["over_raw"]),
            (f"ours over bare BentoML (same path and settings) c1: {over_bare:+.2f} ms (goal ≤ +0.3; "
             f"3 × {args.paired} requests each, shuffled one by one: {blocks}; "
             f"from the round medians: {over_bare_rounds:+.2f})", met["over_bare"]),
            (f"ours / mlflow models serve c32: {rps[OURS] / rps[MLFLOW]:.2f}× (goal ≥ 1.0)", met["over_mlflow"]),
            (f"adaptive batching on / off c32: {rps[OURS] / rps[UNBATCHED]:.2f}× (goal ≥ 1.5)", met["batching_on_off"]),
        ]  # fmt: skip
        for label, ok in checks:
            console.print(f"{'ok    ' if ok else 'MISSED'} {label}")
        one, many = (_raw_p50(runner, rows, 300) / len(rows) for rows in (x, x_test[:32]))
        console.print(
            f"the model alone: {one:.3f} ms per row at batch 1, {many:.3f} at batch 32 — batching saves "
            f"{one / many:.2f}× in the runtime itself; the rest of its gain at c32 is per-call overhead"
        )
        ours_status = asyncio.run(_status(f"{ours.url}/admin/status"))
        console.print(f"our adaptive batching over the whole run: {ours_status['batching']}")
        console.print(f"our worker's garbage collector over the whole run: {ours_status['gc']}")

        console.print(f"soak: {args.soak:.0f} s of bounded load (8 clients) on ours, then shutdown …")
        # the log writes asynchronously: the requests just measured may still be pending
        asyncio.run(_drained(f"{ours.url}/admin/status"))
        engine = create_db_engine(settings.database_url)
        with session_factory(engine)() as session:
            before = int(session.scalar(select(func.count()).select_from(PredictionRow)) or 0)
        rate, answered, soak_errors = asyncio.run(_throughput(urls[OURS][0], row, 8, args.soak))
        status = asyncio.run(_status(f"{ours.url}/admin/status"))
        ours.stop()
        processes.remove(ours)
        with session_factory(engine)() as session:
            after = int(session.scalar(select(func.count()).select_from(PredictionRow)) or 0)
        accepted = int(status["prediction_log"]["accepted"])  # type: ignore[index]
        lossless = after - before == answered and after == accepted
        console.print(
            f"soak: {answered} answered at {rate:.0f} req/s, {soak_errors} errors; {after - before} rows logged "
            f"during the soak; {accepted} records accepted and {after} rows in the database over the whole run — "
            + ("ok: answered == logged" if lossless else "MISSED: answered != logged")
        )
        figures: dict[str, Any] = {
            "raw_p50_c1_ms": rounded(raw_p50, 3),
            "raw_gaps_p50_c1_ms": rounded(statistics.median(raw_gaps), 3),
            "raw_gaps_over_raw_ms": rounded(gaps, 3),
            "ours_p50_c1_ms": rounded(med[OURS], 3),
            "bare_p50_c1_ms": rounded(med[BARE], 3),
            "ours_over_raw_c1_ms": rounded(over[OURS], 3),
            "ours_over_bare_c1_ms": rounded(over_bare, 3),
            "ours_over_bare_c1_blocks_ms": [rounded(d, 3) for d in over_bare_blocks],
            "ours_over_bare_c1_rounds_ms": rounded(over_bare_rounds, 3),
            "ours_rps_c32": rounded(rps[OURS], 1),
            "mlflow_serve_rps_c32": rounded(rps[MLFLOW], 1),
            "ours_over_mlflow_c32_ratio": rounded(rps[OURS] / rps[MLFLOW]),
            "batching_on_off_c32_ratio": rounded(rps[OURS] / rps[UNBATCHED]),
            **{f"goal_met_{k}": v for k, v in met.items()},
            **{
                KEYS[name]: {
                    "p50_c1_ms": rounded(med[name], 3),
                    "over_raw_c1_ms": rounded(over[name], 3),
                    "rps_c32": rounded(rps[name], 1),
                    "errors_c32": errors[name],
                }
                for name in urls
            },
            "model_b1_ms_per_row": rounded(one),
            "model_b32_ms_per_row": rounded(many),
            "model_batching_ratio": rounded(one / many),
            "ours_batching": ours_status["batching"],
            "ours_gc": ours_status["gc"],
            "soak_s": args.soak,
            "soak_answered": answered,
            "soak_errors": soak_errors,
            "soak_rps": rounded(rate, 1),
            "soak_rows_logged": after - before,
            "soak_lost_records": answered - (after - before),
            "log_records_accepted": accepted,
            "log_rows_total": after,
            "goal_met_soak_lossless": lossless,
        }
        return figures
    finally:
        for p in processes:
            p.stop()


def _raw_p50(runner: OrtRunner, x: np.ndarray, n: int, gap_s: float = 0.0) -> float:
    out = []
    for _ in range(n):
        if gap_s:
            time.sleep(gap_s)
        start = time.perf_counter()
        runner.run(x)
        out.append((time.perf_counter() - start) * 1e3)
    return statistics.median(out)


async def _status(url: str) -> dict[str, object]:
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        return dict(await r.json())


async def _drained(url: str, timeout_s: float = 30.0) -> None:
    """Wait until the prediction log has written every record it accepted."""
    deadline = time.monotonic() + timeout_s
    while True:
        log = (await _status(url))["prediction_log"]
        if log["pending"] == 0 and log["written"] == log["accepted"]:  # type: ignore[index]
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the prediction log did not drain within {timeout_s:.0f} s: {log}")
        await asyncio.sleep(0.2)


if __name__ == "__main__":
    main()
