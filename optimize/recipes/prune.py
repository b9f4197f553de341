"""Pruning recipes with fine-tuning.

Unstructured pruning zeroes weights but keeps tensor shapes: a dense runtime does the same work, so
it gains no speed (reported, not hidden). Structured pruning physically removes channels / units,
giving a smaller, faster network.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from lifecycle.export import export_onnx, verify_export
from lifecycle.nets import Architecture, BasicBlock, ImageResNet, TabularMLP, parameter_count
from lifecycle.training import TrainConfig, train_classifier
from optimize.variant import Parent, RecipeOptions, RecipeSkippedError, Variant


def _module(parent: Parent) -> nn.Module:
    if parent.module is None:
        raise RecipeSkippedError(f"{parent.name} v{parent.version} has no torch weights to prune (ONNX-only)")
    return copy.deepcopy(parent.module)


def _fine_tune(module: nn.Module, parent: Parent, options: RecipeOptions) -> None:
    if options.fine_tune_epochs > 0:
        train_classifier(
            module,
            parent.splits,
            TrainConfig(epochs=options.fine_tune_epochs, lr=options.fine_tune_lr, seed=options.seed),
        )


def _finish(
    recipe: str, module: nn.Module, parent: Parent, workdir: Path, settings: dict[str, str], **extra: Any
) -> Variant:
    model = export_onnx(module, parent.splits.x_val[:2])
    verify_export(module, model, parent.splits.x_val[:7])
    path = workdir / "model.onnx"
    path.write_bytes(model)
    return Variant(
        recipe, "onnx", {"model.onnx": path}, "onnxruntime", settings=settings, module=module, **extra
    )


def prune_unstructured(parent: Parent, options: RecipeOptions, workdir: Path) -> Variant:
    module = _module(parent)
    targets = [(m, "weight") for m in module.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=options.prune_amount)
    _fine_tune(module, parent, options)  # the masks stay applied while fine-tuning
    for m, name in targets:
        prune.remove(m, name)  # type: ignore[no-untyped-call]
    total = sum(m.weight.numel() for m, _ in targets)
    zeros = sum(int((m.weight == 0).sum()) for m, _ in targets)
    return _finish(
        "prune-unstructured", module, parent, workdir,
        {"method": "global L1 unstructured", "amount": str(options.prune_amount),
         "sparsity": f"{zeros / total:.3f}", "fine_tune_epochs": str(options.fine_tune_epochs)},
        notes=[f"{zeros / total:.0%} of weights are zero, but the dense runtime computes them anyway: no speed-up, same file size"],
        architecture=parent.architecture,
    )  # fmt: skip


def _keep(scores: torch.Tensor, amount: float) -> torch.Tensor:
    n = max(1, round(len(scores) * (1 - amount)))
    return torch.sort(torch.topk(scores, n).indices).values


def _prune_resnet(module: ImageResNet, arch: Architecture, amount: float) -> tuple[nn.Module, Architecture]:
    """Narrow each block's inner width: conv1's output channels (by L1 norm) and conv2's inputs."""
    blocks = [b for b in module.blocks if isinstance(b, BasicBlock)]
    keeps = [_keep(b.conv1.weight.detach().abs().sum(dim=(1, 2, 3)), amount) for b in blocks]
    new_arch = Architecture(arch.cls, arch.args, {**arch.kwargs, "mids": tuple(len(k) for k in keeps)})
    pruned = new_arch.build()
    state = module.state_dict()
    for i, keep in enumerate(keeps):
        p = f"blocks.{i}."
        state[p + "conv1.weight"] = state[p + "conv1.weight"][keep]
        for key in ("weight", "bias", "running_mean", "running_var"):
            state[p + f"bn1.{key}"] = state[p + f"bn1.{key}"][keep]
        state[p + "conv2.weight"] = state[p + "conv2.weight"][:, keep]
    pruned.load_state_dict(state)
    return pruned, new_arch


def _prune_mlp(module: TabularMLP, arch: Architecture, amount: float) -> tuple[nn.Module, Architecture]:
    """Remove hidden units by the L1 norm of their incoming weights."""
    linears = [m for m in module.mlp if isinstance(m, nn.Linear)]
    keeps = [_keep(lin.weight.detach().abs().sum(dim=1), amount) for lin in linears[:-1]]
    new_arch = Architecture(arch.cls, arch.args, {**arch.kwargs, "hidden": tuple(len(k) for k in keeps)})
    pruned = new_arch.build()
    state = module.state_dict()
    index = {id(m): i for i, m in enumerate(module.mlp)}
    previous = None
    for lin, keep in zip(linears, [*keeps, None], strict=True):
        p = f"mlp.{index[id(lin)]}."
        w, b = state[p + "weight"], state[p + "bias"]
        if previous is not None:
            w = w[:, previous]
        if keep is not None:
            w, b = w[keep], b[keep]
        state[p + "weight"], state[p + "bias"] = w, b
        previous = keep
    pruned.load_state_dict(state)
    return pruned, new_arch


def prune_structured(parent: Parent, options: RecipeOptions, workdir: Path) -> Variant:
    module = _module(parent)
    arch = parent.architecture
    if isinstance(module, ImageResNet) and arch is not None:
        pruned, new_arch = _prune_resnet(module, arch, options.prune_amount)
    elif isinstance(module, TabularMLP) and arch is not None:
        pruned, new_arch = _prune_mlp(module, arch, options.prune_amount)
    else:
        raise RecipeSkippedError(
            f"structured pruning knows ImageResNet and TabularMLP, not {type(module).__name__}"
        )
    before = parameter_count(module)
    _fine_tune(pruned, parent, options)
    return _finish(
        "prune-structured", pruned, parent, workdir,
        {"method": "L1 filter norm, inner widths", "amount": str(options.prune_amount),
         "parameters_before": str(before), "parameters_after": str(parameter_count(pruned)),
         "architecture": new_arch.to_json(), "fine_tune_epochs": str(options.fine_tune_epochs)},
        architecture=new_arch,
    )  # fmt: skip
