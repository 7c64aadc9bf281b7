"""Our localization numbers against the field's reference implementation, clovaai/wsolevaluation
(restated with OpenCV in ``wsol_reference.py``), on the same score maps and boxes."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import needs  # noqa: E402

needs("cv2", "opencv-python-headless")
import wsol_reference as ref  # noqa: E402

from cutmix_repro.data.wsol import eval_boxes  # noqa: E402
from cutmix_repro.localization import (  # noqa: E402
    THRESHOLD,
    LocalizationMeter,
    boxes_from_maps,
    cam_thresholds,
)

GRID = cam_thresholds()


def ours(maps: torch.Tensor, truth: torch.Tensor, method: str = "scipy") -> dict:
    meter = LocalizationMeter("cpu", method=method)
    meter.update_maps(maps, maps, torch.ones(len(maps), dtype=torch.bool), truth)
    return meter.compute()

def theirs(maps: torch.Tensor, truth: torch.Tensor) -> dict:
    scoremaps = [ref.normalize_scoremap(m.numpy()) for m in maps]
    gt = [[b for b in boxes.tolist() if b[0] >= 0] for boxes in truth]
    v1 = ref.box_accuracies(scoremaps, gt, GRID)[0]
    v2 = ref.box_accuracies(scoremaps, gt, GRID, iou_thresholds=(30, 50, 70), all_contours=True)
    known = ref.box_accuracies(scoremaps, gt, [THRESHOLD])[0, 0]
    return {"gt_known_loc": known, "max_box_acc": v1.max(), "max_box_acc_v2": v2.max(1).mean()}


def bumps(n: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Maps of one Gaussian bump each (every threshold's mask is one convex region, so region and contour
    rules agree) and a true box near it, integer corners; some images with a second, distant true box."""
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    centre = torch.rand(n, 2, generator=g) * size * 0.6 + size * 0.2
    spread = torch.rand(n, 2, generator=g) * size * 0.2 + size * 0.05
    maps = torch.exp(-(((xs - centre[:, 0, None, None]) / spread[:, 0, None, None]) ** 2
                       + ((ys - centre[:, 1, None, None]) / spread[:, 1, None, None]) ** 2))
    maps = maps * (torch.rand(n, 1, 1, generator=g) * 5 + 0.5) - torch.rand(n, 1, 1, generator=g) * 3  # min ≠ 0
    jitter = torch.randint(-3, 4, (n, 4), generator=g)
    half = spread.repeat(1, 2) * torch.tensor([-1.0, -1.0, 1.0, 1.0])
    boxes = (centre.repeat(1, 2) + half + jitter).round().clamp(0, size - 1)
    x0, x1 = torch.minimum(boxes[:, 0], boxes[:, 2]), torch.maximum(boxes[:, 0], boxes[:, 2])
    y0, y1 = torch.minimum(boxes[:, 1], boxes[:, 3]), torch.maximum(boxes[:, 1], boxes[:, 3])
    first = torch.stack([x0, y0, x1, y1], 1)
    second = torch.where(torch.rand(n, 1, generator=g) < 0.3, torch.tensor([[0.0, 0.0, 3.0, 3.0]]),
                         torch.full((n, 4), -1.0))
    return maps.float(), torch.stack([first, second], 1)


@pytest.mark.parametrize("method", ["scipy", "torch"])
def test_on_single_region_maps_every_number_equals_the_references(method):
    maps, truth = bumps(120, 48, seed=0)
    mine, reference = ours(maps, truth, method), theirs(maps, truth)
    for key in ("gt_known_loc", "max_box_acc", "max_box_acc_v2"):
        assert mine[key] == pytest.approx(reference[key], abs=1e-9), key
    assert 5 < reference["max_box_acc"] < 95, "the maps are neither all right nor all wrong"


def test_on_many_region_maps_the_box_of_the_largest_region_is_the_references_almost_always():
    g = torch.Generator().manual_seed(1)
    maps = F.interpolate(torch.rand(60, 1, 7, 7, generator=g), size=(56, 56), mode="bicubic", align_corners=False)[:, 0]
    same = total = 0
    ours_boxes = boxes_from_maps(maps, GRID[::3])
    for i, m in enumerate(maps):
        scoremap = ref.normalize_scoremap(m.numpy())
        for j, t in enumerate(GRID[::3]):
            theirs_box = ref.boxes_at(scoremap, t, all_contours=False)[0].tolist()
            same += ours_boxes[i, j].tolist() == theirs_box
            total += 1
    assert same / total > 0.99, (same, total)


def test_maxboxacc_on_many_region_maps_is_within_one_image_of_the_references():
    g = torch.Generator().manual_seed(2)
    maps = F.interpolate(torch.rand(80, 1, 6, 6, generator=g), size=(40, 40), mode="bicubic", align_corners=False)[:, 0]
    # true boxes near the reference's own box at a threshold of 0.6: accuracies far from 0 and 100
    near = [ref.boxes_at(ref.normalize_scoremap(m.numpy()), 0.6, all_contours=False)[0] for m in maps]
    jitter = torch.randint(-6, 7, (80, 4), generator=g)
    truth = (torch.tensor(np.array(near), dtype=torch.float32) + jitter).clamp(0, 39)
    truth = torch.cat([torch.minimum(truth[:, :2], truth[:, 2:]), torch.maximum(truth[:, :2], truth[:, 2:])], 1)
    mine, reference = ours(maps, truth.view(80, 1, 4)), theirs(maps, truth.view(80, 1, 4))
    assert 10 < reference["gt_known_loc"] < 90 and 10 < reference["max_box_acc_v2"] < 90, reference
    for key in ("gt_known_loc", "max_box_acc", "max_box_acc_v2"):
        assert mine[key] == pytest.approx(reference[key], abs=100 / 80 + 1e-9), key


def test_true_boxes_resized_without_a_crop_are_the_references_resize_bbox():
    g = np.random.default_rng(0)
    for _ in range(200):
        width, height = (int(v) for v in g.integers(20, 600, 2))
        x0, x1 = sorted(g.integers(0, width + 1, 2).tolist())
        y0, y1 = sorted(g.integers(0, height + 1, 2).tolist())
        size = int(g.choice([32, 224]))
        mapped = eval_boxes(torch.tensor([[x0, y0, x1, y1]], dtype=torch.float32), width, height, size, size)
        assert mapped[0].tolist() == list(ref.resize_bbox((x0, y0, x1, y1), (width, height), (size, size)))


@pytest.mark.parametrize("size, out", [(7, 224), (14, 224), (6, 40), (5, 37)])
def test_cams_are_upsampled_as_the_references_cv2_resize_inter_cubic(size, out):
    """clovaai/wsolevaluation resizes each CAM with ``cv2.resize(cam, (W, H), interpolation=cv2.INTER_CUBIC)``;
    the project's own CAM function gives the same maps from the same feature maps (bilinear would be ~1e-1 off)."""
    import cv2

    from cutmix_repro.cam import maps_from_features

    g = torch.Generator().manual_seed(size)
    features = torch.relu(torch.randn(3, 8, size, size, generator=g))
    classifier = torch.nn.Linear(8, 5)
    classes = torch.tensor([0, 3, 4])
    with torch.no_grad():
        mine = maps_from_features(features, classifier, classes, (out, out))
        small = maps_from_features(features, classifier, classes)
    reference = np.stack([cv2.resize(m.numpy().astype(np.float32), (out, out), interpolation=cv2.INTER_CUBIC)
                          for m in small])
    scale = float(np.abs(reference).max())
    assert np.abs(mine.numpy() - reference).max() <= 1e-5 * scale
