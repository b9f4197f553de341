"""The Open Inference Protocol codec against tritonclient's own encoder and decoder (a client no one
here wrote): JSON and binary tensors of every datatype in, requested outputs out, and a clear 4xx
for every malformed request."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton
from numpy.typing import NDArray

from lifecycle.contract import ModelContract
from lifecycle.tensors import TensorSpec
from serving.oip import HEADER_LENGTH, ProtocolError, encode_infer_response, model_metadata, parse_infer

TOKENS = ModelContract(
    inputs=(
        TensorSpec("input_ids", "int64", ("batch", "sequence"), pad_value=0),
        TensorSpec("attention_mask", "int64", ("batch", "sequence"), pad_value=0),
    ),
    outputs=(
        TensorSpec("states", "float32", ("batch", "sequence", 4)),
        TensorSpec("pooled", "float16", ("batch", 4)),
    ),
    task="tensors",
)
EVERY_DTYPE = ModelContract(
    inputs=tuple(
        TensorSpec(f"t_{dtype}", dtype, ("batch", 3))
        for dtype in ("float32", "float16", "float64", "int64", "int32", "uint8", "bool")
    ),
    outputs=(TensorSpec("y", "float32", ("batch", 2)),),
    task="tensors",
)
ROWS = ModelContract(
    inputs=(TensorSpec("x", "float32", ("batch", 64)),),
    outputs=(TensorSpec("logits", "float32", ("batch", 10)),),
)


def _body(
    arrays: dict[str, NDArray[Any]], *, binary: bool, outputs: list[Any] | None = None, request_id: str = ""
) -> tuple[bytes, str | None]:
    inputs = []
    for name, array in arrays.items():
        tensor = triton.InferInput(name, list(array.shape), triton.np_to_triton_dtype(array.dtype))
        tensor.set_data_from_numpy(array, binary_data=binary)
        inputs.append(tensor)
    body, json_size = triton.InferenceServerClient.generate_request_body(
        inputs, outputs=outputs, request_id=request_id
    )
    return body, None if json_size is None else str(json_size)


def test_metadata_states_named_tensors_datatypes_and_dynamic_sizes() -> None:
    meta = model_metadata("minilm", ["3"], TOKENS)
    assert meta["inputs"] == [
        {"name": "input_ids", "datatype": "INT64", "shape": [-1, -1]},
        {"name": "attention_mask", "datatype": "INT64", "shape": [-1, -1]},
    ]
    assert meta["outputs"][1] == {"name": "pooled", "datatype": "FP16", "shape": [-1, 4]}


@pytest.mark.parametrize("binary", [False, True])
def test_every_datatype_arrives_as_sent(binary: bool) -> None:
    rng = np.random.default_rng(0)
    arrays = {
        "t_float32": rng.normal(size=(2, 3)).astype(np.float32),
        "t_float16": rng.normal(size=(2, 3)).astype(np.float16),
        "t_float64": rng.normal(size=(2, 3)),
        "t_int64": rng.integers(-(2**40), 2**40, size=(2, 3)),
        "t_int32": rng.integers(-(2**20), 2**20, size=(2, 3)).astype(np.int32),
        "t_uint8": rng.integers(0, 255, size=(2, 3)).astype(np.uint8),
        "t_bool": rng.random((2, 3)) > 0.5,
    }
    if binary:
        body, length = _body(arrays, binary=True)
    else:  # JSON has no half floats: tritonclient sends them as binary too, as the protocol says
        half = _body({"t_float16": arrays["t_float16"]}, binary=True)
        assert half[1] is not None
        body, length = _body(arrays, binary=False)
        with pytest.raises(ProtocolError, match="FP16 tensors travel only as binary data"):
            parse_infer(body, length, EVERY_DTYPE, max_elements=10_000)
        return
    request = parse_infer(body, length, EVERY_DTYPE, max_elements=10_000)
    for name, array in arrays.items():
        assert request.inputs[name].dtype == array.dtype and np.array_equal(request.inputs[name], array), name


def test_token_inputs_and_requested_outputs_round_trip_through_tritonclient() -> None:
    ids = np.array([[101, 7592, 102, 0]], dtype=np.int64)
    body, length = _body(
        {"input_ids": ids, "attention_mask": (ids > 0).astype(np.int64)}, binary=False,
        outputs=[triton.InferRequestedOutput("pooled", binary_data=True), triton.InferRequestedOutput("states", binary_data=False)],
        request_id="req-7",
    )  # fmt: skip
    request = parse_infer(body, length, TOKENS, max_elements=10_000)
    assert request.id == "req-7" and [o.name for o in request.outputs] == ["pooled", "states"]
    answers = {
        "states": np.arange(16, dtype=np.float32).reshape(1, 4, 4),
        "pooled": np.ones((1, 4), np.float16),
    }
    response, headers = encode_infer_response("minilm", "3", request, answers)
    result = triton.InferenceServerClient.parse_response_body(
        response, header_length=int(headers[HEADER_LENGTH]) if HEADER_LENGTH in headers else None
    )
    assert result.get_response()["id"] == "req-7" and result.get_response()["model_version"] == "3"
    assert np.array_equal(result.as_numpy("states"), answers["states"])
    assert result.as_numpy("pooled").dtype == np.float16 and np.array_equal(
        result.as_numpy("pooled"), answers["pooled"]
    )


def test_a_json_response_when_no_output_asks_for_binary() -> None:
    body = _raw({"inputs": [{"name": "x", "shape": [2, 64], "datatype": "FP32", "data": [[0.0] * 64] * 2}]})
    request = parse_infer(body, None, ROWS, max_elements=10_000)  # nested data, no binary asked for
    response, headers = encode_infer_response(
        "digits", "1", request, {"logits": np.eye(2, 10, dtype=np.float32)}
    )
    assert headers == {"Content-Type": "application/json"}
    assert np.array_equal(
        triton.InferenceServerClient.parse_response_body(response).as_numpy("logits"), np.eye(2, 10)
    )


def _raw(message: dict[str, Any]) -> bytes:
    import json

    return json.dumps(message).encode()


X = {"name": "x", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64}


@pytest.mark.parametrize(
    ("body", "length", "status", "words"),
    [
        (b"not json", None, 400, "not JSON"),
        (_raw({"inputs": []}), None, 400, "non-empty list"),
        (
            _raw({"inputs": [{**X, "name": "y"}]}),
            None,
            400,
            "input 'y' is not an input of the model; it takes x",
        ),
        (_raw({"inputs": [{**X, "datatype": "FP64"}]}), None, 400, "datatype 'FP64'; the model takes FP32"),
        (_raw({"inputs": [{**X, "data": [0.0] * 63}]}), None, 400, "holds 63 values; shape [1, 64] needs 64"),
        (_raw({"inputs": [{**X, "shape": [1, 32], "data": [0.0] * 32}]}), None, 400, "x"),
        (_raw({"inputs": [{**X, "data": ["a"] * 64}]}), None, 400, "must be numbers"),
        (_raw({"inputs": [{**X, "data": [1e39] * 64}]}), None, 400, "finite numbers within FP32"),
        (_raw({"inputs": [X, X]}), None, 400, "given twice"),
        (
            _raw({"inputs": [{**X, "shape": [100, 64], "data": [0.0] * 6400}]}),
            None,
            413,
            "over 1000 elements",
        ),
        (_raw({"inputs": [X], "outputs": [{"name": "nope"}]}), None, 400, "output 'nope' is not an output"),
        (_raw({"inputs": [{**X, "parameters": {"binary_data_size": 256}}]}), "80", 400, "HEADER"),
        (
            _raw({"inputs": [{**X, "parameters": {"binary_data_size": 255}}]}),
            None,
            400,
            "is not 64 × 4 bytes",
        ),
        (_raw({"id": 5, "inputs": [X]}), None, 400, "'id' must be a string"),
    ],
)
def test_malformed_requests_are_refused_naming_the_problem(
    body: bytes, length: str | None, status: int, words: str
) -> None:
    if words == "HEADER":  # a short binary payload: the header says 256 bytes follow, none do
        length, words = str(len(body)), "binary data ends after 0 of its 256 bytes"
    with pytest.raises(ProtocolError) as caught:
        parse_infer(body, length, ROWS, max_elements=1000)
    assert caught.value.status == HTTPStatus(status) and words in str(caught.value), str(caught.value)
