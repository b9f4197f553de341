from __future__ import annotations

import numpy as np
import pytest
import torch

from lifecycle.data import load_digits_splits
from lifecycle.errors import ExportError, UnknownModelError
from lifecycle.examples import EXAMPLES, get_example
from lifecycle.export import export_onnx, verify_export
from lifecycle.nets import Architecture, parameter_count
from lifecycle.runtimes.onnxruntime import OrtRunner


def test_reference_model_sizes() -> None:
    data = load_digits_splits(0)
    teacher, _ = EXAMPLES["digits-teacher"].build(data)
    student, _ = EXAMPLES["digits-student"].build(data)
    assert 1_000_000 <= parameter_count(teacher) <= 3_000_000
    assert 5_000 <= parameter_count(student) <= 100_000
    x = torch.from_numpy(data.x_val[:3])
    assert teacher.eval()(x).shape == (3, 10)
    assert student.eval()(x).shape == (3, 10)


def test_architecture_json_round_trip_rebuilds_the_same_network() -> None:
    arch = Architecture("ImageResNet", (8, 10), {"widths": (8, 16)})
    again = Architecture.from_json(arch.to_json())
    assert again == arch
    assert parameter_count(again.build()) == parameter_count(arch.build())
    with pytest.raises(UnknownModelError, match="not built in"):
        Architecture("Pickled").build()


def test_export_has_a_dynamic_batch_and_matches_torch() -> None:
    data = load_digits_splits(0)
    torch.manual_seed(0)
    module, _ = get_example("digits-student").build(data)
    module.eval()
    onnx_model = export_onnx(module, data.x_val[:2])
    diff = verify_export(module, onnx_model, data.x_val[:7])
    assert diff < 1e-4
    runner = OrtRunner(onnx_model)
    assert runner.run(data.x_val[:13]).shape == (13, 10)


def test_verify_export_rejects_a_model_that_differs() -> None:
    data = load_digits_splits(0)
    torch.manual_seed(0)
    module, _ = get_example("digits-student").build(data)
    onnx_model = export_onnx(module.eval(), data.x_val[:2])
    with torch.no_grad():
        module.head.bias.add_(1.0)  # type: ignore[operator]
    with pytest.raises(ExportError, match="differ from torch"):
        verify_export(module, onnx_model, data.x_val[:4])


def test_export_needs_a_single_input() -> None:
    class TwoInputs(torch.nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return a + b

    with pytest.raises(ExportError, match="exactly one tensor"):
        export_onnx(TwoInputs(), np.zeros((2, 3), dtype=np.float32))
