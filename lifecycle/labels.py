"""True labels sent as feedback, checked against the model's task (pure Python):

| task | label | stored |
|---|---|---|
| classification | a class name, or its index | ``label``: the class index |
| regression | a number, or one per target | ``target``: ``{"values": [...]}`` |
| detection | ``[{"box": [x1, y1, x2, y2], "class": name or index}, ...]`` (``[]``: nothing to find) | ``target``: ``{"boxes": [[x1, y1, x2, y2], ...], "classes": [...]}`` |

An embedding model or generic tensors take no label: feedback for them is refused, naming the task.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lifecycle.contract import ContractViolationError, ModelContract

MAX_BOXES = 1000


@dataclass(frozen=True)
class Label:
    """A checked label: ``index`` for a classifier, ``target`` for a regressor or detector."""

    index: int | None = None
    target: dict[str, Any] | None = None

    def describe(self, contract: ModelContract) -> str:
        if self.index is not None:
            return contract.class_names[self.index]
        assert self.target is not None
        if "values" in self.target:
            return ", ".join(
                f"{n}={v:g}" for n, v in zip(contract.target_names, self.target["values"], strict=True)
            )
        return f"{len(self.target['boxes'])} boxes"


def label_index(label: object, class_names: Sequence[str]) -> int:
    """The class index of ``label`` (a name, or an index). :raises ContractViolationError:"""
    if isinstance(label, bool) or not isinstance(label, str | int):
        raise ContractViolationError(f"label {label!r} is not a class; classes are {list(class_names)}")
    if isinstance(label, int):
        if 0 <= label < len(class_names):
            return label
        raise ContractViolationError(f"label index {label} is out of range 0..{len(class_names) - 1}")
    if label in class_names:
        return list(class_names).index(label)
    raise ContractViolationError(f"unknown label {label!r}; classes are {list(class_names)}")


def parse_label(contract: ModelContract, label: object) -> Label:
    """``label`` as the model's task takes it. :raises ContractViolationError: naming what is wrong."""
    if contract.task == "classification":
        return Label(index=label_index(label, contract.class_names))
    if contract.task == "regression":
        values = [label] if _number(label) else label
        n = len(contract.target_names)
        if not isinstance(values, list) or not all(_number(v) for v in values) or len(values) != n:
            raise ContractViolationError(
                f"a regressor's label is {'a number' if n == 1 else f'{n} numbers'} "
                f"({', '.join(contract.target_names)}), finite; got {label!r}"
            )
        return Label(target={"values": [float(v) for v in values]})
    if contract.task == "detection":
        return Label(target=_boxes(label, contract.class_names))
    raise ContractViolationError(f"a model of task {contract.task!r} takes no label as feedback")


def _number(value: object) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond any float
        return False


def _boxes(label: object, class_names: Sequence[str]) -> dict[str, Any]:
    shape = 'a list of {"box": [x1, y1, x2, y2], "class": name or index}'
    if not isinstance(label, list) or len(label) > MAX_BOXES:
        raise ContractViolationError(f"a detector's label is {shape} (at most {MAX_BOXES}); got {label!r}")
    boxes, classes = [], []
    for i, item in enumerate(label):
        box = item.get("box") if isinstance(item, dict) else None
        if not isinstance(box, list) or len(box) != 4 or not all(_number(v) for v in box):
            raise ContractViolationError(f"box {i}: {shape}; got {item!r}")
        x1, y1, x2, y2 = (float(v) for v in box)
        if x2 < x1 or y2 < y1:
            raise ContractViolationError(f"box {i}: x2 ≥ x1 and y2 ≥ y1 (corners, not a width); got {box}")
        cls = item.get("class", 0)
        if class_names:
            index = label_index(cls, class_names)
        elif isinstance(cls, int) and not isinstance(cls, bool) and cls >= 0:
            index = cls
        else:
            raise ContractViolationError(
                f"box {i}: class is an index ≥ 0 (the model names no classes); got {cls!r}"
            )
        boxes.append([x1, y1, x2, y2])
        classes.append(index)
    return {"boxes": boxes, "classes": classes}
