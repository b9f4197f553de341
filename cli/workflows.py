"""Use cases that span packages: train a built-in example and register it with lineage."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lifecycle.examples import get_example
from lifecycle.names import CHAMPION
from lifecycle.training import TrainResult
from lifecycle.version_builder import package_torch_model
from registry.abc import ModelRegistry, ModelVersion

if TYPE_CHECKING:
    from optimize.run import OptimizeReport
    from registry.mlflow import MlflowModelRegistry

log = logging.getLogger(__name__)

SEED_MODEL = "digits"
"""The registered model ``lifecycle up`` seeds (with the ``digits-teacher`` example) and serves."""
SEED_EXAMPLE = "digits-teacher"
SEED_RECIPES = ("ort-int8-static", "distill+ort-int8-static")
"""Variants seeded beside the teacher: its INT8 twin, and a distilled student in INT8 (the one that
gets rolled out, watched and retrained)."""
SEED_MAX_ACCURACY_DROP = 0.02


@dataclass(frozen=True)
class Trained:
    version: ModelVersion
    result: TrainResult


def train_and_register(
    registry: ModelRegistry,
    example_name: str,
    *,
    model_name: str | None = None,
    seed: int = 0,
    alias: str | None = None,
    actor: str = "cli",
) -> Trained:
    """Train a built-in example, export and measure it, register it, and optionally set an alias."""
    example = get_example(example_name)
    data = example.load_data(seed)
    module, architecture, result = example.train(data, seed)
    config = example.train_config
    package = package_torch_model(
        model_name or example.name,
        module,
        data,
        architecture=architecture,
        metrics={"train_seconds": result.seconds, "epochs_run": float(result.epochs_run)},
        params={
            "example": example.name,
            "architecture": architecture.to_json(),
            "epochs": str(config.epochs),
            "batch_size": str(config.batch_size),
            "lr": str(config.lr),
            "seed": str(seed),
        },
        tags={
            "lifecycle.role": example.role,
            "lifecycle.example": example.name,
            "lifecycle.recipe": "train",
            "lifecycle.format": "onnx",
            "lifecycle.precision": "fp32",
            "lifecycle.runtime": "onnxruntime",
        },
        description=example.description,
    )
    version = registry.register(package)
    if alias is not None:
        version = registry.set_alias(version.name, alias, version.version, actor=actor)
    log.info(
        "%s v%s: test accuracy %.4f after %.1f s of training",
        version.name, version.version, version.metrics.get("test_accuracy", float("nan")), result.seconds,
    )  # fmt: skip
    return Trained(version, result)


def seed_registry(registry: ModelRegistry, *, seed: int = 0, actor: str = "lifecycle up") -> Trained | None:
    """On an empty registry, train the digits teacher as model ``digits`` and make version 1 the champion."""
    if registry.list_models():
        return None
    return train_and_register(
        registry, SEED_EXAMPLE, model_name=SEED_MODEL, seed=seed, alias=CHAMPION, actor=actor
    )


def seed_variants(
    registry: MlflowModelRegistry,
    version: str,
    workdir: Path,
    *,
    recipes: Sequence[str] = SEED_RECIPES,
    rounds: int = 100,
    progress: Callable[[str], None] = lambda _: None,
) -> OptimizeReport:
    """Optimize the seeded teacher: one tracked optimize run, its passing variants registered. The
    accuracy gate is ``SEED_MAX_ACCURACY_DROP``: a student 20× smaller than its teacher is worth a
    point or two."""
    # the recipes' libraries (torch, OpenVINO, NNCF) load only when variants are made
    from optimize.gates import GateConfig
    from optimize.run import optimize

    return optimize(
        registry, registry, SEED_MODEL, version, workdir, recipes=recipes, rounds=rounds, batch_rounds=10,
        gate_config=GateConfig(max_accuracy_drop=SEED_MAX_ACCURACY_DROP), progress=progress,
    )  # fmt: skip
