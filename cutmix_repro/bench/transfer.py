"""Sections 7 and 8: Table 10's detectors' training steps beside ResNet-50's, and what the VOC devkit's +1
pixel changes in mAP."""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

# The paper appendix's recipes: (task, detector, images per iteration × iterations, image size of its step)
TRANSFER_RECIPES = [("voc_faster_rcnn", "faster_rcnn_c4", 8 * 120_000), ("voc_ssd", "ssd300_r50", 32 * 120_000),
                    ("voc_faster_rcnn_fpn", "faster_rcnn_fpn", 8 * 120_000)]


def bench_transfer(batch_size: int, steps: int, device: str = "cpu", size: tuple[int, int] = (375, 500),
                   quick: bool = False) -> list[dict]:
    """Training images/s of each detector's step (the configs' options: Faster R-CNN at a shorter side of 600 with
    128 RoIs per image, SSD at 300²) on VOC-sized images (500×375, 1–3 objects), beside ResNet-50's ImageNet
    classification step (224², the trainer's model) on the same device: the ratio projects Table 10's GPU time
    from ResNet-50's measured GPU throughput."""
    from ..config import build, compose
    from ..transfer.detection import build_detector

    dev = torch.device(device)
    torch.manual_seed(0)
    images = [torch.rand(3, *size, device=dev) for _ in range(batch_size)]
    targets = [{"boxes": torch.tensor([[40.0, 30, 300, 250], [200, 100, 480, 360]][: 1 + i % 2], device=dev),
                "labels": torch.tensor([12, 15][: 1 + i % 2], device=dev)} for i in range(batch_size)]
    options = {"faster_rcnn_c4": {"box_batch_size_per_image": 128}, "faster_rcnn_fpn": {}, "ssd300_r50": {}}
    if quick:  # checks the code runs: small images, few RoIs
        small = {"min_size": 96, "max_size": 128, "rpn_post_nms_top_n_train": 50, "box_batch_size_per_image": 8}
        options = {"faster_rcnn_c4": small, "faster_rcnn_fpn": small, "ssd300_r50": {}}
    recipes = [r for r in TRANSFER_RECIPES if not quick or r[1] == "faster_rcnn_c4"]  # quick: checks the code runs
    side = 64 if quick else 224
    rows = []

    def timed(step) -> float:
        step()  # warm-up
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        started = time.perf_counter()
        for _ in range(steps):
            step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        return (time.perf_counter() - started) / steps

    def classification_images_per_s() -> float:
        classifier = build(compose(["+experiment=imagenet_resnet50"]).model, "model", num_classes=1000).to(dev).train()
        optimizer = torch.optim.SGD(classifier.parameters(), lr=0.01, momentum=0.9)
        x = torch.randn(batch_size * 4, 3, side, side, device=dev)
        y = torch.randint(1000, (batch_size * 4,), device=dev)

        def classify():
            loss = F.cross_entropy(classifier(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        return batch_size * 4 / timed(classify)

    resnet_ips = classification_images_per_s()
    for task, name, images_total in recipes:
        model = build_detector(name, None, **options[name]).to(dev).train()
        opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4, momentum=0.9)

        def step(m=model, o=opt):
            loss = sum(m(images, targets).values())
            o.zero_grad(set_to_none=True)
            loss.backward()
            o.step()

        ips = batch_size / timed(step)
        rows.append({"task": task, "model": name, "device": device, "batch_size": batch_size, "images_per_s": ips,
                     "resnet50_images_per_s": resnet_ips, "over_resnet50": ips / resnet_ips,
                     "paper_images": images_total})
        del model, opt
    return rows


def bench_voc_plus_one(images: int = 2000, seed: int = 0) -> dict:
    """What the devkit's +1 pixel changes in VOC07 mAP: VOC-sized ground truths (20–400 px) and detections
    jittered around them (σ = 15% of the box size) or placed anywhere, scored both ways."""
    from ..evaluation.voc_ap import ImageDetections, voc07_map

    rng = np.random.default_rng(seed)
    found = []
    for _ in range(images):
        n = int(rng.integers(1, 4))
        wh = rng.uniform(20, 400, (n, 2))
        xy = rng.uniform(0, 500 - wh.min(), (n, 2)) % (500 - wh)
        gt = np.concatenate([xy, xy + wh], 1).round()
        labels = rng.integers(1, 21, n)
        boxes, scores, det_labels = [], [], []
        for box, label in zip(gt, labels):
            size = np.r_[box[2:] - box[:2], box[2:] - box[:2]]
            for _ in range(int(rng.integers(1, 3))):
                boxes.append(box + rng.normal(0, 0.15, 4) * size)
                scores.append(rng.uniform(0.3, 1.0))
                det_labels.append(label)
        for _ in range(int(rng.integers(0, 3))):
            x, y = rng.uniform(0, 400, 2)
            boxes.append([x, y, x + rng.uniform(20, 100), y + rng.uniform(20, 100)])
            scores.append(rng.uniform(0, 0.8))
            det_labels.append(int(rng.integers(1, 21)))
        found.append(ImageDetections(np.array(boxes), np.array(scores), np.array(det_labels), gt, labels,
                                     np.zeros(n, bool)))
    names = [str(i) for i in range(1, 21)]
    without, with_one = voc07_map(found, names)["map"], voc07_map(found, names, plus_one=True)["map"]
    return {"images": images, "map": without, "map_plus_one": with_one, "difference": with_one - without}
