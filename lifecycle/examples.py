"""Built-in examples: a data set, a network and how to train it. Nothing here is digits-specific
except the data; the tabular example proves the same path works for any classifier."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from lifecycle.data import DataSplits, load_breast_cancer_splits, load_digits_splits
from lifecycle.errors import UnknownModelError
from lifecycle.nets import Architecture, TabularMLP
from lifecycle.training import TrainConfig, TrainResult, random_affine, train_classifier

DATASETS: dict[str, Callable[[int], DataSplits]] = {
    "digits": load_digits_splits,
    "breast-cancer": load_breast_cancer_splits,
}


@dataclass(frozen=True)
class Example:
    name: str
    description: str
    dataset: str
    role: str
    """``teacher`` (large reference model), ``student`` (small, distilled later) or ``model``."""
    architecture: Callable[[DataSplits], Architecture]
    train_config: TrainConfig

    def load_data(self, seed: int = 0) -> DataSplits:
        return DATASETS[self.dataset](seed)

    def build(self, data: DataSplits) -> tuple[nn.Module, Architecture]:
        architecture = self.architecture(data)
        module = architecture.build()
        if isinstance(module, TabularMLP):
            module.fit_normalizer(torch.from_numpy(data.x_train))
        return module, architecture

    def train(self, data: DataSplits, seed: int) -> tuple[nn.Module, Architecture, TrainResult]:
        torch.manual_seed(seed)
        module, architecture = self.build(data)
        config = TrainConfig(**{**self.train_config.__dict__, "seed": seed})
        return module, architecture, train_classifier(module, data, config)


EXAMPLES: dict[str, Example] = {
    example.name: example
    for example in (
        Example(
            name="digits-teacher",
            description="Residual CNN (8×8 digits upsampled to 32×32 inside the network), ~1.2 M parameters",
            dataset="digits",
            role="teacher",
            architecture=lambda d: Architecture(
                "ImageResNet", (8, d.n_classes), {"widths": (32, 64, 128, 256)}
            ),
            train_config=TrainConfig(epochs=20, lr=3e-3, augment=random_affine(8)),
        ),
        Example(
            name="digits-student",
            description="Small CNN on the native 8×8 digits, ~56 k parameters",
            dataset="digits",
            role="student",
            architecture=lambda d: Architecture("SmallCNN", (8, d.n_classes), {"width": 32}),
            train_config=TrainConfig(epochs=30, lr=1e-2),
        ),
        Example(
            name="breast-cancer-mlp",
            description="MLP with built-in standardisation on scikit-learn's breast-cancer table (30 features)",
            dataset="breast-cancer",
            role="model",
            architecture=lambda d: Architecture(
                "TabularMLP", (d.n_features, d.n_classes), {"hidden": (64, 32)}
            ),
            train_config=TrainConfig(epochs=40, batch_size=32, lr=3e-3),
        ),
    )
}


def get_example(name: str) -> Example:
    try:
        return EXAMPLES[name]
    except KeyError:
        raise UnknownModelError(
            f"no built-in example {name!r}; choose one of {', '.join(EXAMPLES)}"
        ) from None
