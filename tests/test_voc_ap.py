"""VOC2007's 11-point AP (Table 10's detection metric, evaluation/voc_ap.py): a hand-computed case, equality
with torchmetrics' MeanAveragePrecision (IoU 0.5, 11 recall points) where the two protocols agree, the
difficult-object rule where they do not, and the +1 pixel box convention."""

import numpy as np
import pytest
import torch

from cutmix_repro.evaluation.voc_ap import ImageDetections, class_ap, iou, voc07_map


def image(boxes, scores, labels, gt_boxes, gt_labels, gt_difficult=None):
    gt_difficult = np.zeros(len(gt_labels), bool) if gt_difficult is None else np.asarray(gt_difficult, bool)
    return ImageDetections(np.asarray(boxes, float).reshape(-1, 4), np.asarray(scores, float), np.asarray(labels),
                           np.asarray(gt_boxes, float).reshape(-1, 4), np.asarray(gt_labels), gt_difficult)


def test_the_eleven_point_ap_of_a_hand_computed_case():
    # class 1: image 0 holds A, image 1 holds B and C. Ranked detections: A hit (TP), a miss (FP), B hit (TP),
    # B again (FP: a ground truth is matched once). Recall 1/3, 1/3, 2/3, 2/3; precision 1, 1/2, 2/3, 1/2.
    # 11-point: t = 0…0.3 → 1 (4 points), t = 0.4…0.6 → 2/3 (3 points), t = 0.7…1 → 0: AP = 6/11.
    a, b, c = [10, 10, 50, 50], [10, 10, 40, 60], [60, 10, 90, 40]
    images = [image([a], [0.9], [1], [a], [1]),
              image([[100, 100, 120, 120], b, [11, 11, 41, 61]], [0.8, 0.7, 0.6], [1, 1, 1], [b, c], [1, 1])]
    assert class_ap(images, 1) == pytest.approx(6 / 11)
    result = voc07_map(images, ["thing"])
    assert result["map"] == pytest.approx(100 * 6 / 11) and result["ap"] == {"thing": pytest.approx(100 * 6 / 11)}


def test_a_difficult_object_neither_counts_nor_penalises():
    # A (normal) and D (difficult). Detections: D hit (0.9), a miss (0.8), A hit (0.7).
    # Devkit: the D hit is ignored and D is not in the recall: FP, TP of 1 positive → AP 0.5.
    # Treating D as a normal object gives 0.848; dropping D but keeping its hit as a false positive, 0.333.
    a, d = [10, 10, 50, 50], [60, 60, 90, 90]
    images = [image([d, [0, 100, 20, 120], a], [0.9, 0.8, 0.7], [1, 1, 1], [a, d], [1, 1], [False, True])]
    assert class_ap(images, 1) == pytest.approx(0.5)
    as_normal = [image(*[getattr(images[0], f) for f in ("boxes", "scores", "labels", "gt_boxes", "gt_labels")])]
    assert class_ap(as_normal, 1) == pytest.approx((6 + 5 * 2 / 3) / 11)
    # a class whose only objects are difficult has no AP (it is left out of the mean)
    only_difficult = [image([d], [0.9], [2], [d], [2], [True])]
    assert class_ap(only_difficult, 2) is None
    assert voc07_map(images + only_difficult, ["one", "two"])["ap"].keys() == {"one"}


def random_detections(rng, images: int, classes: int):
    """Ground truths in separate cells of a 4×4 grid (no detection can overlap two of them by IoU > 0.5),
    detections jittered around them or placed anywhere, distinct scores; no difficult objects."""
    out = []
    for _ in range(images):
        cells = rng.choice(16, size=int(rng.integers(1, 6)), replace=False)
        gt = np.array([[(c % 4) * 100 + 5, (c // 4) * 100 + 5, (c % 4) * 100 + 95, (c // 4) * 100 + 95]
                       for c in cells], float)
        gt_labels = rng.integers(1, classes + 1, len(gt))
        boxes, labels = [], []
        for box, label in zip(gt, gt_labels):
            for _ in range(int(rng.integers(0, 3))):
                boxes.append(box + rng.normal(0, 12, 4))
                labels.append(label if rng.random() < 0.8 else int(rng.integers(1, classes + 1)))
        for _ in range(int(rng.integers(0, 4))):
            x, y = rng.uniform(0, 350, 2)
            boxes.append([x, y, x + rng.uniform(10, 80), y + rng.uniform(10, 80)])
            labels.append(int(rng.integers(1, classes + 1)))
        boxes = np.array(boxes, float).reshape(-1, 4)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        out.append(image(boxes, rng.random(len(boxes)), np.array(labels, int), gt, gt_labels))
    return out


def test_equals_torchmetrics_mean_average_precision_without_difficult_objects():
    from helpers import needs

    MeanAveragePrecision = needs("torchmetrics.detection", "torchmetrics").MeanAveragePrecision
    needs("pycocotools")  # its MeanAveragePrecision computes with it

    rng = np.random.default_rng(0)
    classes = 5
    images = random_detections(rng, 60, classes)
    metric = MeanAveragePrecision(iou_thresholds=[0.5], rec_thresholds=np.linspace(0, 1, 11).tolist(),
                                  class_metrics=True, max_detection_thresholds=[1, 10, 100])
    metric.update([{"boxes": torch.tensor(i.boxes, dtype=torch.float64), "scores": torch.tensor(i.scores),
                    "labels": torch.tensor(i.labels)} for i in images],
                  [{"boxes": torch.tensor(i.gt_boxes, dtype=torch.float64), "labels": torch.tensor(i.gt_labels)}
                   for i in images])
    theirs = metric.compute()
    ours = voc07_map(images, [f"c{k}" for k in range(1, classes + 1)])
    per_class = dict(zip(theirs["classes"].tolist(), theirs["map_per_class"].tolist()))
    assert len(ours["ap"]) == classes
    for k in range(1, classes + 1):
        assert ours["ap"][f"c{k}"] == pytest.approx(100 * per_class[k], abs=1e-4), k
    assert ours["map"] == pytest.approx(100 * float(theirs["map"]), abs=1e-4)
    assert 20 < ours["map"] < 95  # neither trivial nor perfect: the matching decides it


def test_the_plus_one_convention_is_the_devkits_formula():
    # (0, 0, 10, 10) against (0, 0, 10, 5): IoU 50/100 = 0.5 as continuous boxes; 66/121 with the devkit's +1
    assert iou([0, 0, 10, 10], [[0, 0, 10, 5]])[0] == pytest.approx(0.5)
    assert iou([0, 0, 10, 10], [[0, 0, 10, 5]], plus_one=True)[0] == pytest.approx(66 / 121)
    # at IoU exactly 0.5 the devkit's rule (> 0.5) rejects: the +1 turns the same detection into a hit
    images = [image([[0, 0, 10, 5]], [0.9], [1], [[0, 0, 10, 10]], [1])]
    assert class_ap(images, 1) == 0.0 and class_ap(images, 1, plus_one=True) == 1.0
