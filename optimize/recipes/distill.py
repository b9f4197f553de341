"""Distillation recipe: the parent teaches a small student of a matching built-in family."""

from __future__ import annotations

from pathlib import Path

import torch

from lifecycle.distillation import DistillConfig
from lifecycle.distillation import distill as run_distillation
from lifecycle.export import export_onnx, verify_export
from lifecycle.nets import Architecture, TabularMLP, parameter_count
from lifecycle.runtimes.base import run_batched
from lifecycle.runtimes.onnxruntime import OrtRunner
from optimize.variant import Parent, RecipeOptions, RecipeSkippedError, Variant


def student_architecture(parent: Parent) -> Architecture:
    """A small network of the family that fits the parent's input."""
    arch = parent.architecture
    n_classes = parent.contract.n_classes
    if arch is not None and arch.cls in ("ImageResNet", "SmallCNN"):
        side = int(arch.args[0])
        return Architecture("SmallCNN", (side, n_classes), {"width": 32})
    if arch is not None and arch.cls == "TabularMLP":
        return Architecture("TabularMLP", (parent.contract.n_features, n_classes), {"hidden": (16,)})
    if arch is not None:
        raise RecipeSkippedError(f"no built-in student family for a {arch.cls} teacher")
    # An ONNX-only teacher (a user's model): a small MLP student fits any feature vector.
    return Architecture("TabularMLP", (parent.contract.n_features, n_classes), {"hidden": (64, 32)})


def distill(parent: Parent, options: RecipeOptions, workdir: Path) -> Variant:
    data = parent.splits
    architecture = student_architecture(parent)
    torch.manual_seed(options.seed)
    student = architecture.build()
    if isinstance(student, TabularMLP):
        student.fit_normalizer(torch.from_numpy(data.x_train))
    teacher = OrtRunner(parent.onnx_model)
    config = DistillConfig(
        temperature=options.distill_temperature, alpha=options.distill_alpha,
        epochs=options.distill_epochs, seed=options.seed,
    )  # fmt: skip
    result = run_distillation(
        student,
        run_batched(teacher, data.x_train),
        data.x_train,
        data.y_train,
        data.x_val,
        data.y_val,
        config,
    )
    model = export_onnx(student, data.x_val[:2])
    verify_export(student, model, data.x_val[:7])
    path = workdir / "model.onnx"
    path.write_bytes(model)
    return Variant(
        "distill", "onnx", {"model.onnx": path}, "onnxruntime",
        settings={
            "student": architecture.to_json(), "student_parameters": str(parameter_count(student)),
            "temperature": str(config.temperature), "alpha": str(config.alpha),
            "epochs_run": str(result.epochs_run), "teacher": f"{parent.name} v{parent.version}",
            "train_seconds": f"{result.seconds:.1f}",
        },
        module=student, architecture=architecture,
    )  # fmt: skip


__all__ = ["distill", "student_architecture"]
