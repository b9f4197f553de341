"""Seeded, deterministic supervised training and evaluation of reference networks."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from numpy.typing import NDArray
from torch import nn

from lifecycle.data import DataSplits
from lifecycle.nets import Architecture


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 8
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.0
    seed: int = 0
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None
    """Optional input augmentation applied per batch during training."""


@dataclass
class TrainResult:
    epochs_run: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    """Per epoch: train loss and validation accuracy."""


def seed_everything(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    np.random.seed(seed)
    return torch.Generator().manual_seed(seed)


def train_classifier(model: nn.Module, data: DataSplits, config: TrainConfig) -> TrainResult:
    """Train with AdamW and a one-cycle schedule; keeps the weights of the best validation epoch."""
    gen = seed_everything(config.seed)
    x = torch.from_numpy(data.x_train)
    y = torch.from_numpy(data.y_train)
    steps_per_epoch = max(1, -(-len(x) // config.batch_size))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, epochs=config.epochs, steps_per_epoch=steps_per_epoch
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    best_acc, best_state = -1.0, None
    result = TrainResult(epochs_run=0, seconds=0.0)
    start = time.perf_counter()
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(steps_per_epoch):
            idx = order[i * config.batch_size : (i + 1) * config.batch_size]
            xb = x[idx] if config.augment is None else config.augment(x[idx], gen)
            loss = loss_fn(model(xb), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * len(idx)
        val_acc = accuracy(predict_logits(model, data.x_val), data.y_val)
        result.history.append({"epoch": epoch, "train_loss": total / len(x), "val_accuracy": val_acc})
        if val_acc > best_acc:
            best_acc = val_acc
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        result.epochs_run = epoch + 1
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - start
    return result


@torch.no_grad()
def predict_logits(model: nn.Module, x: NDArray[np.float32], batch_size: int = 256) -> NDArray[np.float32]:
    was_training = model.training
    model.eval()
    outs = [model(torch.from_numpy(x[i : i + batch_size])) for i in range(0, len(x), batch_size)]
    model.train(was_training)
    return torch.cat(outs).numpy().astype(np.float32)


def accuracy(logits: NDArray[np.float32], y: NDArray[np.int64]) -> float:
    if len(y) == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return float((logits.argmax(axis=1) == y).mean())


def random_affine(
    side: int, *, max_degrees: float = 15.0, max_translation: float = 0.125, max_zoom: float = 0.1
) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
    """Augmentation for flat square images: a random rotation (± ``max_degrees``), translation (± that
    share of the side) and zoom (± that share) per image, bilinear, zero fill. The defaults are the
    usual mild ones for handwritten digits, not tuned to any shift."""

    def augment(xb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n = len(xb)

        def uniform() -> torch.Tensor:
            return torch.rand(n, generator=gen) * 2 - 1

        angle = uniform() * math.radians(max_degrees)
        scale = 1 + uniform() * max_zoom
        # affine_grid works in [-1, 1] coordinates: the side is 2 units long
        tx, ty = uniform() * 2 * max_translation, uniform() * 2 * max_translation
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
        img = xb.reshape(n, 1, side, side)
        grid = F.affine_grid(theta.to(xb.dtype), list(img.shape), align_corners=False)
        return F.grid_sample(img, grid, align_corners=False, padding_mode="zeros").reshape(n, -1)

    return augment


def augmentation_for(
    architecture: Architecture,
) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None:
    """The training augmentation of a built-in architecture: random affine for image networks, none
    for tables."""
    side = architecture.image_side
    return None if side is None else random_affine(side)
