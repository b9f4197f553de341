"""Quantization-aware fine-tuning: the last escalation step of static INT8.

The float network is fine-tuned while its forward pass sees what INT8 will do — weights rounded to
per-output-channel symmetric int8, activations after each ReLU rounded to u8 over a running range —
with straight-through gradients. The trained float weights are then exported and statically
quantized (QDQ) as usual: the network has learned to live with the rounding.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from lifecycle.data import DataSplits
from lifecycle.training import TrainConfig, train_classifier


class FakeQuantWeight(nn.Module):
    """Per-output-channel symmetric int8 rounding with a straight-through estimator."""

    def forward(self, w: Tensor) -> Tensor:
        dims = tuple(range(1, w.ndim))
        scale = w.detach().abs().amax(dim=dims, keepdim=True).clamp_min(1e-8) / 127.0
        q = torch.clamp(torch.round(w / scale), -127, 127) * scale
        return w + (q - w).detach()


class _ActivationFakeQuant:
    """u8 rounding of a non-negative activation over an exponential moving maximum."""

    def __init__(self, momentum: float = 0.1) -> None:
        self.momentum = momentum
        self.running_max: Tensor | None = None

    def __call__(self, module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> Tensor:
        current = output.detach().amax().clamp_min(1e-8)
        if module.training or self.running_max is None:
            previous = self.running_max if self.running_max is not None else current
            self.running_max = (1 - self.momentum) * previous + self.momentum * current
        scale = self.running_max / 255.0
        q = torch.clamp(torch.round(output / scale), 0, 255) * scale
        return output + (q - output).detach()


def qat_fine_tune(module: nn.Module, data: DataSplits, *, epochs: int, lr: float, seed: int) -> nn.Module:
    """Return a copy of ``module`` fine-tuned under fake quantization (plain float weights, no hooks)."""
    tuned = copy.deepcopy(module)
    layers = [m for m in tuned.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    for layer in layers:
        parametrize.register_parametrization(layer, "weight", FakeQuantWeight())
    handles = [
        m.register_forward_hook(_ActivationFakeQuant()) for m in tuned.modules() if isinstance(m, nn.ReLU)
    ]
    try:
        train_classifier(tuned, data, TrainConfig(epochs=epochs, lr=lr, seed=seed))
    finally:
        for handle in handles:
            handle.remove()
        for layer in layers:
            # keep the trained latent float weights; the int8 rounding happens again at export
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=False)
    return tuned.eval()
