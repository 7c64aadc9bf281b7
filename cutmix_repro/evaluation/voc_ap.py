"""Pascal VOC2007 detection AP (Table 10's metric): the 11-point interpolated average precision at IoU 0.5,
per class and their mean, with the devkit's rules (``VOCevaldet.m``; the ``voc_eval.py`` that the
detection codes of the paper's appendix use):

- detections of a class are ranked by score over the whole test set (ties keep their input order);
- each is matched to the ground truth of its image it overlaps most; with IoU > 0.5 it is a true positive
  if that ground truth was not matched before, a false positive if it was (a ground truth is matched once);
  a match to a *difficult* ground truth counts as neither, and difficult objects do not count in the recall;
- precision at recall t is the highest precision at any recall ≥ t; AP = the mean over t = 0, 0.1, …, 1.

Box coordinates are continuous (x0, y0, x1, y1). ``plus_one=True`` adds one pixel to every width and height
(the devkit lineage of py-faster-rcnn, and so of the Faster R-CNN code the paper used); the SSD code the
paper used (ssd.pytorch's ``eval.py``) does not. The default here is without: the data loader already turns
VOC's 1-based inclusive pixel boxes into continuous ones (``data/voc.py``), and torchmetrics and
torchvision measure boxes that way. docs/transfer.md states what the +1 changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

IOU_THRESHOLD = 0.5
RECALL_POINTS = np.linspace(0, 1, 11)


@dataclass
class ImageDetections:
    """One image's detections (N×4 boxes, scores, labels) and its ground truth (M×4, labels, difficult)."""
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    gt_boxes: np.ndarray
    gt_labels: np.ndarray
    gt_difficult: np.ndarray


def iou(box: np.ndarray, boxes: np.ndarray, plus_one: bool = False) -> np.ndarray:
    """IoU of one box with each of ``boxes`` (float64)."""
    one = 1.0 if plus_one else 0.0
    box, boxes = np.asarray(box, np.float64), np.asarray(boxes, np.float64).reshape(-1, 4)
    w = np.maximum(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]) + one, 0.0)
    h = np.maximum(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]) + one, 0.0)
    inter = w * h
    area = (box[2] - box[0] + one) * (box[3] - box[1] + one)
    areas = (boxes[:, 2] - boxes[:, 0] + one) * (boxes[:, 3] - boxes[:, 1] + one)
    return inter / (area + areas - inter)


def eleven_point_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC2007's AP: the mean over t ∈ {0, 0.1, …, 1} of the highest precision at recall ≥ t (0 if none)."""
    return float(np.mean([precision[recall >= t].max() if (recall >= t).any() else 0.0 for t in RECALL_POINTS]))


def class_ap(images: Sequence[ImageDetections], label: int, iou_threshold: float = IOU_THRESHOLD,
             plus_one: bool = False) -> float | None:
    """AP of class ``label`` over ``images``; None when the class has no non-difficult ground truth."""
    gts, positives = [], 0
    for image in images:
        mine = image.gt_labels == label
        gts.append((image.gt_boxes[mine], image.gt_difficult[mine].astype(bool), np.zeros(mine.sum(), bool)))
        positives += int((~image.gt_difficult[mine].astype(bool)).sum())
    if positives == 0:
        return None
    found = [(score, i, box) for i, image in enumerate(images)
             for box, score in zip(image.boxes[image.labels == label], image.scores[image.labels == label])]
    order = sorted(range(len(found)), key=lambda k: -found[k][0])  # stable: ties keep their input order
    tp, fp = np.zeros(len(found)), np.zeros(len(found))
    for rank, k in enumerate(order):
        _, i, box = found[k]
        boxes, difficult, matched = gts[i]
        if len(boxes) == 0:
            fp[rank] = 1
            continue
        overlaps = iou(box, boxes, plus_one)
        best = int(overlaps.argmax())
        if overlaps[best] > iou_threshold:
            if difficult[best]:
                continue  # neither right nor wrong
            if not matched[best]:
                tp[rank], matched[best] = 1, True
            else:
                fp[rank] = 1
        else:
            fp[rank] = 1
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    recall = tp / positives
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return eleven_point_ap(recall, precision)


def voc07_map(images: Sequence[ImageDetections], class_names: Sequence[str], iou_threshold: float = IOU_THRESHOLD,
              plus_one: bool = False) -> dict:
    """{"map": mean AP in percent over the classes that have ground truth, "ap": {class: AP in percent}}.
    Labels are 1-based (0 is the background), so ``class_names[label - 1]`` names a label."""
    ap = {}
    for label, name in enumerate(class_names, start=1):
        value = class_ap(images, label, iou_threshold, plus_one)
        if value is not None:
            ap[name] = 100.0 * value
    return {"map": float(np.mean(list(ap.values()))) if ap else float("nan"), "ap": ap}
