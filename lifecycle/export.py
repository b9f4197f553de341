"""torch → ONNX export with a dynamic batch axis, verified against torch at batch 1 and batch > 1."""

from __future__ import annotations

import hashlib
import inspect
import logging
import warnings

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from lifecycle.errors import ExportError
from lifecycle.runtimes.onnxruntime import OrtRunner

log = logging.getLogger(__name__)

OPSET = 20


def forward_input_name(module: nn.Module) -> str:
    """The dynamo exporter keys dynamic shapes by the forward() parameter name, not by input_names."""
    params = [p for p in inspect.signature(module.forward).parameters.values() if p.name != "self"]
    if len(params) != 1:
        raise ExportError(
            f"{type(module).__name__}.forward must take exactly one tensor, takes {len(params)}"
        )
    return params[0].name


def export_onnx(module: nn.Module, example: NDArray[np.float32], *, output_name: str = "logits") -> bytes:
    """Export ``module`` (eval mode) to a single self-contained ONNX file with a dynamic batch axis."""
    from torch.export import Dim

    module.eval()
    name = forward_input_name(module)
    batch = np.repeat(example[:1], 2, axis=0) if len(example) < 2 else example[:2]
    with warnings.catch_warnings():
        # "torchvision is not installed" and FutureWarnings from the exporter are noise here.
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        program = torch.onnx.export(
            module,
            (torch.from_numpy(batch),),
            input_names=[name],
            output_names=[output_name],
            dynamic_shapes={name: {0: Dim("batch")}},
            opset_version=OPSET,
            external_data=False,
            verbose=False,
            dynamo=True,
        )
    if program is None:
        raise ExportError("torch.onnx.export returned no program")
    proto = program.model_proto
    return bytes(proto.SerializeToString())


def verify_export(
    module: nn.Module, onnx_model: bytes, x: NDArray[np.float32], *, atol: float = 1e-4
) -> float:
    """Compare ONNX Runtime with torch at batch 1 and at batch len(x); return the max abs difference.

    :raises ExportError: when the difference exceeds ``atol``.
    """
    runner = OrtRunner(onnx_model)
    worst = 0.0
    with torch.no_grad():
        for batch in (x[:1], x):
            expected = module(torch.from_numpy(batch)).numpy()
            got = runner.run(batch)
            if got.shape != expected.shape:
                raise ExportError(
                    f"ONNX output shape {got.shape} != torch {expected.shape} at batch {len(batch)}"
                )
            worst = max(worst, float(np.abs(got - expected).max()))
    if worst > atol:
        raise ExportError(f"ONNX logits differ from torch by {worst:.2e} (> {atol:.0e})")
    return worst


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
