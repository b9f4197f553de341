"""``lifecycle``: start the stack, train, list and promote models."""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from cli.common import actor, connected, console, fail
from cli.monitor import alerts_command, drift_app, monitor_app
from cli.optimize import optimize_command, register_command
from cli.optimize import table as optimize_table
from cli.predict import predict_command
from cli.render import history_table, versions_table
from cli.retrain import retrain_app
from cli.rollout import rollout_app
from cli.workflows import SEED_RECIPES, seed_registry, seed_variants, train_and_register
from control.compose import Stack
from lifecycle.errors import LifecycleError
from lifecycle.examples import EXAMPLES
from lifecycle.names import CHAMPION
from lifecycle.settings import Settings
from registry.uri import check_alias, check_version

app = typer.Typer(
    name="lifecycle", help="MLOps lifecycle service: registry, optimization, serving, monitoring, retraining.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
)  # fmt: skip


def _wait(check: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return False


@app.command()
def up(
    seed: Annotated[
        bool,
        typer.Option(
            help="On an empty registry: train the digits teacher and register its optimized variants."
        ),
    ] = True,
    seed_recipes: Annotated[
        str, typer.Option(help="Recipes of the seeded variants, comma-separated; empty: none.")
    ] = ",".join(SEED_RECIPES),
) -> None:
    """Start the stack (MLflow server and UI, control plane, serving) and keep it running until Ctrl-C."""
    settings = Settings()
    stack = Stack(settings)
    stopping = threading.Event()
    # Explicit handlers: a process started in the background inherits SIGINT ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        with console.status("starting MLflow server…"):
            started = time.perf_counter()
            services = stack.start()
        console.print(
            f"MLflow UI ready at [bold]{services.registry.ui_url}[/] ({time.perf_counter() - started:.1f} s)"
        )
        if seed:
            with console.status("empty registry: training and registering the digits teacher…"):
                trained = seed_registry(services.registry)
            if trained is not None:
                v = trained.version
                console.print(
                    f"registered [bold]{v.name}[/] v{v.version} as [bold]{CHAMPION}[/]: "
                    f"test accuracy {v.metrics['test_accuracy']:.4f}, "
                    f"{int(v.metrics['parameter_count']):,} parameters, trained in {trained.result.seconds:.1f} s"
                )
                recipes = [r.strip() for r in seed_recipes.split(",") if r.strip()]
                if recipes:
                    with (
                        console.status(f"optimizing v{v.version}: {', '.join(recipes)}…") as status,
                        tempfile.TemporaryDirectory(prefix="seed-") as tmp,
                    ):
                        report = seed_variants(
                            services.registry, v.version, Path(tmp), recipes=recipes,
                            progress=lambda msg: status.update(msg),
                        )  # fmt: skip
                    console.print(
                        optimize_table(report.rows, f"{v.name} v{v.version}: seeded variants", console.width)
                    )
                    console.print(f"optimize run: {report.run_url}")
        with console.status("starting the control plane…"):
            control = stack.start_control()
        console.print(f"control plane at [bold]{control.url}[/] (rollouts: `lifecycle rollout status MODEL`)")
        with console.status("starting serving (BentoML)…"):
            serving = stack.start_serving()
            ready = _wait(serving.ready, 60)
        console.print(
            f"serving at [bold]{serving.url}[/] ("
            + ("ready" if ready else "not ready yet: see /admin/status; it waits for a champion alias")
            + ")"
        )
        console.print(f"state: {settings.state_path}")
        width = max(len(label) for label in stack.urls)
        for label, url in stack.urls.items():
            console.print(f"  {label:<{width}}  {url}")
        console.print("press Ctrl-C to stop")
        while not stopping.wait(0.5):
            pass
    except LifecycleError as exc:
        raise fail(exc) from exc
    finally:
        with console.status("stopping…"):
            stack.stop()
    console.print("stopped")


@app.command()
def train(
    name: Annotated[str, typer.Argument(help=f"Built-in example: {', '.join(EXAMPLES)}.")],
    register_as: Annotated[
        str | None, typer.Option("--as", help="Registered model name (default: NAME).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for split, initialisation and batch order.")] = 0,
    alias: Annotated[str | None, typer.Option(help="Alias to set on the new version.")] = None,
) -> None:
    """Train a built-in example and register it as a new model version."""
    try:
        with connected() as services, console.status(f"training {name}…"):
            trained = train_and_register(
                services.registry, name, model_name=register_as, seed=seed, alias=alias, actor=actor()
            )
    except LifecycleError as exc:
        raise fail(exc) from exc
    v = trained.version
    console.print(
        f"registered [bold]{v.name}[/] v{v.version}: test accuracy {v.metrics['test_accuracy']:.4f} "
        f"({trained.result.seconds:.1f} s of training)"
    )


@app.command()
def examples() -> None:
    """List the built-in examples that ``lifecycle train`` knows."""
    for example in EXAMPLES.values():
        console.print(f"[bold]{example.name}[/] ({example.role}, {example.dataset}): {example.description}")


@app.command()
def models(
    name: Annotated[str | None, typer.Argument(help="Only this registered model.")] = None,
) -> None:
    """Registered models with versions, aliases, lineage and key metrics."""
    try:
        with connected() as services:
            names = [name] if name else services.registry.list_models()
            if not names:
                console.print(
                    "the registry is empty; `lifecycle up` seeds it, `lifecycle train NAME` adds to it"
                )
            for model in names:
                console.print(versions_table(model, services.registry.list_versions(model), console.width))
    except LifecycleError as exc:
        raise fail(exc) from exc


@app.command()
def promote(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[str, typer.Argument(help="Version to promote.")],
    alias: Annotated[str, typer.Option(help="Alias to point at VERSION.")] = CHAMPION,
) -> None:
    """Point an alias (default: champion) at a version."""
    try:
        check_version(version)
        check_alias(alias)
        with connected() as services:
            before = services.registry.aliases(name).get(alias)
            services.registry.set_alias(name, alias, version, actor=actor())
    except LifecycleError as exc:
        raise fail(exc) from exc
    moved = f" (was v{before})" if before and before != version else ""
    console.print(f"{name}@{alias} → v{version}{moved}")


@app.command()
def history(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    alias: Annotated[str | None, typer.Option(help="Only this alias.")] = None,
) -> None:
    """Which version held which alias, when, and who set it."""
    try:
        with connected() as services:
            services.registry.reconcile_history(name)
            console.print(history_table(name, services.history.history(name, alias), console.width))
    except LifecycleError as exc:
        raise fail(exc) from exc


app.command("optimize")(optimize_command)
app.command("register")(register_command)
app.command("predict")(predict_command)
app.add_typer(rollout_app, name="rollout")
app.add_typer(monitor_app, name="monitor")
app.add_typer(drift_app, name="drift")
app.command("alerts")(alerts_command)
app.add_typer(retrain_app, name="retrain")


def main() -> None:
    level = os.environ.get("LIFECYCLE_LOG_LEVEL", "WARNING")
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # the commands print their own MLflow links; MLflow's own progress lines are noise in a terminal
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    logging.getLogger("mlflow").setLevel(level)
    app()
