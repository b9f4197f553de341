"""One optimization run: a parent MLflow run, a child run per recipe, everything timed together."""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import psutil

from lifecycle.graph import load_onnx, ml_operators
from lifecycle.local_version import ARCHITECTURE_FILE
from lifecycle.nets import Architecture
from lifecycle.runtimes.base import Runner, run_named_batched
from lifecycle.runtimes.onnxruntime import OrtRunner
from lifecycle.tensors import take
from lifecycle.version_builder import load_torch_model
from optimize import gates as gating
from optimize import recipes as recipe_registry
from optimize.cpu import cpu_summary
from optimize.gates import GateConfig, Quality
from optimize.judge import Judge
from optimize.loader import load_variant
from optimize.measure import time_interleaved
from optimize.profile import operator_profile, tool_versions
from optimize.register import variant_package
from optimize.table import Row, markdown, pareto_plot, write_json
from optimize.variant import Parent, RecipeOptions, RecipeSkippedError, Variant
from registry.abc import ModelRegistry, RunTracker

log = logging.getLogger(__name__)


@dataclass
class OptimizeReport:
    name: str
    version: str
    run_id: str
    run_url: str
    rows: list[Row]
    seconds: float
    table: str

    def registered(self) -> list[Row]:
        return [r for r in self.rows if r.status == "registered"]


def load_parent(registry: ModelRegistry, name: str, version: str, workdir: Path) -> Parent:
    local = registry.download(name, version, workdir / "parent")
    if local.format != "onnx":
        raise ValueError(f"{name} v{version} is {local.format}; optimize an ONNX version (its parent)")
    module = load_torch_model(local) if local.has_weights else None
    architecture = None
    if local.has_weights:
        architecture = Architecture.from_json((local.files_dir / ARCHITECTURE_FILE).read_text())
    tags = registry.get_version(name, version).tags
    return Parent(
        name=name, version=version, onnx_model=local.onnx_path.read_bytes(), contract=local.contract,
        data=local.tensor_data(), module=module, architecture=architecture,
        teacher_version=tags.get("lifecycle.teacher_version"),
    )  # fmt: skip


def apply_recipe(spec: str, parent: Parent, options: RecipeOptions, workdir: Path) -> Variant:
    """Apply one recipe or a chain (``distill+ort-int8-static``); each step sees the previous result."""
    current, settings, attempts, notes, first = parent, {}, [], [], None
    variant: Variant | None = None
    for i, (step, recipe) in enumerate(recipe_registry.resolve(spec)):
        step_dir = workdir / f"{i}-{step}"
        step_dir.mkdir(parents=True, exist_ok=True)
        variant = recipe(current, options, step_dir)
        first = first or variant
        settings.update({f"{step}.{k}" if "+" in spec else k: v for k, v in variant.settings.items()})
        attempts += variant.attempts
        notes += variant.notes
        if variant.format == "onnx":
            current = replace(
                current, onnx_model=variant.files["model.onnx"].read_bytes(),
                module=variant.module or current.module, architecture=variant.architecture or current.architecture,
            )  # fmt: skip
    assert variant is not None and first is not None
    return replace(
        variant, recipe=spec, settings=settings, attempts=attempts, notes=notes,
        module=variant.module or first.module, architecture=variant.architecture or first.architecture,
    )  # fmt: skip


def optimize(
    registry: ModelRegistry,
    tracker: RunTracker,
    name: str,
    version: str,
    workdir: Path,
    *,
    recipes: Sequence[str] = recipe_registry.DEFAULT_RECIPES,
    options: RecipeOptions | None = None,
    gate_config: GateConfig | None = None,
    rounds: int = 200,
    batch_rounds: int = 20,
    batch: int | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> OptimizeReport:
    """``batch``: the batch of the throughput figures (default 32 for tabular models, 8 for others,
    whose items are images or sequences); the non-batch sizes are the data's, as the contract
    states them."""
    started = time.perf_counter()
    gate_config = gate_config or GateConfig()
    options = options or RecipeOptions(max_accuracy_drop=gate_config.max_accuracy_drop, gates=gate_config)
    for spec in recipes:
        recipe_registry.resolve(spec)  # fail before any work on a typo
    progress(f"downloading {name} v{version}")
    parent = load_parent(registry, name, version, workdir)
    batch = batch or (32 if parent.contract.is_tabular else 8)
    run_id = tracker.start_run(
        f"optimize {name} v{version}",
        tags={"lifecycle.kind": "optimize", "lifecycle.model": name, "lifecycle.parent_version": version},
    )
    tracker.log_params(run_id, {
        "recipes": ",".join(recipes), "cpu": cpu_summary(), **tool_versions(),
        **{f"gate.{k}": str(v) for k, v in gate_config.__dict__.items()},
        **{f"option.{k}": str(v) for k, v in options.__dict__.items()},
    })  # fmt: skip
    try:
        rows = _run(
            registry,
            tracker,
            parent,
            run_id,
            workdir,
            recipes,
            options,
            gate_config,
            rounds,
            batch_rounds,
            batch,
            progress,
        )
    except BaseException:
        tracker.end_run(run_id, "FAILED")
        raise
    table = markdown(rows)
    out = workdir / "report"
    out.mkdir(exist_ok=True)
    (out / "table.md").write_text(table)
    write_json(rows, out / "table.json")
    pareto_plot(
        rows, out / "pareto.png", f"{name} v{version}: {rows[0].metric if rows else 'metric'} vs latency"
    )
    for artifact in ("table.md", "table.json", "pareto.png"):
        tracker.log_artifact(run_id, out / artifact)
    registered = [r for r in rows if r.status == "registered"]
    tracker.log_metrics(run_id, {
        "variants_registered": len(registered),
        "variants_rejected": sum(r.status == "rejected" for r in rows),
        "best_speedup_b1": max((r.speedup_b1 or 0 for r in registered), default=0.0),
        "seconds": time.perf_counter() - started,
    })  # fmt: skip
    tracker.end_run(run_id)
    return OptimizeReport(
        name, version, run_id, tracker.run_url(run_id), rows, time.perf_counter() - started, table
    )


def _run(
    registry: ModelRegistry, tracker: RunTracker, parent: Parent, run_id: str, workdir: Path,
    recipes: Sequence[str], options: RecipeOptions, gate_config: GateConfig, rounds: int, batch_rounds: int,
    batch: int, progress: Callable[[str], None],
) -> list[Row]:  # fmt: skip
    rows: dict[str, Row] = {}
    variants: dict[str, Variant] = {}
    children: dict[str, str] = {}
    for spec in recipes:
        progress(f"recipe {spec}")
        child = tracker.start_run(spec, parent_run_id=run_id, tags={"lifecycle.recipe": spec})
        children[spec] = child
        try:
            variant = apply_recipe(spec, parent, options, workdir / spec)
        except RecipeSkippedError as exc:
            rows[spec] = Row(spec, "variant", "", "", "skipped", reason=str(exc), run_id=child)
            tracker.set_tags(child, {"lifecycle.status": "skipped", "lifecycle.reason": str(exc)})
            tracker.end_run(child)
            continue
        except Exception as exc:
            log.exception("recipe %s failed", spec)
            rows[spec] = Row(
                spec, "variant", "", "", "failed", reason=f"{type(exc).__name__}: {exc}", run_id=child
            )
            tracker.set_tags(
                child, {"lifecycle.status": "failed", "lifecycle.reason": traceback.format_exc()[-4000:]}
            )
            tracker.end_run(child, "FAILED")
            continue
        variants[spec] = variant
        tracker.log_params(child, variant.settings)

    progress("loading runtimes")
    runners: dict[str, Runner] = {}
    memory: dict[str, float] = {}
    baselines = _baselines(parent, workdir)
    first = take(parent.data.val.inputs, slice(0, 1))
    item_shapes = {name: tuple(arr.shape[1:]) for name, arr in parent.data.test.inputs.items()}
    for label, factory in [
        *baselines.items(),
        *((s, (lambda v=v: load_variant(v, item_shapes=item_shapes))) for s, v in variants.items()),
    ]:
        before = psutil.Process().memory_info().rss
        try:
            runner = factory()
            runner.run_named(first)
        except Exception as exc:
            if label in variants:
                rows[label] = Row(
                    label, "variant", variants[label].runtime, "", "failed", reason=f"load: {exc}"
                )
                tracker.end_run(children[label], "FAILED")
                del variants[label]
                continue
            log.warning("baseline %s unavailable: %s", label, exc)
            continue
        runners[label] = runner
        memory[label] = (psutil.Process().memory_info().rss - before) / 1e6

    judge = Judge(parent, "test", gate_config)
    progress(
        f"timing {len(runners)} runtimes interleaved ({rounds} rounds at batch 1, {batch_rounds} at batch {batch})"
    )
    timings = time_interleaved(
        runners, parent.data.test.inputs, rounds=rounds, batch=batch, batch_rounds=batch_rounds
    )
    fp32 = {k: t for k, t in timings.items() if k in baselines}
    fastest = min(fp32, key=lambda k: fp32[k].p50_ms)
    fastest_batch = max(t.throughput for t in fp32.values())
    torch_p50 = timings["torch-fp32"].p50_ms if "torch-fp32" in timings else None

    for label, runner in runners.items():
        measured = judge.evaluate(judge.outputs_of(runner))
        t = timings[label]
        kind = "baseline" if label in baselines else "variant"
        row = Row(
            label, kind, runner.runtime, runner.precision, "baseline" if kind == "baseline" else "",
            size_bytes=len(parent.onnx_model) if kind == "baseline" else variants[label].size_bytes,
            metric=measured.metric, value=measured.value, delta=measured.value - judge.parent.value,
            fidelity=measured.fidelity, max_abs_diff=measured.metrics.get("max_abs_diff"),
            p50_ms=t.p50_ms, p95_ms=t.p95_ms, p99_ms=t.p99_ms, throughput=t.throughput, batch=batch,
            speedup_b1=timings[fastest].p50_ms / t.p50_ms, speedup_batch=t.throughput / fastest_batch,
            speedup_vs_torch_b1=None if torch_p50 is None else torch_p50 / t.p50_ms, memory_mb=memory[label],
        )  # fmt: skip
        if kind == "variant":
            _judge(
                registry, tracker, parent, variants[label], row, runner, children[label], run_id, gate_config,
                judge.quality(measured), fastest, timings[fastest].p50_ms, t.paired_ratio(timings[fastest]), workdir,
            )  # fmt: skip
        rows[label] = row
    order = [*baselines, *recipes]
    return [rows[k] for k in order if k in rows]


def _baselines(parent: Parent, workdir: Path) -> dict[str, Callable[[], Runner]]:
    """FP32 references timed in the same run: torch eager, ORT fully optimized, OpenVINO f32."""
    # OpenVINO loads only when a run times its baselines
    from lifecycle.runtimes.openvino import OvRunner
    from lifecycle.runtimes.torch_eager import TorchRunner

    source = workdir / "parent-fp32.onnx"
    source.write_bytes(parent.onnx_model)
    out: dict[str, Callable[[], Runner]] = {"ort-fp32": lambda: OrtRunner(parent.onnx_model)}
    if parent.module is not None:
        module, contract = parent.module, parent.contract
        out["torch-fp32"] = lambda: TorchRunner(
            module, input_names=contract.input_names, output_names=contract.output_names
        )
    if not ml_operators(load_onnx(parent.onnx_model)):  # OpenVINO does not read ONNX-ML operators
        out["openvino-fp32-baseline"] = lambda: OvRunner(source, inference_precision="f32")
    return out


def _judge(
    registry: ModelRegistry, tracker: RunTracker, parent: Parent, variant: Variant, row: Row, runner: Runner,
    child: str, run_id: str, config: GateConfig, quality: Quality, baseline: str, baseline_p50: float,
    ratio: float, workdir: Path,
) -> None:  # fmt: skip
    results = gating.evaluate(
        config, quality=quality, latency_ratio=ratio, p50_ms=row.p50_ms or 0.0,
        baseline_p50_ms=baseline_p50, baseline_name=baseline, size_bytes=row.size_bytes or 0,
    )  # fmt: skip
    row.notes = list(variant.notes)
    metrics = {
        k: v for k, v in {
            row.metric: row.value, "metric_delta": row.delta, "fidelity": row.fidelity,
            "max_abs_diff": row.max_abs_diff, "size_bytes": row.size_bytes, "memory_mb": row.memory_mb,
            "p50_ms_b1": row.p50_ms, "p95_ms_b1": row.p95_ms, "p99_ms_b1": row.p99_ms,
            f"throughput_b{row.batch}": row.throughput, "speedup_b1": row.speedup_b1, "latency_ratio_paired": ratio,
            f"speedup_b{row.batch}": row.speedup_batch, "speedup_vs_torch_b1": row.speedup_vs_torch_b1,
        }.items() if v is not None
    }  # fmt: skip
    tracker.log_metrics(child, {**metrics, **{f"gate_{g.gate}_passed": float(g.passed) for g in results}})
    report = workdir / variant.recipe / "report"
    report.mkdir(parents=True, exist_ok=True)
    (report / "attempts.json").write_text(json.dumps(variant.attempts, indent=2))
    (report / "gates.json").write_text(json.dumps([g.__dict__ for g in results], indent=2))
    (report / "operator_profile.json").write_text(
        json.dumps(operator_profile(variant, take(parent.data.val.inputs, slice(0, 1))), indent=2)
    )
    for artifact in report.iterdir():
        tracker.log_artifact(child, artifact, "report")
    reason = gating.rejection_reason(results)
    tags = {"lifecycle.runtime": variant.runtime, "lifecycle.precision": row.precision}
    if reason is not None:
        row.status, row.reason = "rejected", reason
        tracker.set_tags(child, {**tags, "lifecycle.status": "rejected", "lifecycle.reason": reason})
        tracker.end_run(child)
        return
    val_outputs = run_named_batched(runner, parent.data.val.inputs)
    version = registry.register(
        variant_package(parent, variant, row, results, val_outputs, run_id), run_id=child
    )
    row.status, row.version, row.run_id = "registered", version.version, child
    tracker.set_tags(
        child, {**tags, "lifecycle.status": "registered", "lifecycle.registered_version": version.version}
    )
    tracker.end_run(child)
