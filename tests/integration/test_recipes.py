"""Each CPU recipe on a tiny model, with the real quantizers and runtimes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lifecycle.data import DataSplits
from lifecycle.evaluate import evaluate
from lifecycle.examples import get_example
from lifecycle.runtimes.onnxruntime import OrtRunner
from lifecycle.version_builder import package_torch_model
from optimize.loader import load_variant
from optimize.run import apply_recipe
from optimize.variant import Parent, RecipeOptions, RecipeSkippedError


def _parent(example: str, data: DataSplits) -> Parent:
    ex = get_example(example)
    module, architecture, _ = ex.train(data, seed=0)
    package = package_torch_model(example, module, data, architecture=architecture)
    return Parent.of_splits(
        example, "1", package.onnx_model, package.contract, data, module=module, architecture=architecture
    )


@pytest.fixture(scope="module")
def tabular_parent(tabular_data: DataSplits) -> Parent:
    return _parent("breast-cancer-mlp", tabular_data)


@pytest.fixture(scope="module")
def cnn_parent() -> Parent:
    ex = get_example("digits-student")
    return _parent("digits-student", ex.load_data(0))


EXPECTED = {
    "onnx-fp32": ("onnxruntime", "fp32"),
    "onnx-fp16": ("onnxruntime", "fp16"),
    "ort-int8-static": ("onnxruntime", "int8"),
    "ort-int8-dynamic": ("onnxruntime", "int8"),
    "openvino-fp32": ("openvino", "fp32"),
    "openvino-int8": ("openvino", "int8"),
    "prune-unstructured": ("onnxruntime", "fp32"),
    "prune-structured": ("onnxruntime", "fp32"),
    "distill": ("onnxruntime", "fp32"),
    "distill+ort-int8-static": ("onnxruntime", "int8"),
}


@pytest.mark.parametrize("recipe", list(EXPECTED))
def test_cpu_recipe_produces_a_loadable_faithful_variant(
    recipe: str, tabular_parent: Parent, tmp_path: Path
) -> None:
    variant = apply_recipe(
        recipe, tabular_parent, RecipeOptions(fine_tune_epochs=2, distill_epochs=30), tmp_path
    )
    runner = load_variant(variant)
    assert (runner.runtime, runner.precision) == EXPECTED[recipe]
    test = tabular_parent.data.test
    reference = OrtRunner(tabular_parent.onnx_model).run_named(test.inputs)
    q = evaluate(tabular_parent.contract, runner.run_named(test.inputs), test, reference=reference)
    assert q.metric == "accuracy" and q.value > 0.9, recipe
    assert q.fidelity is not None and q.fidelity > 0.9, recipe
    assert variant.size_bytes > 0


def test_openvino_reports_the_precision_that_executed(tabular_parent: Parent, tmp_path: Path) -> None:
    variant = apply_recipe("openvino-fp16", tabular_parent, RecipeOptions(), tmp_path)
    runner = load_variant(variant)
    assert variant.inference_precision == "f16"
    assert runner.precision in ("fp16", "bf16", "fp32")  # what this CPU's plugin really runs


def test_structured_pruning_makes_the_network_smaller(tabular_parent: Parent, tmp_path: Path) -> None:
    variant = apply_recipe("prune-structured", tabular_parent, RecipeOptions(fine_tune_epochs=1), tmp_path)
    assert int(variant.settings["parameters_after"]) < int(variant.settings["parameters_before"])
    assert variant.size_bytes < len(tabular_parent.onnx_model)


def test_unstructured_pruning_says_it_gains_no_speed(tabular_parent: Parent, tmp_path: Path) -> None:
    variant = apply_recipe("prune-unstructured", tabular_parent, RecipeOptions(fine_tune_epochs=1), tmp_path)
    assert float(variant.settings["sparsity"]) == pytest.approx(0.5, abs=0.01)
    assert any("no speed-up" in n for n in variant.notes)


def test_int8_escalation_is_recorded_when_accuracy_is_missed(tabular_parent: Parent, tmp_path: Path) -> None:
    # An impossible accuracy target forces every escalation step.
    variant = apply_recipe("ort-int8-static", tabular_parent, RecipeOptions(max_accuracy_drop=-1.0), tmp_path)
    steps = [a["step"] for a in variant.attempts]
    assert steps[:3] == ["full int8", "keep the output layers in float", "sensitivity ranking"]
    assert "keep 1 in float" in steps and steps[-1] == "quantization-aware training"
    assert variant.attempts[-1]["result"] in ("kept", "worse than keeping layers in float")
    assert variant.settings["nodes_kept_in_float"]
    assert OrtRunner(variant.files["model.onnx"]).precision == "int8"


def test_dynamic_quantization_skips_a_convolutional_graph_saying_why(
    cnn_parent: Parent, tmp_path: Path
) -> None:
    with pytest.raises(RecipeSkippedError, match=r"convolutional \(\d+ Conv, \d+ MatMul/Gemm\).*ConvInteger"):
        apply_recipe("ort-int8-dynamic", cnn_parent, RecipeOptions(), tmp_path)


def test_structured_pruning_skips_unknown_architectures(cnn_parent: Parent, tmp_path: Path) -> None:
    with pytest.raises(RecipeSkippedError, match="SmallCNN"):
        apply_recipe("prune-structured", cnn_parent, RecipeOptions(), tmp_path)


def test_tensorrt_is_skipped_with_the_reason_without_a_gpu(tabular_parent: Parent, tmp_path: Path) -> None:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(RecipeSkippedError, match="TensorRT is not installed"):
            apply_recipe("tensorrt-fp16", tabular_parent, RecipeOptions(), tmp_path)
    else:
        pytest.skip("TensorRT is installed: tests/gpu covers it")


def test_unknown_recipe_names_the_known_ones(tabular_parent: Parent, tmp_path: Path) -> None:
    from lifecycle.errors import UnknownModelError

    with pytest.raises(UnknownModelError, match=r"unknown recipe 'int4'.*onnx-fp32"):
        apply_recipe("distill+int4", tabular_parent, RecipeOptions(), tmp_path)


def test_distill_from_an_onnx_only_teacher(tabular_parent: Parent, tmp_path: Path) -> None:
    onnx_only = Parent("user", "1", tabular_parent.onnx_model, tabular_parent.contract, tabular_parent.data)
    torch.manual_seed(0)
    variant = apply_recipe("distill", onnx_only, RecipeOptions(distill_epochs=20), tmp_path)
    assert "TabularMLP" in variant.settings["student"]
