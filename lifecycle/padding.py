"""Requests of named tensors merged into batches for one model call, and the outputs split back.

Requests merge when their items have the same shape, or — for a dimension the contract lets be
padded — when they differ only in its size within one power of two (so padding at most doubles
it): every input that has the dimension names a
``pad_value`` (token ids and attention mask padded with 0, the mask's zeros keeping the padding
out of attention and pooling). Merged items are padded at the end of that dimension to the
largest size; each output dimension of the same name is cut back to the request's own size, so a
client gets exactly the shape it would have got alone. Pure numpy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lifecycle.contract import ModelContract

Arrays = Mapping[str, NDArray[Any]]


@dataclass(frozen=True)
class Merged:
    """One model call's inputs: the requests at ``members`` (positions), ``counts`` items each, and
    each one's size of every padded dimension."""

    inputs: dict[str, NDArray[Any]]
    members: list[int]
    counts: list[int]
    sizes: list[dict[str, int]]


def paddable_dims(contract: ModelContract) -> frozenset[str]:
    """Named dimensions that every input having them may pad."""
    padded: set[str] = set()
    fixed: set[str] = set()
    for spec in contract.inputs:
        names = {d for d in spec.item_shape if isinstance(d, str)}
        (padded if spec.pad_value is not None else fixed).update(names)
    return frozenset(padded - fixed)


def merge_requests(contract: ModelContract, requests: Sequence[Arrays]) -> list[Merged]:
    """Group ``requests`` (each checked against ``contract``) into model calls."""
    pads = paddable_dims(contract)
    specs = {spec.name: spec for spec in contract.inputs}
    groups: dict[tuple[object, ...], list[int]] = {}
    sizes: list[dict[str, int]] = []
    for position, request in enumerate(requests):
        own: dict[str, int] = {}
        key: list[object] = []
        for name, array in request.items():
            shape: list[object] = [array.dtype.str]
            for axis, dim in enumerate(specs[name].item_shape, start=1):
                if isinstance(dim, str) and dim in pads:
                    own[dim] = int(array.shape[axis])
                    shape.append((dim, _bucket(own[dim])))
                else:
                    shape.append(int(array.shape[axis]))
            key.append((name, tuple(shape)))
        sizes.append(own)
        groups.setdefault(tuple(key), []).append(position)
    merged = []
    for members in groups.values():
        counts = [len(next(iter(requests[m].values()))) for m in members]
        if len(members) == 1:
            (only,) = members
            merged.append(Merged(dict(requests[only]), members, counts, [sizes[only]]))
            continue
        target = {dim: max(sizes[m][dim] for m in members) for dim in sizes[members[0]]}
        inputs = {
            name: np.concatenate(
                [_pad(requests[m][name], spec.item_shape, target, spec.pad_value) for m in members]
            )
            for name, spec in specs.items()
        }
        merged.append(Merged(inputs, members, counts, [sizes[m] for m in members]))
    return merged


def split_outputs(contract: ModelContract, merged: Merged, outputs: Arrays) -> list[dict[str, NDArray[Any]]]:
    """Each member's outputs: its items, each padded dimension cut back to its own size."""
    specs = {spec.name: spec for spec in contract.outputs}
    parts: list[dict[str, NDArray[Any]]] = []
    start = 0
    for count, own in zip(merged.counts, merged.sizes, strict=True):
        part = {}
        for name, array in outputs.items():
            piece = array[start : start + count]
            spec = specs.get(name)
            if spec is not None and own:
                index: list[slice] = [slice(None)]
                index += [
                    slice(0, own[d]) if isinstance(d, str) and d in own else slice(None)
                    for d in spec.item_shape
                ]
                piece = piece[tuple(index)]
            part[name] = piece
        parts.append(part)
        start += count
    return parts


def _bucket(size: int) -> int:
    """The power of two at or above ``size``: requests pad only within one, so padding at most
    doubles a dimension (a long request never inflates a batch of short ones)."""
    return 1 << max(0, (size - 1).bit_length())


def _pad(
    array: NDArray[Any], item_shape: Sequence[object], target: Mapping[str, int], value: float | None
) -> NDArray[Any]:
    widths = [(0, 0)]
    widths += [(0, target[d] - array.shape[axis]) if isinstance(d, str) and d in target else (0, 0)
               for axis, d in enumerate(item_shape, start=1)]  # fmt: skip
    if not any(after for _, after in widths):
        return array
    return np.pad(array, widths, constant_values=0 if value is None else value)
