"""Named, typed tensors: the words every stage uses to say what goes into and out of a model.

A tensor's shape is a tuple of dimensions; an ``int`` is a fixed size, a ``str`` names a dynamic
dimension (``batch``, ``sequence``, ``height``…). The first dimension is always the dynamic batch.
Two tensors that name the same dynamic dimension must agree on its size in one request (the
``sequence`` of ``input_ids`` and of ``attention_mask``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lifecycle.errors import LifecycleError

DTYPES = ("float32", "float16", "float64", "int64", "int32", "uint8", "bool")
"""The element types a contract can name (ONNX names: FLOAT, FLOAT16, DOUBLE, INT64, INT32, UINT8, BOOL)."""

Dim = int | str
BATCH = "batch"


class ContractViolationError(LifecycleError, ValueError):
    """Data does not satisfy the model contract; the message names the tensor and what was expected."""


def _dim_from_json(value: object, index: int, tensor: str) -> Dim:
    if value is None:  # contracts written before dimensions had names
        return BATCH if index == 0 else f"{tensor}_d{index}"
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"tensor {tensor!r}: dimension {index} is {value!r}; use a size or a name")
    return value


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    shape: tuple[Dim, ...]
    """Fixed sizes (``int``) and named dynamic dimensions (``str``); the first is the batch."""
    pad_value: float | None = None
    """Value that fills a dynamic non-batch dimension when requests of different lengths are batched
    together (token ids 0, attention mask 0); ``None``: such requests are never batched together."""

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a tensor needs a name")
        if self.dtype not in DTYPES:
            raise ValueError(
                f"tensor {self.name!r}: dtype {self.dtype!r} is not supported; use one of {DTYPES}"
            )
        shape = tuple(_dim_from_json(d, i, self.name) for i, d in enumerate(self.shape))
        object.__setattr__(self, "shape", shape)
        if not shape or not isinstance(shape[0], str):
            raise ValueError(
                f"tensor {self.name!r}: shape {shape} must start with a named dynamic batch dimension"
            )
        for i, dim in enumerate(shape):
            if isinstance(dim, int) and dim < 1:
                raise ValueError(f"tensor {self.name!r}: dimension {i} has size {dim}; sizes are ≥ 1")
            if isinstance(dim, str) and not dim:
                raise ValueError(f"tensor {self.name!r}: dimension {i} has an empty name")

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def numpy_dtype(self) -> np.dtype[Any]:
        return np.dtype(self.dtype)

    @property
    def item_shape(self) -> tuple[Dim, ...]:
        """The shape of one item (without the batch dimension)."""
        return self.shape[1:]

    @property
    def item_size(self) -> int | None:
        """Elements per item when every non-batch dimension is fixed, else ``None``."""
        sizes = self.item_shape
        return int(np.prod(sizes)) if all(isinstance(d, int) for d in sizes) else None  # type: ignore[arg-type]

    def describe(self) -> str:
        dims = ", ".join(str(d) for d in self.shape)
        return f"{self.name} {self.dtype} ({dims})"

    def example_shape(self, batch: int, sizes: Mapping[str, int] | None = None) -> tuple[int, ...]:
        """A concrete shape: ``batch`` items, named dimensions from ``sizes`` (default 1)."""
        sizes = sizes or {}
        return (batch, *(d if isinstance(d, int) else sizes.get(d, 1) for d in self.item_shape))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}
        if self.pad_value is not None:
            out["pad_value"] = self.pad_value
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TensorSpec:
        pad = raw.get("pad_value")
        return cls(
            name=str(raw["name"]),
            dtype=str(raw["dtype"]),
            shape=tuple(raw["shape"]),
            pad_value=None if pad is None else float(pad),
        )


def check_tensors(
    specs: Sequence[TensorSpec],
    tensors: Mapping[str, object],
    *,
    what: str = "input",
    max_batch: int | None = None,
    allow_empty: bool = False,
) -> dict[str, NDArray[Any]]:
    """Check named arrays against their specs; return them as numpy arrays in spec order.

    Checked: the set of names, each dtype (exact: a float64 array is not a float32 tensor), rank,
    fixed sizes, one batch size for all, and one size per named dynamic dimension across tensors.

    :raises ContractViolationError: naming the tensor and what was expected.
    """
    expected = [s.name for s in specs]
    missing = [n for n in expected if n not in tensors]
    unknown = sorted(n for n in tensors if n not in expected)
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing {what} tensor(s) {missing}")
        if unknown:
            parts.append(f"unknown {what} tensor(s) {unknown}")
        wanted = "; ".join(s.describe() for s in specs)
        raise ContractViolationError(f"{', '.join(parts)}; the contract expects {wanted}")
    out: dict[str, NDArray[Any]] = {}
    sizes: dict[str, tuple[int, str]] = {}
    for spec in specs:
        arr = np.asarray(tensors[spec.name])
        if arr.dtype != spec.numpy_dtype:
            raise ContractViolationError(
                f"{what} tensor {spec.name!r} has dtype {arr.dtype}; the contract expects {spec.describe()}"
            )
        if arr.ndim != spec.rank:
            raise ContractViolationError(
                f"{what} tensor {spec.name!r} has shape {arr.shape} (rank {arr.ndim}); "
                f"the contract expects {spec.describe()}"
            )
        for i, (dim, size) in enumerate(zip(spec.shape, arr.shape, strict=True)):
            if isinstance(dim, int):
                if size != dim:
                    raise ContractViolationError(
                        f"{what} tensor {spec.name!r} has shape {arr.shape}; dimension {i} must be {dim} "
                        f"({spec.describe()})"
                    )
                continue
            seen = sizes.setdefault(dim, (size, spec.name))
            if seen[0] != size:
                raise ContractViolationError(
                    f"{what} tensor {spec.name!r} has {dim}={size} but {seen[1]!r} has {dim}={seen[0]}; "
                    f"tensors that share the dimension {dim!r} must agree"
                )
        out[spec.name] = arr
    batch = next(iter(out.values())).shape[0] if out else 0
    if batch == 0 and not allow_empty:
        raise ContractViolationError(f"{what} has no items (batch size 0)")
    for spec in specs:
        if out[spec.name].shape[0] != batch:
            raise ContractViolationError(
                f"{what} tensors disagree on the batch size: {spec.name!r} has "
                f"{out[spec.name].shape[0]}, {specs[0].name!r} has {batch}"
            )
    if max_batch is not None and batch > max_batch:
        raise ContractViolationError(f"{what} has {batch} items; the maximum is {max_batch}")
    return out


def batch_size(tensors: Mapping[str, NDArray[Any]]) -> int:
    return int(next(iter(tensors.values())).shape[0]) if tensors else 0


def take(tensors: Mapping[str, NDArray[Any]], index: slice | NDArray[np.integer]) -> dict[str, NDArray[Any]]:
    """The same items of every tensor (a slice or an index array along the batch)."""
    return {name: arr[index] for name, arr in tensors.items()}


def concat(parts: Sequence[Mapping[str, NDArray[Any]]]) -> dict[str, NDArray[Any]]:
    """Batch-wise concatenation of outputs with the same names and item shapes."""
    if not parts:
        return {}
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def item_signature(tensors: Mapping[str, NDArray[Any]]) -> tuple[tuple[str, str, tuple[int, ...]], ...]:
    """Names, dtypes and item shapes: requests with the same signature can run as one batch."""
    return tuple((name, arr.dtype.str, arr.shape[1:]) for name, arr in tensors.items())


def merge_compatible(
    requests: Sequence[Mapping[str, NDArray[Any]]],
) -> list[tuple[dict[str, NDArray[Any]], list[int]]]:
    """Requests grouped by :func:`item_signature`, each group concatenated along the batch: the
    merged tensors and the positions of the requests they hold, in order."""
    groups: dict[tuple[tuple[str, str, tuple[int, ...]], ...], list[int]] = {}
    for position, request in enumerate(requests):
        groups.setdefault(item_signature(request), []).append(position)
    return [
        (dict(requests[members[0]]) if len(members) == 1 else concat([requests[m] for m in members]), members)
        for members in groups.values()
    ]


def arrays_sha256(arrays: Mapping[str, NDArray[Any]]) -> str:
    """sha256 over named arrays (names included): which data a run or a variant saw."""
    digest = hashlib.sha256()
    for name, arr in sorted(arrays.items()):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(arr).tobytes())
    return digest.hexdigest()
