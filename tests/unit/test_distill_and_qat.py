from __future__ import annotations

import numpy as np
import pytest
import torch

from lifecycle.distillation import distillation_loss
from optimize.recipes.qat import FakeQuantWeight
from retrain.data import pseudo_labels


def test_identical_logits_have_zero_soft_loss() -> None:
    logits = torch.randn(8, 5)
    assert float(distillation_loss(logits, logits, None, temperature=2.0, alpha=1.0)) == pytest.approx(
        0, abs=1e-6
    )


def test_soft_term_is_scaled_by_temperature_squared() -> None:
    torch.manual_seed(0)
    student, teacher = torch.randn(16, 4), torch.randn(16, 4)
    at_t = distillation_loss(student, teacher, None, temperature=3.0, alpha=1.0)
    kl = torch.nn.functional.kl_div(
        torch.log_softmax(student / 3, 1), torch.softmax(teacher / 3, 1), reduction="batchmean"
    )
    assert float(at_t) == pytest.approx(9 * float(kl), rel=1e-5)


def test_unlabeled_rows_contribute_only_the_soft_term() -> None:
    torch.manual_seed(0)
    student, teacher = torch.randn(4, 3), torch.randn(4, 3)
    unlabeled = torch.tensor([-1, -1, -1, -1])
    soft = distillation_loss(student, teacher, None, temperature=2.0, alpha=1.0)
    assert float(distillation_loss(student, teacher, unlabeled, temperature=2.0, alpha=0.5)) == pytest.approx(
        float(soft)
    )
    labeled = torch.tensor([0, -1, 2, -1])
    mixed = distillation_loss(student, teacher, labeled, temperature=2.0, alpha=0.5)
    hard = torch.nn.functional.cross_entropy(student[[0, 2]], labeled[[0, 2]])
    assert float(mixed) == pytest.approx(0.5 * float(soft) + 0.5 * float(hard), rel=1e-5)


@pytest.mark.parametrize(("temperature", "alpha"), [(0.0, 0.5), (2.0, 1.5)])
def test_bad_hyperparameters_are_refused(temperature: float, alpha: float) -> None:
    with pytest.raises(ValueError, match=r"temperature|alpha"):
        distillation_loss(torch.zeros(1, 2), torch.zeros(1, 2), None, temperature=temperature, alpha=alpha)


def test_fake_quant_rounds_to_int8_levels_with_straight_through_gradients() -> None:
    torch.manual_seed(0)
    w = torch.randn(4, 3, 3, 3, requires_grad=True)
    q = FakeQuantWeight()(w)
    scale = w.detach().abs().amax(dim=(1, 2, 3), keepdim=True) / 127
    levels = q.detach() / scale
    assert torch.allclose(levels, levels.round(), atol=1e-3)
    assert float((q - w).detach().abs().max()) <= float(scale.max()) / 2 + 1e-6
    q.sum().backward()
    assert w.grad is not None and torch.allclose(w.grad, torch.ones_like(w))


def test_pseudo_labels_keep_only_confident_rows_with_their_predicted_class() -> None:
    x = np.arange(8, dtype=np.float32).reshape(4, 2)
    logits = np.array([[5.0, 0.0], [0.1, 0.0], [0.0, 4.0], [0.0, 0.2]], dtype=np.float32)
    x_sure, y_sure = pseudo_labels(logits, x, 0.9)
    assert x_sure.tolist() == [[0.0, 1.0], [4.0, 5.0]]
    assert y_sure.tolist() == [0, 1]
    empty_x, empty_y = pseudo_labels(logits[:0], x[:0], 0.9)
    assert empty_x.shape == (0, 2) and empty_y.shape == (0,)
