"""Distillation recipe: the parent teaches a small student of a matching built-in family."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lifecycle.distillation import DistillConfig
from lifecycle.distillation import distill as run_distillation
from lifecycle.export import export_onnx, forward_input_name, verify_export
from lifecycle.graph import with_classifier_interface
from lifecycle.nets import Architecture, TabularMLP, parameter_count
from lifecycle.runtimes.base import Runner, class_logits, run_batched
from lifecycle.runtimes.onnxruntime import OrtRunner
from lifecycle.tensors import ContractViolationError
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
    teacher = class_logits(OrtRunner(parent.onnx_model), parent.contract)
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
    contract = parent.contract
    drop_in = contract.input_names == (forward_input_name(student),) and contract.output_names == ("logits",)
    if not drop_in:  # a user's teacher (scikit-learn, ONNX): the student answers with its interface
        _check_labels_are_class_indices(parent, teacher)
        try:
            model = with_classifier_interface(model, contract)
        except ContractViolationError as exc:
            raise RecipeSkippedError(str(exc)) from exc
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
        # a student rewired to its teacher's interface has no torch twin for later steps (QAT, pruning)
        module=student if drop_in else None, architecture=architecture if drop_in else None,
    )  # fmt: skip


def _check_labels_are_class_indices(parent: Parent, teacher: Runner) -> None:
    """A student answers a label output as the argmax class index; skip when the teacher's labels
    are other values (e.g. scikit-learn class labels 3, 5, 7)."""
    contract = parent.contract
    labels = [o.name for o in contract.outputs if o.name != contract.primary_output]
    if not labels:
        return
    x = parent.splits.x_val
    answers = teacher.run_named({contract.inputs[0].name: x})
    expected = np.argmax(answers[contract.primary_output], axis=1)
    for name in labels:
        if not np.array_equal(np.asarray(answers[name]).reshape(-1), expected):
            raise RecipeSkippedError(
                f"the teacher's output {name!r} is not the class index of its scores; a student cannot answer it"
            )


__all__ = ["distill", "student_architecture"]
