from __future__ import annotations

import numpy as np
import torch

from lifecycle.data import DataSplits
from lifecycle.examples import get_example
from lifecycle.nets import Architecture
from lifecycle.training import accuracy, augmentation_for, predict_logits, random_affine


def test_training_is_seeded_and_deterministic(tabular_data: DataSplits) -> None:
    example = get_example("breast-cancer-mlp")
    a, _, result = example.train(tabular_data, seed=3)
    b, _, _ = example.train(tabular_data, seed=3)
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(pa, pb), name
    assert result.epochs_run == example.train_config.epochs
    assert accuracy(predict_logits(a, tabular_data.x_test), tabular_data.y_test) > 0.9


def test_random_affine_moves_pixels_keeps_shape_and_is_seeded() -> None:
    img = torch.zeros(4, 64)
    img[:, 3 * 8 + 3] = 16.0
    augment = random_affine(8)
    out = [augment(img, torch.Generator().manual_seed(s)) for s in range(10)]
    assert all(o.shape == (4, 64) for o in out)
    assert len({tuple(o.argmax(dim=1).tolist()) for o in out}) > 1
    assert torch.equal(augment(img, torch.Generator().manual_seed(3)), out[3])
    assert augmentation_for(Architecture("TabularMLP", (30, 2))) is None
    assert augmentation_for(Architecture("SmallCNN", (8, 10))) is not None


def test_accuracy() -> None:
    logits = np.array([[0.1, 0.9], [0.8, 0.2]], dtype=np.float32)
    assert accuracy(logits, np.array([1, 1])) == 0.5
