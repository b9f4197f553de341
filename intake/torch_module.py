"""A PyTorch module → ONNX (torch's exporter), checked against torch on the example inputs.

The module comes from ``package.module:factory`` (a callable that returns an ``nn.Module``), its
weights from a safetensors file or a state dict (``torch.load(weights_only=True)``: tensors only,
no arbitrary unpickling). Inputs are named after ``forward()``'s parameters; every input and output
gets a dynamic batch, and the dimensions that the user names (``--shape``) stay dynamic too; integer
token inputs of rank 2 get a dynamic ``sequence`` by default.
"""

from __future__ import annotations

import importlib
import inspect
import io
import logging
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from lifecycle.errors import ExportError
from lifecycle.runtimes.onnxruntime import OrtRunner
from lifecycle.tensors import BATCH, Dim

OPSET = 17


@dataclass(frozen=True)
class Exported:
    onnx_model: bytes
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    max_abs_diff: float
    """Largest difference between torch's and ONNX Runtime's outputs on the example inputs."""


def load_factory(reference: str) -> nn.Module:
    """``package.module:factory`` → the module it returns.

    :raises ExportError: naming what cannot be imported or is not a module."""
    module_name, sep, attr = reference.partition(":")
    if not sep or not module_name or not attr:
        raise ExportError(f"{reference!r}: write package.module:factory")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ExportError(f"cannot import {reference!r}: {exc}") from exc
    made = factory() if callable(factory) and not isinstance(factory, nn.Module) else factory
    if not isinstance(made, nn.Module):
        raise ExportError(f"{reference!r} gave a {type(made).__name__}, not a torch.nn.Module")
    return made.eval()


def load_weights(module: nn.Module, path: str | Path) -> None:
    """A safetensors file or a saved state dict, loaded strictly (every key must match).

    :raises ExportError: naming the missing and unexpected keys."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ExportError(f"{path}: not a safetensors file or a state dict of tensors ({exc})") from exc
    if not isinstance(state, Mapping):
        raise ExportError(f"{path} holds a {type(state).__name__}, not a state dict")
    result = module.load_state_dict(dict(state), strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ExportError(
            f"{path} does not fit the module: missing {result.missing_keys[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}"
        )


def forward_names(module: nn.Module, available: Sequence[str]) -> tuple[str, ...]:
    """The example arrays in ``forward()``'s order (parameters without an array must have defaults)."""
    names = []
    params = list(inspect.signature(module.forward).parameters.values())
    if any(p.kind == p.VAR_POSITIONAL for p in params) and all(
        p.kind != p.POSITIONAL_OR_KEYWORD for p in params
    ):
        return tuple(available)  # a traced or exported module (forward(*args)): the arrays in their order
    for param in params:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.name in available:
            names.append(param.name)
        elif param.default is inspect.Parameter.empty:
            raise ExportError(f"forward() needs {param.name!r}; the example arrays are {list(available)}")
    unused = sorted(set(available) - set(names))
    if unused:
        raise ExportError(f"example array(s) {unused} are not parameters of forward()")
    return tuple(names)


def export(
    module: nn.Module,
    example: Mapping[str, NDArray[Any]],
    *,
    output_names: Sequence[str] = (),
    dynamic: Mapping[str, Sequence[Dim]] | None = None,
    atol: float = 1e-3,
) -> Exported:
    """Export with the legacy (TorchScript) exporter, which takes transformers and timm-style
    modules that the dynamo exporter still trips over, then compare ONNX Runtime with torch.

    :raises ExportError: the export fails or differs from torch by more than ``atol``."""
    names = forward_names(module, list(example))
    args = tuple(torch.from_numpy(np.ascontiguousarray(example[n])) for n in names)
    with torch.no_grad():
        expected = _as_tuple(module(*args))
    outputs = tuple(output_names) or (
        ("output",) if len(expected) == 1 else tuple(f"output_{i}" for i in range(len(expected)))
    )
    if len(outputs) != len(expected):
        raise ExportError(f"forward() returns {len(expected)} tensors; {len(outputs)} output names given")
    axes = {n: _dynamic_axes(n, example[n], (dynamic or {}).get(n)) for n in names}
    axes.update({o: _output_axes((dynamic or {}).get(o)) for o in outputs})
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        # an exported program's module (MLflow's pt2 format) refuses train(), which the TorchScript
        # exporter calls: it goes through the dynamo exporter, which takes it as it is
        dynamo = isinstance(module, torch.fx.GraphModule) and _refuses_train(module)
        extra: dict[str, Any] = {"external_data": False, "verbose": False} if dynamo else {}
        try:
            torch.onnx.export(
                module, args, f"{tmp}/model.onnx", input_names=list(names), output_names=list(outputs),
                dynamic_axes=axes, opset_version=OPSET if not dynamo else 18, dynamo=dynamo,
                **extra,
            )  # fmt: skip
        except Exception as exc:
            raise ExportError(f"torch.onnx.export failed: {type(exc).__name__}: {exc}") from exc
        onnx_model = Path(f"{tmp}/model.onnx").read_bytes()
    got = OrtRunner(onnx_model).run_named({n: example[n] for n in names})
    diff = max(
        float(np.abs(got[o].astype(np.float64) - e.numpy()).max()) if e.numel() else 0.0
        for o, e in zip(outputs, expected, strict=True)
    )
    if diff > atol:
        raise ExportError(
            f"ONNX Runtime differs from torch by {diff:.2e} (> {atol:.0e}) on the example inputs"
        )
    return Exported(onnx_model, names, outputs, diff)


def _refuses_train(module: nn.Module) -> bool:
    try:
        module.train(False)
    except NotImplementedError:
        return True
    return False


def _as_tuple(out: Any) -> tuple[torch.Tensor, ...]:
    if isinstance(out, torch.Tensor):
        return (out,)
    if isinstance(out, tuple | list) and all(isinstance(o, torch.Tensor) for o in out):
        return tuple(out)
    raise ExportError(f"forward() returns {type(out).__name__}; return a tensor or a tuple of tensors")


def _output_axes(shape: Sequence[Dim] | None) -> dict[int, str]:
    return {0: BATCH} if shape is None else {i: d for i, d in enumerate(shape) if isinstance(d, str)}


def _dynamic_axes(name: str, arr: NDArray[Any], shape: Sequence[Dim] | None) -> dict[int, str]:
    if shape is not None:
        return {i: d for i, d in enumerate(shape) if isinstance(d, str)}
    if arr.dtype.kind in "iu" and arr.ndim == 2:
        return {0: BATCH, 1: "sequence"}
    return {0: BATCH}
