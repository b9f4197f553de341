"""The PyTorch way in, on real pretrained networks from packages: EfficientNet-Lite0 (an ImageNet
CNN, NCHW) and all-MiniLM-L6-v2 (a text transformer with int64 token inputs, mean-pooled), exported
by torch's exporter, checked against torch, registered on a real MLflow server."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.app import app
from intake.zoo import natural_images, sentences, tokenize
from lifecycle.contract import ModelContract
from registry.mlflow import MlflowModelRegistry
from tests.integration.conftest import run_cli

pytestmark = pytest.mark.slow
runner = CliRunner()


def _register(*args: str) -> str:
    code, out = run_cli("register", *args)
    assert code == 0, out
    return out


def test_efficientnet_lite0_through_the_torch_path(
    env: str, tmp_path: Path, stored_contract: Callable[[str], ModelContract]
) -> None:
    data = tmp_path / "images.npz"
    np.savez(data, inputs=natural_images(30, seed=0))
    name = f"effnet-{uuid.uuid4().hex[:6]}"
    out = _register(
        name, "--torch", "intake.zoo:efficientnet_lite0", "--data", str(data), "--output-names", "logits"
    )
    assert f"registered {name} v1: test agreement 1.0000" in out
    contract = stored_contract(name)
    assert contract.inputs[0].shape == ("batch", 3, 224, 224) and contract.n_classes == 1000
    assert contract.scores == "logits"
    metrics = MlflowModelRegistry(env).get_version(name, "1").metrics
    assert metrics["export_max_abs_diff"] < 1e-3
    # without labels every figure is fidelity: the model agrees with itself, and no accuracy is claimed
    assert metrics["test_agreement"] == 1.0 and "test_accuracy" not in metrics


def test_minilm_token_inputs_and_mean_pooling(
    env: str, tmp_path: Path, stored_contract: Callable[[str], ModelContract]
) -> None:
    data = tmp_path / "text.npz"
    np.savez(data, **tokenize(sentences(40, seed=0), length=32))
    name = f"minilm-{uuid.uuid4().hex[:6]}"
    out = _register(
        name, "--torch", "intake.zoo:minilm", "--data", str(data), "--task", "embedding",
        "--output-names", "token_embeddings", "--shape", "token_embeddings=batch,sequence,384",
        "--pad", "input_ids=0", "--pad", "attention_mask=0", "--pad", "token_type_ids=0",
    )  # fmt: skip
    assert f"registered {name} v1: test cosine 1.0000" in out and "pooling mean" in out
    contract = stored_contract(name)
    assert [i.name for i in contract.inputs] == ["input_ids", "attention_mask", "token_type_ids"]
    assert all(
        i.dtype == "int64" and i.shape == ("batch", "sequence") and i.pad_value == 0 for i in contract.inputs
    )
    assert contract.output.shape == ("batch", "sequence", 384)
    assert contract.pooling is not None and contract.pooling.mask == "attention_mask"


def test_a_factory_that_does_not_fit_its_data_is_refused(env: str, tmp_path: Path) -> None:
    data = tmp_path / "wrong.npz"
    np.savez(data, pixels=natural_images(4, seed=0))
    name = f"wrong-{uuid.uuid4().hex[:6]}"
    result = runner.invoke(
        app, ["register", name, "--torch", "intake.zoo:efficientnet_lite0", "--data", str(data)]
    )
    out = " ".join(result.output.split())
    assert result.exit_code == 1 and "forward() needs 'inputs'" in out
    result = runner.invoke(
        app, ["register", name, "--torch", "intake.zoo:no_such_factory", "--data", str(data)]
    )
    assert result.exit_code == 1 and "cannot import 'intake.zoo:no_such_factory'" in " ".join(
        result.output.split()
    )
    assert name not in MlflowModelRegistry(env).list_models()
