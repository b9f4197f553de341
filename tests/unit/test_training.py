from __future__ import annotations

import numpy as np
import torch

from lifecycle.data import DataSplits
from lifecycle.examples import get_example
from lifecycle.training import accuracy, predict_logits, random_shift


def test_training_is_seeded_and_deterministic(tabular_data: DataSplits) -> None:
    example = get_example("breast-cancer-mlp")
    a, _, result = example.train(tabular_data, seed=3)
    b, _, _ = example.train(tabular_data, seed=3)
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(pa, pb), name
    assert result.epochs_run == example.train_config.epochs
    assert accuracy(predict_logits(a, tabular_data.x_test), tabular_data.y_test) > 0.9


def test_random_shift_moves_pixels_and_keeps_shape() -> None:
    img = torch.zeros(1, 64)
    img[0, 3 * 8 + 3] = 1.0
    gen = torch.Generator().manual_seed(0)
    shifted = [random_shift(1, 8)(img, gen) for _ in range(20)]
    assert all(s.shape == (1, 64) and float(s.sum()) == 1.0 for s in shifted)
    assert len({int(s.argmax()) for s in shifted}) > 1


def test_accuracy() -> None:
    logits = np.array([[0.1, 0.9], [0.8, 0.2]], dtype=np.float32)
    assert accuracy(logits, np.array([1, 1])) == 0.5
