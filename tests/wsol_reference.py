"""The box evaluation of clovaai/wsolevaluation (Choe et al., CVPR 2020), restated for the tests from
its ``evaluation.py`` and ``inference.py`` (``normalize_scoremap``, ``compute_bboxes_from_scoremaps``,
``calculate_multiple_iou``, ``BoxEvaluator``) with OpenCV, as it computes them: the numbers ours must
reproduce on the same score maps. Not part of the package."""

from __future__ import annotations

import numpy as np
from helpers import needs

cv2 = needs("cv2", "opencv-python-headless")


def normalize_scoremap(cam: np.ndarray) -> np.ndarray:
    cam = cam.astype(np.float32).copy()
    if np.isnan(cam).any() or cam.min() == cam.max():
        return np.zeros_like(cam)
    cam -= cam.min()
    cam /= cam.max()
    return cam


def boxes_at(scoremap: np.ndarray, threshold: float, all_contours: bool) -> np.ndarray:
    """The boxes (x0, y0, x1, y1) of the thresholded 8-bit map: of the largest contour, or of every one."""
    height, width = scoremap.shape
    image = np.expand_dims((scoremap * 255).astype(np.uint8), 2)
    _, binary = cv2.threshold(image, int(threshold * np.max(image)), 255, cv2.THRESH_BINARY)
    contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
    if len(contours) == 0:
        return np.asarray([[0, 0, 0, 0]])
    if not all_contours:
        contours = [max(contours, key=cv2.contourArea)]
    boxes = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        boxes.append([x, y, min(x + w, width - 1), min(y + h, height - 1)])
    return np.asarray(boxes)


def multiple_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(num_a, num_b) IoU with inclusive box ends."""
    a, b = a[:, None, :].astype(np.float64), b[None, :, :].astype(np.float64)
    inter = (np.maximum(0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1)
             * np.maximum(0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1))
    area = lambda x: (x[..., 2] - x[..., 0] + 1) * (x[..., 3] - x[..., 1] + 1)  # noqa: E731
    union = area(a) + area(b) - inter
    iou = inter / np.where(union <= 0, 1, union)
    return np.where(union <= 0, 0, iou)


def box_accuracies(scoremaps, gt_boxes, thresholds, iou_thresholds=(50,), all_contours=False) -> np.ndarray:
    """(IoU thresholds, CAM thresholds) box accuracy in % over the maps (already normalised), as
    ``BoxEvaluator.accumulate`` counts it: a map is right at a CAM threshold when its best box has
    IoU ≥ the threshold with any true box."""
    correct = np.zeros((len(iou_thresholds), len(thresholds)))
    for scoremap, gt in zip(scoremaps, gt_boxes):
        best = [multiple_iou(boxes_at(scoremap, t, all_contours), np.asarray(gt)).max() for t in thresholds]
        for i, iou in enumerate(iou_thresholds):
            correct[i] += np.asarray(best) >= iou / 100
    return correct * 100.0 / len(scoremaps)


def resize_bbox(box, image_size, resize_size):
    x0, y0, x1, y1 = map(float, box)
    w, h = map(float, image_size)
    nw, nh = map(float, resize_size)
    return int(x0 * nw / w), int(y0 * nh / h), int(x1 * nw / w), int(y1 * nh / h)
