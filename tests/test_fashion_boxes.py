"""Real objects with exact boxes (``dataset=fashion_mnist_boxes``): each box is the tight box of its object's own
pixels, the object is the photograph resized, the same seed gives the same canvases, bad parameters are one line,
the test batches carry the boxes the localization code scores; and, where Debian's package is installed, the same
on the real photographs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import FAST, results, train_main
from test_fashion_mnist import fake_splits, needs_debian_package, write_files

from cutmix_repro.config import compose
from cutmix_repro.data import fashion_mnist_boxes
from cutmix_repro.data.fashion_boxes import place_on_canvas


def objects(n: int = 64, seed: int = 0) -> torch.Tensor:
    """Garment-like objects: a bright shape of random extent (rows and columns) on black, as Fashion-MNIST's."""
    g = torch.Generator().manual_seed(seed)
    out = torch.zeros(n, 1, 28, 28, dtype=torch.uint8)
    for i in range(n):
        top, left = torch.randint(0, 10, (2,), generator=g).tolist()
        bottom, right = torch.randint(18, 29, (2,), generator=g).tolist()
        out[i, 0, top:bottom, left:right] = torch.randint(40, 256, (bottom - top, right - left), generator=g,
                                                          dtype=torch.uint8)
    return out


def boxes_of_nonzero(images: torch.Tensor) -> torch.Tensor:
    rows, cols = images[:, 0].amax(2) > 0, images[:, 0].amax(1) > 0
    first = lambda m: m.float().argmax(1)  # noqa: E731
    last = lambda m: m.shape[1] - m.flip(1).float().argmax(1)  # noqa: E731
    return torch.stack([first(cols), first(rows), last(cols), last(rows)], 1).float()


def canvases(background: str, seed: int, objs=None, canvas: int = 48, scale=(0.6, 1.0)):
    return place_on_canvas(objects() if objs is None else objs, canvas, *scale, background, 64,
                           torch.Generator().manual_seed(seed))


def test_each_box_is_the_tight_box_of_its_objects_own_pixels_on_either_background():
    plain, boxes = canvases("plain", 3)
    assert torch.equal(boxes[:, 0], boxes_of_nonzero(plain)), "on black, the non-black pixels are the object's"
    noise, same_boxes = canvases("noise", 3)
    assert torch.equal(boxes, same_boxes), "the background does not move the objects"
    own = plain > 0
    assert torch.equal(noise[own], plain[own]), "the object's pixels replace the noise"
    assert int(noise[~own].max()) <= 64 and float((noise[~own] > 0).float().mean()) > 0.9  # noise elsewhere
    sides = boxes[:, 0, 2:] - boxes[:, 0, :2]
    assert int(sides.min()) >= 1 and int(sides.max()) <= 28 and int(boxes.max()) <= 48 and int(boxes.min()) >= 0


def test_the_object_is_the_photograph_resized_to_a_side_in_the_scale_range():
    full = torch.randint(1, 256, (40, 1, 28, 28), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    images, boxes = canvases("noise", 5, full, canvas=40, scale=(0.5, 1.25))  # every pixel its own: box = square
    sides = set()
    for i, (image, box) in enumerate(zip(images, boxes[:, 0].long().tolist())):
        x1, y1, x2, y2 = box
        assert y2 - y1 == x2 - x1 and 14 <= x2 - x1 <= 35
        sides.add(x2 - x1)
        expected = F.interpolate(full[i:i + 1].float(), size=(y2 - y1, x2 - x1), mode="bilinear", align_corners=False,
                                 antialias=True).round().clamp(0, 255).to(torch.uint8)[0]
        assert torch.equal(image[:, y1:y2, x1:x2], expected), i
    assert len(sides) > 5, "sides drawn over the range"


def test_the_same_seed_gives_the_same_canvases_and_another_seed_others():
    a, b, c = canvases("noise", 7), canvases("noise", 7), canvases("noise", 8)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1]) and not torch.equal(a[0], c[0])


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory):
    return write_files(tmp_path_factory.mktemp("fm") / "FashionMNIST" / "raw", fake_splits(), gz=False).parents[1]


@pytest.mark.parametrize("override, needle", [
    ("dataset.canvas=20", "dataset.canvas=20: a side in pixels of at least scale_max·28 = 28"),
    ("dataset.scale_min=1.2", "dataset.scale_min=1.2: 0 < scale_min <= scale_max"),
    ("dataset.background=texture", "dataset.background='texture': noise"),
    ("dataset.background_level=300", "dataset.background_level=300: an 8-bit level"),
    ("dataset.test_subset=15", "dataset.test_subset=15: a multiple of 10")])
def test_bad_parameters_are_one_line_and_write_nothing(override, needle, fake_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, err = train_main(["+experiment=fashion_mnist_localization", f"dataset.root={fake_root}", override,
                              "trainer.epochs=1", *FAST, f"hydra.run.dir={tmp_path / 'run'}"], monkeypatch)
    assert status == 2 and len(err.strip().splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "run").exists()


def test_test_batches_carry_the_boxes_and_a_run_scores_its_cams_every_epoch(fake_root, tmp_path, monkeypatch):
    cfg = compose(["dataset=fashion_mnist_boxes", f"dataset.root={fake_root}", "dataset.system_dir=null",
                   "dataset.train_subset=100", "dataset.test_subset=50"])
    options = {k: v for k, v in cfg.dataset.items() if k != "_target_"}
    bundle = fashion_mnist_boxes(**options, batch_size=16)
    assert bundle.name == "fashion_mnist_boxes" and bundle.in_chans == 1 and bundle.num_classes == 10
    images, targets, boxes = next(iter(bundle.val))
    assert images.shape[1:] == (1, 48, 48) and boxes.shape[1:] == (1, 4) and len(targets) == len(boxes)
    assert torch.bincount(bundle.val.targets).tolist() == [5] * 10, "a class-balanced test subset"
    monkeypatch.chdir(tmp_path)
    status, err = train_main(["+experiment=fashion_mnist_localization", f"dataset.root={fake_root}",
                              "dataset.system_dir=null", "dataset.train_subset=100", "dataset.test_subset=50",
                              "model.depth=8", "trainer.epochs=2", "trainer.batch_size=32", *FAST,
                              "trainer.channels_last=false", "trainer.tb_cams_every=0", "trainer.tb_mixed_batch=false",
                              f"hydra.run.dir={tmp_path / 'run'}"], monkeypatch)
    assert status == 0, err
    res = results(tmp_path / "run")
    assert res["dataset"] == "fashion_mnist_boxes" and [h["epoch"] for h in res["history"]] == [1, 2]
    for field in ("val_top1_loc", "val_gt_known_loc", "val_max_box_acc_v2"):
        assert all(0.0 <= h[field] <= 100.0 for h in res["history"]), field
    assert 0.0 <= res["last_top1_loc"] <= 100.0


def test_the_real_photographs_on_canvases():
    folder = needs_debian_package()
    cfg = compose(["dataset=fashion_mnist_boxes", "dataset.root=nowhere", f"dataset.system_dir={folder}",
                   "dataset.train_subset=100", "dataset.test_subset=200", "dataset.background=plain"])
    options = {k: v for k, v in cfg.dataset.items() if k != "_target_"}
    plain = fashion_mnist_boxes(**options, batch_size=16)
    assert torch.equal(plain.val.boxes[:, 0].cpu(), boxes_of_nonzero(plain.val.images.cpu()))
    noise = fashion_mnist_boxes(**{**options, "background": "noise"}, batch_size=16)
    assert torch.equal(noise.val.boxes, plain.val.boxes)
    area = ((plain.val.boxes[:, 0, 2:] - plain.val.boxes[:, 0, :2]).prod(1) / 48**2)
    assert float(area.max()) <= 28**2 / 48**2 + 1e-6 and float(area.mean()) > 0.05, "real objects, a third at most"
