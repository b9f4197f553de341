"""The Open Inference Protocol (KServe V2) over REST, as plain translation between its messages and
named numpy tensors checked against a model's contract — what KServe, Triton, MLServer and
OpenVINO Model Server speak, so their clients (``tritonclient.http``) work unchanged.

Covered: model metadata (datatypes, shapes with ``-1`` for dynamic sizes), inference requests with
JSON tensor data (row-major, nested or flat) and the binary tensor data extension
(``Inference-Header-Content-Length``, ``binary_data_size``; FP16 travels only as binary), requested
outputs (``binary_data`` per output, ``binary_data_output`` for all), the request ``id`` echoed.
Tensors are decoded with numpy from JSON numbers or raw little-endian bytes — never unpickled — and
checked against the contract (names, datatypes, ranks, fixed sizes) before any runtime sees them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lifecycle.contract import ModelContract
from lifecycle.errors import LifecycleError
from lifecycle.tensors import ContractViolationError, TensorSpec

DATATYPES = {
    "float32": "FP32", "float16": "FP16", "float64": "FP64", "int64": "INT64", "int32": "INT32",
    "uint8": "UINT8", "bool": "BOOL",
}  # fmt: skip
"""The contract's dtypes as the protocol names them."""
NUMPY = {datatype: np.dtype(dtype).newbyteorder("<") for dtype, datatype in DATATYPES.items()}
HEADER_LENGTH = "Inference-Header-Content-Length"
JSON_ONLY_IN_BINARY = frozenset({"FP16"})


class ProtocolError(LifecycleError):
    """A request the protocol or the model's contract does not allow; ``status`` is its HTTP code."""

    def __init__(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RequestedOutput:
    name: str
    binary: bool


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    inputs: dict[str, NDArray[Any]]
    """Checked against the contract, in contract order."""
    outputs: tuple[RequestedOutput, ...]
    """The outputs asked for, in the request's order; every output of the contract when none is named."""


def tensor_metadata(spec: TensorSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "datatype": DATATYPES[spec.dtype],
        "shape": [d if isinstance(d, int) else -1 for d in spec.shape],
    }


def model_metadata(name: str, versions: Sequence[str], contract: ModelContract) -> dict[str, Any]:
    return {
        "name": name,
        "versions": list(versions),
        "platform": "onnxruntime_onnx",
        "inputs": [tensor_metadata(s) for s in contract.inputs],
        "outputs": [tensor_metadata(s) for s in contract.outputs],
    }


def parse_infer(
    body: bytes, header_length: str | None, contract: ModelContract, *, max_elements: int
) -> InferRequest:
    """An inference request: the JSON header (all of ``body``, or its first ``header_length``
    bytes followed by the binary tensors), decoded and checked against ``contract``.

    :raises ProtocolError: naming what is wrong (413 when the tensors hold over ``max_elements``).
    """
    header, binary = _split(body, header_length)
    try:
        message = json.loads(header)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"the request is not JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise ProtocolError("the request must be a JSON object with 'inputs'")
    request_id = message.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise ProtocolError("'id' must be a string")
    raw_inputs = message.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise ProtocolError("'inputs' must be a non-empty list of tensors")
    specs = {s.name: s for s in contract.inputs}
    tensors: dict[str, NDArray[Any]] = {}
    offset, elements = 0, 0
    for raw in raw_inputs:
        array, used = _decode(raw, specs, binary, offset)
        name = str(raw["name"])
        if name in tensors:
            raise ProtocolError(f"input {name!r} is given twice")
        elements += array.size
        if elements > max_elements:
            raise ProtocolError(
                f"the request's tensors hold over {max_elements} elements",
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            )
        tensors[name] = array
        offset += used
    if offset != len(binary):
        raise ProtocolError(
            f"the binary data holds {len(binary)} bytes after the JSON header; the inputs use {offset}"
        )
    try:
        checked = contract.validate_inputs(tensors)
    except ContractViolationError as exc:
        raise ProtocolError(str(exc)) from exc
    return InferRequest(request_id, checked, _requested(message, contract))


def encode_infer_response(
    model: str,
    version: str,
    request: InferRequest,
    outputs: Mapping[str, NDArray[Any]],
) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers: JSON, or the JSON header followed by the binary outputs
    (with ``Inference-Header-Content-Length``) when any output is asked for as binary data. FP16
    outputs always travel as binary (JSON has no half floats)."""
    tensors: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for wanted in request.outputs:
        array = np.asarray(outputs[wanted.name])
        datatype = DATATYPES.get(array.dtype.name)
        if datatype is None:
            raise ProtocolError(
                f"output {wanted.name!r} has dtype {array.dtype}, which the protocol cannot carry",
                HTTPStatus.INTERNAL_SERVER_ERROR,
            )
        tensor: dict[str, Any] = {"name": wanted.name, "datatype": datatype, "shape": list(array.shape)}
        if wanted.binary or datatype in JSON_ONLY_IN_BINARY:
            raw = np.ascontiguousarray(array, dtype=NUMPY[datatype]).tobytes()
            tensor["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            tensor["data"] = array.reshape(-1).tolist()
        tensors.append(tensor)
    answer: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": tensors}
    if request.id is not None:
        answer["id"] = request.id
    header = json.dumps(answer, separators=(",", ":"), allow_nan=False).encode()
    if not chunks:
        return header, {"Content-Type": "application/json"}
    headers = {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(len(header))}
    return header + b"".join(chunks), headers


def error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


def _split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    try:
        n = int(header_length)
    except ValueError as exc:
        raise ProtocolError(f"{HEADER_LENGTH} must be an integer, got {header_length!r}") from exc
    if not 0 < n <= len(body):
        raise ProtocolError(f"{HEADER_LENGTH} is {n}; the body holds {len(body)} bytes")
    return body[:n], body[n:]


def _decode(
    raw: object, specs: Mapping[str, TensorSpec], binary: bytes, offset: int
) -> tuple[NDArray[Any], int]:
    """One input tensor and the binary bytes it used."""
    if not isinstance(raw, dict):
        raise ProtocolError("each input must be an object with name, shape, datatype and data")
    name = raw.get("name")
    if not isinstance(name, str) or name not in specs:
        raise ProtocolError(f"input {name!r} is not an input of the model; it takes {', '.join(specs)}")
    shape = raw.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise ProtocolError(f"input {name!r}: 'shape' must be a list of non-negative integers")
    expected = DATATYPES[specs[name].dtype]
    datatype = raw.get("datatype")
    if datatype != expected:
        raise ProtocolError(f"input {name!r}: datatype {datatype!r}; the model takes {expected}")
    count = math.prod(shape)
    parameters = raw.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ProtocolError(f"input {name!r}: 'parameters' must be an object")
    size = parameters.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ProtocolError(f"input {name!r}: binary_data_size must be a non-negative integer")
        if size != count * NUMPY[datatype].itemsize:
            raise ProtocolError(
                f"input {name!r}: binary_data_size {size} is not {count} × {NUMPY[datatype].itemsize} bytes "
                f"of shape {shape}"
            )
        if offset + size > len(binary):
            raise ProtocolError(
                f"input {name!r}: binary data ends after {len(binary) - offset} of its {size} bytes"
            )
        array = np.frombuffer(binary, dtype=NUMPY[datatype], count=count, offset=offset)
        return array.astype(NUMPY[datatype].newbyteorder("="), copy=True).reshape(shape), size
    if datatype in JSON_ONLY_IN_BINARY:
        raise ProtocolError(f"input {name!r}: {datatype} tensors travel only as binary data")
    if "data" not in raw:
        raise ProtocolError(f"input {name!r} has neither 'data' nor parameters.binary_data_size")
    flat = _flatten(raw["data"], name)
    if len(flat) != count:
        raise ProtocolError(f"input {name!r}: 'data' holds {len(flat)} values; shape {shape} needs {count}")
    return _array(flat, datatype, name).reshape(shape), 0


def _flatten(data: object, name: str) -> list[Any]:
    if not isinstance(data, list):
        raise ProtocolError(f"input {name!r}: 'data' must be a list")
    out: list[Any] = []
    stack: list[Any] = [iter(data)]
    while stack:
        item = next(stack[-1], StopIteration)
        if item is StopIteration:
            stack.pop()
        elif isinstance(item, list):
            stack.append(iter(item))
        else:
            out.append(item)
    return out


def _array(values: list[Any], datatype: str, name: str) -> NDArray[Any]:
    if datatype == "BOOL":
        if not all(isinstance(v, bool) for v in values):
            raise ProtocolError(f"input {name!r}: BOOL data must be true or false")
        return np.asarray(values, dtype=np.bool_)
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in values):
        raise ProtocolError(f"input {name!r}: {datatype} data must be numbers")
    dtype = NUMPY[datatype].newbyteorder("=")
    if dtype.kind in "iu":
        if not all(isinstance(v, int) for v in values):
            raise ProtocolError(f"input {name!r}: {datatype} data must be integers")
        info = np.iinfo(dtype)
        if values and (min(values) < info.min or max(values) > info.max):
            raise ProtocolError(f"input {name!r}: a value is outside {datatype}'s range")
        return np.asarray(values, dtype=dtype)
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array)) or (
        dtype == np.float32 and np.any(np.abs(array) > np.finfo(np.float32).max)
    ):
        raise ProtocolError(f"input {name!r}: values must be finite numbers within {datatype}'s range")
    return array.astype(dtype)


def _requested(message: Mapping[str, Any], contract: ModelContract) -> tuple[RequestedOutput, ...]:
    parameters = message.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ProtocolError("'parameters' must be an object")
    binary_all = parameters.get("binary_data_output", False)
    if not isinstance(binary_all, bool):
        raise ProtocolError("parameters.binary_data_output must be true or false")
    raw = message.get("outputs")
    if raw is None:
        return tuple(RequestedOutput(name, binary_all) for name in contract.output_names)
    if not isinstance(raw, list):
        raise ProtocolError("'outputs' must be a list")
    known = set(contract.output_names)
    requested = []
    for item in raw:
        name = item.get("name") if isinstance(item, dict) else None
        if name not in known:
            raise ProtocolError(
                f"output {name!r} is not an output of the model; it answers {', '.join(contract.output_names)}"
            )
        params = item.get("parameters") or {}
        binary = params.get("binary_data", binary_all) if isinstance(params, dict) else binary_all
        if not isinstance(binary, bool):
            raise ProtocolError(f"output {name!r}: parameters.binary_data must be true or false")
        requested.append(RequestedOutput(str(name), binary))
    return tuple(requested)
