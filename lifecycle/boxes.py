"""Detection outputs as boxes: decoders (YOLOv8 raw head, ready-made boxes), NMS, IoU matching,
mAP@0.5. Pure numpy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lifecycle.contract import Detection

FloatArray = NDArray[np.float32]


@dataclass(frozen=True)
class Boxes:
    """One item's detections: ``xyxy`` (k, 4), ``scores`` (k,), ``classes`` (k,)."""

    xyxy: FloatArray
    scores: FloatArray
    classes: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.scores)


def iou(a: FloatArray, b: FloatArray) -> FloatArray:
    """Pairwise IoU of xyxy boxes: (len(a), len(b))."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0).astype(np.float32)


def nms(
    xyxy: FloatArray, scores: FloatArray, classes: NDArray[np.int64], threshold: float
) -> NDArray[np.intp]:
    """Indices kept by class-aware greedy non-maximum suppression, best score first."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while len(order):
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        overlap = iou(xyxy[best : best + 1], xyxy[rest])[0]
        order = rest[(overlap <= threshold) | (classes[rest] != classes[best])]
    return np.array(keep, dtype=np.intp)


def decode_yolov8(head: FloatArray, spec: Detection) -> list[Boxes]:
    """(batch, 4 + classes, anchors) centre-xywh + class scores → boxes per item after NMS."""
    out = []
    for item in np.asarray(head, dtype=np.float32):
        anchors = item.T  # (anchors, 4 + classes)
        class_scores = anchors[:, 4:]
        classes = class_scores.argmax(1)
        scores = class_scores[np.arange(len(anchors)), classes]
        keep = scores > spec.score_threshold
        cx, cy, w, h = anchors[keep, :4].T
        xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)
        out.append(_select(xyxy, scores[keep], classes[keep].astype(np.int64), spec))
    return out


def decode_boxes(outputs: Mapping[str, NDArray[Any]], spec: Detection) -> list[Boxes]:
    """Outputs that already are boxes (batch, n, 4), scores (batch, n), classes (batch, n)."""
    boxes = np.asarray(outputs[spec.boxes], dtype=np.float32)
    scores = np.asarray(outputs[spec.scores], dtype=np.float32)
    classes = (
        np.asarray(outputs[spec.classes]).astype(np.int64)
        if spec.classes
        else np.zeros(scores.shape, dtype=np.int64)
    )
    out = []
    for b, s, c in zip(boxes, scores, classes, strict=True):
        keep = s > spec.score_threshold
        out.append(_select(b[keep], s[keep], c[keep], spec))
    return out


def _select(xyxy: FloatArray, scores: FloatArray, classes: NDArray[np.int64], spec: Detection) -> Boxes:
    kept = nms(xyxy, scores, classes, spec.iou_threshold)[: spec.max_boxes]
    return Boxes(xyxy[kept], scores[kept].astype(np.float32), classes[kept])


def decode(outputs: Mapping[str, NDArray[Any]], primary: str, spec: Detection) -> list[Boxes]:
    if spec.decoder == "yolov8":
        return decode_yolov8(outputs[primary], spec)
    return decode_boxes(outputs, spec)


def agreement(found: Sequence[Boxes], reference: Sequence[Boxes], threshold: float = 0.5) -> float:
    """Share of boxes matched one-to-one with the reference's (same class, IoU ≥ ``threshold``),
    as an F1 over all items: 2·matched / (found + reference); 1.0 when neither has a box."""
    matched = total = 0
    for a, b in zip(found, reference, strict=True):
        total += len(a) + len(b)
        matched += _matches(a, b, threshold)
    return 1.0 if total == 0 else 2 * matched / total


def _matches(a: Boxes, b: Boxes, threshold: float) -> int:
    if len(a) == 0 or len(b) == 0:
        return 0
    overlaps = iou(a.xyxy, b.xyxy)
    overlaps[a.classes[:, None] != b.classes[None, :]] = 0
    used: set[int] = set()
    count = 0
    for i in np.argsort(-a.scores, kind="stable"):
        for j in np.argsort(-overlaps[i], kind="stable"):
            if overlaps[i, j] < threshold:
                break
            if int(j) not in used:
                used.add(int(j))
                count += 1
                break
    return count


def mean_average_precision(
    found: Sequence[Boxes], truth: Sequence[tuple[FloatArray, NDArray[np.int64]]], threshold: float = 0.5
) -> float:
    """mAP at IoU ``threshold`` (all-point interpolated AP per class, averaged over the classes that
    have ground-truth boxes)."""
    classes = sorted({int(c) for _, cls in truth for c in cls})
    if not classes:
        return float("nan")
    aps = []
    for cls in classes:
        scored: list[tuple[float, bool]] = []
        n_truth = 0
        for boxes, (gt_xyxy, gt_cls) in zip(found, truth, strict=True):
            gt = gt_xyxy[gt_cls == cls]
            n_truth += len(gt)
            mine = boxes.classes == cls
            xyxy, scores = boxes.xyxy[mine], boxes.scores[mine]
            overlaps = iou(xyxy, gt)
            taken: set[int] = set()
            for i in np.argsort(-scores, kind="stable"):
                j = int(overlaps[i].argmax()) if len(gt) else -1
                hit = j >= 0 and overlaps[i, j] >= threshold and j not in taken
                if hit:
                    taken.add(j)
                scored.append((float(scores[i]), hit))
        scored.sort(key=lambda t: -t[0])
        hits = np.array([h for _, h in scored], dtype=np.float64)
        tp = np.cumsum(hits)
        precision = tp / np.arange(1, len(hits) + 1) if len(hits) else np.zeros(0)
        recall = tp / max(n_truth, 1)
        aps.append(_average_precision(recall, precision))
    return float(np.mean(aps))


def _average_precision(recall: NDArray[np.float64], precision: NDArray[np.float64]) -> float:
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    changed = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[changed + 1] - r[changed]) * p[changed + 1]))
