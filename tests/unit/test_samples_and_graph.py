from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from intake.graph_contract import ContractOptions, contract_for_graph, parse_pad, parse_shape
from lifecycle.contract import ModelContract, TensorSpec
from lifecycle.graph import check_against_graph, graph_tensors
from lifecycle.samples import Samples, TensorData, random_split
from lifecycle.tensors import ContractViolationError


def _graph(
    x_shape: list[int | str], *, softmax: bool = True, elem: int = TensorProto.FLOAT
) -> onnx.ModelProto:
    nodes = [
        helper.make_node("Softmax" if softmax else "Relu", ["x"], ["s"]),
        helper.make_node("Identity", ["s"], ["probs"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", elem, x_shape)],
        [helper.make_tensor_value_info("probs", elem, x_shape)],
    )
    return helper.make_model(graph)


def test_graph_tensors_name_dimensions() -> None:
    inputs, outputs = graph_tensors(_graph(["N", 2]))
    assert inputs == (TensorSpec("x", "float32", ("batch", 2)),)
    assert outputs[0].shape == ("batch", 2)
    inputs, _ = graph_tensors(_graph(["N", "", 4]))
    assert inputs[0].shape == ("batch", "x_d1", 4)
    with pytest.raises(ContractViolationError, match="fixed batch dimension of 1"):
        graph_tensors(_graph([1, 2]))
    with pytest.raises(ContractViolationError, match="element type STRING"):
        graph_tensors(_graph(["N", 2], elem=TensorProto.STRING))


def test_contract_from_graph_reads_softmax_and_takes_overrides() -> None:
    contract = contract_for_graph(_graph(["N", 2]), ContractOptions(class_names=("a", "b")))
    assert contract.scores == "probabilities" and contract.class_names == ("a", "b")
    assert contract_for_graph(_graph(["N", 2], softmax=False), ContractOptions()).scores == "logits"
    with pytest.raises(ContractViolationError, match=r"unknown tensor\(s\) \['y'\]"):
        contract_for_graph(_graph(["N", 2]), ContractOptions(shapes={"y": ("batch", 2)}))
    assert parse_shape("x=batch,3,48,192") == ("x", ("batch", 3, 48, 192))
    assert parse_pad("input_ids=0") == ("input_ids", 0.0)
    with pytest.raises(ContractViolationError, match="write NAME=NUMBER"):
        parse_pad("input_ids")


def test_a_contract_that_is_not_the_graphs_is_refused() -> None:
    graph = _graph(["N", 2])
    good = ModelContract(
        inputs=(TensorSpec("x", "float32", ("batch", 2)),),
        outputs=(TensorSpec("probs", "float32", ("batch", 2)),),
    )
    check_against_graph(good, graph)
    for contract, message in [
        (
            ModelContract(inputs=(TensorSpec("pixels", "float32", ("batch", 2)),), outputs=good.outputs),
            r"inputs \['pixels'\] are not the graph's inputs \['x'\]",
        ),
        (
            ModelContract(inputs=(TensorSpec("x", "float64", ("batch", 2)),), outputs=good.outputs),
            "the contract says float64, the graph says float32",
        ),
        (
            ModelContract(inputs=(TensorSpec("x", "float32", ("batch", 2, 1)),), outputs=good.outputs),
            "has rank 3",
        ),
        (
            ModelContract(
                inputs=(TensorSpec("x", "float32", ("batch", 3)),),
                outputs=(TensorSpec("probs", "float32", ("batch", 3)),),
            ),
            "fixed at 2 in the graph",
        ),
    ]:
        with pytest.raises(ContractViolationError, match=message):
            check_against_graph(contract, graph)


def test_take_keeps_boxes_with_their_items() -> None:
    samples = Samples(
        {"images": np.arange(4, dtype=np.float32)[:, None]},
        {
            "boxes": np.array([[0, 0, 1, 1], [1, 1, 2, 2], [2, 2, 3, 3]], np.float32),
            "box_classes": np.array([0, 1, 0]),
            "box_item": np.array([0, 2, 2]),
        },
    )
    part = samples.take(np.array([2, 3]))
    assert part.labels["box_item"].tolist() == [0, 0]
    assert part.labels["boxes"][:, 0].tolist() == [1, 2]
    with pytest.raises(ContractViolationError, match="box labels need all of"):
        Samples(samples.inputs, {"boxes": samples.labels["boxes"]})


def test_split_is_seeded_stratified_and_round_trips() -> None:
    samples = Samples({"x": np.arange(100, dtype=np.float32)[:, None]}, {"y": np.repeat([0, 1], 50)})
    data = random_split("t", samples, seed=1, stratify=True)
    assert (len(data.train), len(data.val), len(data.test)) == (60, 20, 20)
    assert data.test.y is not None and data.test.y.sum() == 10
    again = TensorData.from_arrays("t", dict(np.load(__import__("io").BytesIO(data.to_npz()))), ("x",))
    assert again.fingerprint() == data.fingerprint()
    assert random_split("t", samples, seed=2).fingerprint() != data.fingerprint()
    with pytest.raises(ContractViolationError, match="2 items cannot make"):
        random_split("t", samples.take(np.array([0, 1])))


def test_the_float_tail_runs_from_the_outputs_back_to_the_last_compute_ops() -> None:
    from optimize.recipes.ort_quant import float_tail, is_dense

    w = helper.make_tensor("w", TensorProto.FLOAT, [2, 2, 1, 1], [1.0, 0.0, 0.0, 1.0])
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Sigmoid", ["c"], ["s"], name="sigmoid"),
        helper.make_node("Concat", ["c", "s"], ["y"], name="concat", axis=1),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 4, 4])], initializer=[w],
    )  # fmt: skip
    model = helper.make_model(graph)
    assert sorted(float_tail(model)) == ["concat", "sigmoid"]
    assert not is_dense(model)
