"""The later mixers (issue: beyond the paper), each on the property that defines it: FMix's exact pixel share
and low-frequency mask, ResizeMix's area λ with the whole partner image in its box, SaliencyMix's box centred on
the partner's saliency peak; each in batch and per-sample modes, and each training through the one trainer with
label smoothing."""

import math
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import TINY_MODEL, fit_run, needs, needs_opencv_saliency

from cutmix_repro.errors import ConfigError
from cutmix_repro.regularizers import FMix, ResizeMix, SaliencyMix
from cutmix_repro.regularizers.fmix import binary_mask, frequencies, low_frequency_image


def numbered(n: int, h: int = 32, w: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Image i is filled with the value i (so every output pixel names its source image)."""
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 3, h, w).clone()
    return x, torch.arange(n)


# FMix ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(32, 32), (24, 40)])
def test_fmix_masks_hold_exactly_the_lambda_share_of_pixels(shape):
    h, w = shape
    for lam in (0.0, 0.13, 0.5, 0.77, 1.0):
        for _ in range(4):
            mask = binary_mask(low_frequency_image(h, w, 3.0), lam)
            count = int(mask.sum())
            assert count in (math.floor(lam * h * w), math.ceil(lam * h * w))
            assert set(mask.unique().tolist()) <= {0.0, 1.0}


def test_fmix_masks_are_low_frequency_blobs_not_noise():
    torch.manual_seed(1)
    # neighbouring pixels rarely differ: a random mask of the same share differs on ~half its neighbours
    changes = [float((m[:, 1:] != m[:, :-1]).float().mean()) for m in
               (binary_mask(low_frequency_image(32, 32, 3.0), 0.5) for _ in range(20))]
    assert max(changes) < 0.2 and np.mean(changes) < 0.1
    # the spectrum's amplitude falls as 1 / f^δ: δ = 3 as the paper, with |f| ≥ 1/max(H, W)
    freqs = frequencies(32, 32)
    assert freqs.shape == (32, 17) and freqs[0, 0] == 0 and freqs[0, 16] == pytest.approx(0.5)


def restated_authors_mask(decay: float, shape: tuple[int, int], param: np.ndarray, num: int) -> np.ndarray:
    """ecs-vlc/FMix ``fmix.py`` restated in numpy: ``fftfreqnd``, ``get_spectrum`` (its ``np.random.randn`` draws
    given as ``param``, shape (1, H, F, 2)), ``make_low_freq_image`` and ``binarise_mask`` (``max_soft=0``), its
    ceil/floor coin's outcome given as the count ``num``."""
    h, w = shape
    fy = np.expand_dims(np.fft.fftfreq(h), -1)
    fx = np.fft.fftfreq(w)[: w // 2 + 2] if w % 2 == 1 else np.fft.fftfreq(w)[: w // 2 + 1]
    freqs = np.sqrt(fx * fx + fy * fy)
    scale = np.ones(1) / (np.maximum(freqs, np.array([1. / max(w, h, 0)])) ** decay)
    spectrum = np.expand_dims(scale, -1)[None, :] * param
    spectrum = spectrum[:, 0] + 1j * spectrum[:, 1]
    mask = np.real(np.fft.irfftn(spectrum, shape))[:1, :h, :w]
    mask = mask - mask.min()
    mask = mask / mask.max()
    idx = mask.reshape(-1).argsort()[::-1]
    mask = mask.reshape(-1)
    mask[idx[:num]] = 1
    mask[idx[num:]] = 0
    return mask.reshape((1, *shape))[0]


@pytest.mark.parametrize("shape", [(32, 32), (24, 40), (31, 33)])
def test_fmix_authors_spectrum_draws_the_authors_masks_from_the_same_gaussian_draws(shape):
    from cutmix_repro.regularizers.fmix import authors_low_frequency_image, authors_noise_shape

    h, w = shape
    rng = np.random.default_rng(sum(shape))
    for lam in (0.25, 0.5, 0.75):
        for _ in range(5):
            param = rng.standard_normal((1, *authors_noise_shape(h, w)))
            image = authors_low_frequency_image(h, w, 3.0, noise=torch.from_numpy(param[0]))
            ours = binary_mask(image, lam).numpy()
            count = int(ours.sum())
            assert count in (math.floor(lam * h * w), math.ceil(lam * h * w))
            assert (ours == restated_authors_mask(3.0, shape, param, count)).all()


def test_fmix_authors_masks_hold_horizontal_frequencies_0_and_1_only_and_are_the_default():
    from cutmix_repro.config import build, compose

    torch.manual_seed(0)
    authors, isotropic = FMix(spectrum="authors"), FMix(spectrum="isotropic")
    for _ in range(5):
        coefficients = torch.fft.rfft2(authors.low_frequency_image(32, 32)).abs()
        assert float(coefficients[:, 2:].max()) < 1e-9 * float(coefficients.max())
        coefficients = torch.fft.rfft2(isotropic.low_frequency_image(32, 32)).abs()
        assert float(coefficients[:, 2:].max()) > 1e-3 * float(coefficients.max())
    assert FMix().spectrum == "authors"
    assert build(compose(["regularizer=fmix"]).regularizer, "regularizer").spectrum == "authors"
    with pytest.raises(ConfigError, match="spectrum='paper' is invalid: authors .* or isotropic"):
        FMix(spectrum="paper")


@pytest.mark.parametrize("mode", ["batch", "elem"])
def test_fmix_mixes_pixels_through_the_mask_and_weighs_labels_by_its_share(mode):
    x, y = numbered(6)
    out = FMix(alpha=1.0, mode=mode)(x, y)
    lam = torch.as_tensor(out.lam, dtype=torch.float64).expand(6)
    for i in range(6):
        own = (out.inputs[i] == i).all(0)
        partner = (out.inputs[i] == int(out.targets_b[i])).all(0)
        assert bool((own | partner).all())  # every pixel is the image's or its partner's
        if int(out.targets_b[i]) != i:
            assert float(own.double().mean()) == pytest.approx(float(lam[i]), abs=1e-12)
    if mode == "batch":  # one mask for the batch
        masks = [(out.inputs[i] == i).all(0) for i in range(6) if int(out.targets_b[i]) != i]
        assert all(torch.equal(masks[0], m) for m in masks)


# ResizeMix -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["batch", "elem"])
def test_resizemix_pastes_the_whole_partner_resized_and_lambda_is_the_area_left(mode):
    torch.manual_seed(3)
    n, h, w = 5, 32, 40
    x = torch.rand(n, 3, h, w)
    y = torch.arange(n)
    sides = []
    for _ in range(12):
        out = ResizeMix(mode=mode)(x, y)
        lam = torch.as_tensor(out.lam, dtype=torch.float64).expand(n)
        for i in range(n):
            changed = (out.inputs[i] != x[i]).any(0)
            if not changed.any():
                continue
            rows, cols = changed.any(1).nonzero(), changed.any(0).nonzero()
            y1, y2, x1, x2 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
            j = int(out.targets_b[i])
            whole = F.interpolate(x[j:j + 1], size=(y2 - y1, x2 - x1), mode="bilinear", align_corners=False)[0]
            assert torch.allclose(out.inputs[i, :, y1:y2, x1:x2], whole, atol=1e-6)  # all of the partner, shrunk
            assert float(lam[i]) == pytest.approx(1 - (y2 - y1) * (x2 - x1) / (h * w))
            sides.append((y2 - y1) / h)
    assert 0.1 - 1 / h <= min(sides) < 0.25 and 0.65 < max(sides) <= 0.8 + 1 / h  # τ ~ U(0.1, 0.8)


def test_resizemix_puts_the_box_corner_uniformly_on_every_place_it_fits():
    """τ = 0.7 on 10×10 images: a 7×7 box fits at corners 0…3 on each axis; each is drawn a quarter of the time
    (the last place included)."""
    mixer = ResizeMix(tau_min=0.7, tau_max=0.7)
    x = torch.arange(1.0, 5.0).view(4, 1, 1, 1).expand(4, 3, 10, 10).contiguous()  # image k is all k + 1
    counts = torch.zeros(2, 4)
    torch.manual_seed(0)
    draws = 800
    while counts[0].sum() < draws:
        out = mixer(x.clone(), torch.arange(4))
        changed = out.inputs[0, 0] != x[0, 0]
        if not changed.any():  # the partner was the image itself: the box cannot be seen
            continue
        rows, cols = changed.any(1).nonzero()[:, 0], changed.any(0).nonzero()[:, 0]
        assert (len(rows), len(cols)) == (7, 7)
        counts[0, int(rows[0])] += 1
        counts[1, int(cols[0])] += 1
    expected = draws / 4  # binomial sd ≈ 12: every count within ±6 sd
    assert (counts - expected).abs().max() < 75, counts


def test_resizemix_refuses_scales_outside_0_1():
    with pytest.raises(ConfigError, match="tau_min"):
        ResizeMix(tau_min=0.5, tau_max=0.2)


# SaliencyMix -----------------------------------------------------------------------------------------------
def brightest(image: torch.Tensor) -> np.ndarray:
    """A constructed saliency: the image's own brightness (its peak is where the image is brightest)."""
    return image.mean(0).numpy()


@pytest.mark.parametrize("mode", ["batch", "elem"])
def test_saliencymix_centres_the_box_on_the_partners_saliency_peak(mode):
    torch.manual_seed(5)
    n, h, w = 6, 32, 32
    peaks = [(4, 27), (16, 16), (30, 2), (9, 9), (25, 20), (0, 31)]
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 3, h, w).clone()  # image i: value i
    for i, (r, c) in enumerate(peaks):
        x[i, :, r, c] = 100.0 + i  # and one bright pixel, its saliency peak
    mixer = SaliencyMix(alpha=1.0, mode=mode, saliency=brightest)
    boxes = 0
    for _ in range(6):
        out = mixer(x, torch.arange(n))
        lam = torch.as_tensor(out.lam, dtype=torch.float64).expand(n)
        for i in range(n):
            j = int(out.targets_b[i])
            pasted = (out.inputs[i] != x[i]).any(0)
            if j == i or not pasted.any():
                continue
            r, c = peaks[j if mode == "elem" else int(out.targets_b[0])]  # batch mode: the first partner's peak
            rows, cols = pasted.any(1).nonzero(), pasted.any(0).nonzero()
            y1, y2, x1, x2 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
            assert bool(pasted[y1:y2, x1:x2].all()) and int(pasted.sum()) == (y2 - y1) * (x2 - x1)  # one box
            assert torch.equal(out.inputs[i, :, y1:y2, x1:x2], x[j, :, y1:y2, x1:x2])  # the partner's pixels
            assert y1 <= r < y2 and x1 <= c < x2  # around the peak ...
            if 0 < y1 and y2 < h:
                assert r - y1 == y2 - r  # ... centred on it where not clipped
            if 0 < x1 and x2 < w:
                assert c - x1 == x2 - c
            assert float(lam[i]) == pytest.approx(1 - (y2 - y1) * (x2 - x1) / (h * w))
            boxes += 1
    assert boxes > 10


def test_saliencymix_box_corners_are_the_authors_clip_of_a_box_around_the_peak():
    from cutmix_repro.regularizers.cutmix import box_sides

    saliency = np.zeros((32, 32))
    saliency[3, 29] = 1.0  # near the top-right corner: the box is clipped there
    mixer = SaliencyMix(saliency=lambda image: saliency)
    for lam in (0.2, 0.5, 0.9):
        cut_h, cut_w = box_sides(lam, 32, 32)
        assert mixer.box(torch.zeros(3, 32, 32), lam) == (max(3 - cut_h // 2, 0), min(3 + cut_h // 2, 32),
                                                         max(29 - cut_w // 2, 0), min(29 + cut_w // 2, 32))


def test_saliencymix_authors_map_is_truncated_to_uint8_so_its_peak_is_the_first_of_a_truncated_tie(monkeypatch):
    """The authors' ``(saliencyMap * 255).astype("uint8")`` truncates: 128.4 and 128.6 (of 255) both become 128,
    so the first of them in raster order is the peak; rounding would make the second (129) the peak."""
    from cutmix_repro.regularizers import saliencymix

    saliency = np.zeros((16, 16), dtype=np.float32)
    saliency[2, 3], saliency[9, 12], saliency[15, 15] = 128.4 / 255, 128.6 / 255, 0.9999

    class Detector:
        def computeSaliency(self, image):  # noqa: N802 (OpenCV's name)
            assert image.shape == (16, 16, 3) and image.dtype == np.float32  # the tensor as it is, HWC
            return True, saliency.copy()

    monkeypatch.setattr(saliencymix, "fine_grained_detector", Detector)
    mapped = saliencymix.authors_saliency(torch.zeros(3, 16, 16))
    assert mapped.dtype == np.uint8 and (mapped[2, 3], mapped[9, 12], mapped[15, 15]) == (128, 128, 254)
    saliency[15, 15] = 0.0  # the peak among the two truncated to 128: the first
    mixer = SaliencyMix(saliency_input="authors")
    y1, y2, x1, x2 = mixer.box(torch.zeros(3, 16, 16), 0.75)  # an 8×8 box around the peak
    assert (y1, y2, x1, x2) == (0, 6, 0, 7)  # centred on (2, 3), clipped at the top and left


def test_saliencymix_without_opencvs_saliency_module_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # as if OpenCV (or its contrib build) were not installed
    for saliency_input in ("authors", "pixels"):
        with pytest.raises(ConfigError, match="opencv-contrib-python-headless"):
            SaliencyMix(saliency_input=saliency_input)(torch.rand(2, 3, 16, 16), torch.arange(2))
    with pytest.raises(ConfigError, match="saliency_input='raw' is invalid: authors .* or pixels"):
        SaliencyMix(saliency_input="raw")


def restated_saliency_bbox(img: torch.Tensor, lam: float):
    """The authors' ``saliency_bbox`` (afm-shahab-uddin/SaliencyMix, SaliencyMix_CIFAR/saliencymix.py), restated:
    its W is the rows, its H the columns, its x the peak's row."""
    import cv2

    size = img.size()
    W, H = size[1], size[2]
    cut_rat = np.sqrt(1.0 - lam)
    cut_w, cut_h = int(W * cut_rat), int(H * cut_rat)
    temp_img = img.cpu().numpy().transpose(1, 2, 0)
    saliency = cv2.saliency.StaticSaliencyFineGrained_create()
    (success, saliency_map) = saliency.computeSaliency(temp_img)
    saliency_map = (saliency_map * 255).astype("uint8")
    x, y = np.unravel_index(np.argmax(saliency_map, axis=None), saliency_map.shape)
    return (np.clip(x - cut_w // 2, 0, W), np.clip(y - cut_h // 2, 0, H), np.clip(x + cut_w // 2, 0, W),
            np.clip(y + cut_h // 2, 0, H))


def normalised_batch(n: int, size=(32, 32), seed: int = 0) -> torch.Tensor:
    """CIFAR-like images normalised as the authors' CIFAR code: blobs on flat backgrounds and smooth noise."""
    from cutmix_repro.bench.saliency import AUTHORS_CIFAR_MEAN, AUTHORS_CIFAR_STD, blob_images, smooth_images

    pixels = torch.cat([blob_images(n // 2, size[0], seed)[0], smooth_images(n - n // 2, size[0], seed)])
    pixels = F.interpolate(pixels.float(), size=size, mode="bilinear").round()
    return (pixels / 255 - AUTHORS_CIFAR_MEAN) / AUTHORS_CIFAR_STD


@pytest.mark.parametrize("size", [(32, 32), (24, 40)])
def test_saliencymix_authors_box_equals_their_saliency_bbox_with_opencvs_detector(size):
    needs_opencv_saliency()
    import cv2

    from cutmix_repro.regularizers.saliencymix import authors_saliency

    images = normalised_batch(24, size)
    mixer = SaliencyMix()  # saliency_input=authors, the default
    assert mixer.saliency_input == "authors"
    _, float_map = cv2.saliency.StaticSaliencyFineGrained_create().computeSaliency(images[0].numpy().transpose(1, 2, 0))
    quantised = authors_saliency(images[0])  # their map: × 255, truncated to uint8, before the first maximum
    assert quantised.dtype == np.uint8 and np.array_equal(quantised, (float_map * 255).astype("uint8"))
    for image in images:
        for lam in (0.1, 0.45, 0.8):
            bbx1, bby1, bbx2, bby2 = restated_saliency_bbox(image, lam)
            assert mixer.box(image, lam) == (bbx1, bbx2, bby1, bby2)
    # through the mixer: the first partner's box for the whole batch, λ from the pasted area
    torch.manual_seed(3)
    out = mixer(images.clone(), torch.arange(len(images)))
    torch.manual_seed(3)
    lam, perm = float(mixer.beta()), torch.randperm(len(images))
    bbx1, bby1, bbx2, bby2 = restated_saliency_bbox(images[perm[0]], lam)
    expected = images.clone()
    expected[:, :, bbx1:bbx2, bby1:bby2] = images[perm, :, bbx1:bbx2, bby1:bby2]
    assert torch.equal(out.inputs, expected) and torch.equal(out.targets_b, perm)
    assert out.lam == pytest.approx(1 - (bbx2 - bbx1) * (bby2 - bby1) / (size[0] * size[1]))


def test_saliencymix_pixels_peak_lands_on_the_object_far_more_often_than_chance():
    """With OpenCV's real detector on constructed single-blob images: the 8-bit input finds the blob far more
    often than a random pixel, and (the issue's measurement) far more often than the authors' input does."""
    needs_opencv_saliency()
    from cutmix_repro.bench.saliency import bench_saliency

    result = bench_saliency(100)
    rate = {row["input"]: row["rate"] for row in result["blobs"]}
    assert rate["pixels"] >= 3 * max(rate["random"], 0.03) and rate["pixels"] >= 2 * rate["authors"], rate


# through the trainer ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("regularizer", ["resizemix", "fmix", "saliencymix"])
def test_each_later_mixer_trains_through_the_one_trainer_with_label_smoothing(regularizer, tmp_path):
    overrides = ["dataset=synthetic", "dataset.train_size=32", "dataset.test_size=16", "dataset.image_size=16",
                 *TINY_MODEL, f"regularizer={regularizer}", "regularizer.mode=elem", "label_smoothing=0.1",
                 "trainer.epochs=1", "trainer.batch_size=16"]
    if regularizer == "saliencymix":
        cv2 = needs("cv2", "opencv-contrib-python-headless")

        if not hasattr(cv2, "saliency"):
            overrides.append("+regularizer.saliency._target_=test_later_mixers.saliency_factory")
    result = fit_run(overrides, tmp_path / "run")
    name = {"resizemix": "ResizeMix", "fmix": "FMix", "saliencymix": "SaliencyMix"}[regularizer]
    assert result["status"] == "finished" and result["regularizer_target"] == f"cutmix_repro.regularizers.{name}"
    assert result["label_smoothing"] == 0.1 and math.isfinite(result["history"][0]["train_loss"])


def saliency_factory():
    return brightest


# the comparison table ----------------------------------------------------------------------------------------
def test_the_beyond_mixers_table_sets_ours_beside_table5_and_says_where_no_number_exists(tmp_path, capsys):
    from test_report import fake_result, write_runs

    from cutmix_repro.paper import load_tables, row_overrides
    from cutmix_repro.report import generate
    from cutmix_repro.reproduce import main

    table = load_tables()["beyond_mixers"]
    rows = {row["label"].split(" (")[0]: row for row in table["rows"]}
    assert [r["top1"] for r in table["rows"][:4]] == [16.45, 15.63, 16.53, 14.47]  # Table 5's rows
    assert all("top1" not in rows[m] and rows[m]["published"] for m in ("ResizeMix", "FMix", "SaliencyMix"))
    write_runs(tmp_path / "runs", [fake_result(row_overrides(table, rows["ResizeMix"]), 14.9 + s / 10, 15.2, seed=s)
                                   for s in range(3)] + [fake_result(row_overrides(table, rows["CutMix"]), 14.6, 14.8)])
    generate([str(tmp_path / "runs")], tmp_path / "out", figures=False)
    text = (tmp_path / "out" / "beyond_mixers.md").read_text()
    resize = next(line for line in text.splitlines() if line.startswith("| ResizeMix")).split(" | ")
    assert resize[1:5] == ["—", "15.00 ± 0.10 (n=3)", "15.20", "—"]  # no paper number, so no difference either
    cutmix = next(line for line in text.splitlines() if line.startswith("| CutMix")).split(" | ")
    assert cutmix[1:5] == ["14.47", "14.60 (n=1)", "14.80", "+0.13"]
    assert "FMix (Harris et al., 2020): none recorded here" in text and "not comparable" in text
    assert main(["beyond_mixers", "--dry-run"]) == 0
    commands = [line for line in capsys.readouterr().out.splitlines() if "cutmix_repro.train" in line]
    assert len(commands) == 8 and all("+experiment=cifar100_pyramidnet" in c and "seed=0,1,2" in c for c in commands)
    assert sum(f"regularizer={m} " in c for c in commands for m in ("resizemix", "fmix", "saliencymix")) == 4
    # SaliencyMix twice: the authors' saliency input (the default) and 8-bit pixels, to ask if saliency helps
    assert sum("regularizer.saliency_input=pixels" in c for c in commands) == 1
    labels = [row["label"] for row in table["rows"]]
    assert "SaliencyMix (authors' code)" in labels and "SaliencyMix (8-bit saliency)" in labels


def test_the_saliency_measurement_reads_cub_images_with_their_boxes(tmp_path):
    """``bench --saliency-cub ROOT``: CUB-format test images (written here with a bright bird-sized disc in each
    box on a dark noisy ground) are scored by whether the peak falls inside the box."""
    needs_opencv_saliency()
    from fakedata import write_cub
    from PIL import Image, ImageDraw

    from cutmix_repro.bench.saliency import cub_hits
    from cutmix_repro.data.wsol import read_cub

    root = write_cub(tmp_path)
    rng = np.random.default_rng(0)
    for path, _, box, (width, height) in read_cub(root)[2]:
        x1, y1, x2, y2 = box[0].tolist()
        image = Image.fromarray(rng.integers(0, 40, (height, width, 3), dtype=np.uint8))
        ImageDraw.Draw(image).ellipse([x1 + 1, y1 + 1, x2 - 2, y2 - 2], fill=(230, 210, 90))
        image.save(path)
    rows = {row["input"]: row for row in cub_hits(str(root))}
    assert rows["pixels"]["images"] == 6 and rows["pixels"]["on_object"] >= 5
    assert set(rows) == {"authors", "pixels", "random"}


# Mixup or CutMix per batch (today's recipes; not the paper's) ----------------------------------------------------
def mixup_cutmix(**overrides):
    from cutmix_repro.config import build, compose

    return build(compose(["regularizer=mixup_cutmix", *[f"regularizer.{k}={v}" for k, v in overrides.items()]])
                 .regularizer, "regularizer")


@pytest.mark.parametrize("switch_draw, centre", [(0.1, (3, 11)), (0.1, (7, 6)), (0.9, None)])
def test_mixup_cutmix_equals_timms_mixup_in_batch_mode_on_the_same_draws(switch_draw, centre, monkeypatch):
    """timm's ``Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=0.5)`` and ``regularizer=mixup_cutmix`` handed
    the same draws (mix or not, CutMix or Mixup, λ, the box centre; timm's partner of image i is image n−1−i):
    the same images, and the loss on timm's soft targets equals ours. Odd image sides, so the box's odd sides
    (timm keeps every pixel of them) and a box clipped at the border are both checked."""
    from timm.data.mixup import Mixup as TimmMixup
    from timm.loss import SoftTargetCrossEntropy

    from cutmix_repro.regularizers import mixed_cross_entropy
    from cutmix_repro.regularizers import mixup_cutmix as module

    n, classes, lam = 8, 10, 0.37
    torch.manual_seed(0)
    x, y = torch.randn(n, 3, 15, 13), torch.randint(0, classes, (n,))
    uniform = iter([0.0, switch_draw])  # timm: mix at all (< prob), then CutMix if < switch_prob
    monkeypatch.setattr(np.random, "rand", lambda *a: next(uniform))
    monkeypatch.setattr(np.random, "beta", lambda *a: lam)
    centres = iter(centre or ())
    monkeypatch.setattr(np.random, "randint", lambda *a, **k: next(centres))
    theirs = TimmMixup(mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=0.5, prob=1.0, mode="batch",
                       label_smoothing=0.0, num_classes=classes)
    their_x, their_target = theirs(x.clone(), y)

    ours = mixup_cutmix()
    monkeypatch.setattr(module, "bernoulli", lambda p: p >= 1.0 or switch_draw < p)  # the same uniform draws
    for mixer in (ours.mixup, ours.cutmix):
        monkeypatch.setattr(mixer, "beta", lambda *a, **k: torch.tensor(lam))
    monkeypatch.setattr(ours.cutmix, "_center", lambda height, width: centre)
    monkeypatch.setattr(torch, "randperm", lambda k, device=None: torch.arange(k - 1, -1, -1, device=device))
    out = ours(x.clone(), y)
    assert torch.equal(out.inputs, their_x)
    our_target = out.lam * F.one_hot(out.targets_a, classes) + (1 - out.lam) * F.one_hot(out.targets_b, classes)
    torch.testing.assert_close(our_target.float(), their_target, rtol=0, atol=1e-6)
    logits = torch.randn(n, classes)
    torch.testing.assert_close(mixed_cross_entropy(logits, out), SoftTargetCrossEntropy()(logits, their_target))
    if centre is not None:  # the box really cut (an odd side), as timm's, not the authors' one pixel short
        pasted = (out.inputs[0] != x[0]).any(0)
        rows, cols = pasted.any(1).nonzero(), pasted.any(0).nonzero()
        assert int(rows.max() - rows.min() + 1) * int(cols.max() - cols.min() + 1) == round((1 - out.lam) * 15 * 13)


def test_mixup_cutmix_per_sample_each_image_is_left_blended_or_cut_with_its_own_partner():
    ours = mixup_cutmix(mode="elem", prob=0.7)
    n = 64
    torch.manual_seed(1)
    x, y = torch.rand(n, 3, 16, 16), torch.arange(n)
    out = ours(x, y)
    kinds = set()
    for i in range(n):
        j, lam = int(out.targets_b[i]), float(out.lam[i])
        changed = (out.inputs[i] != x[i]).any(0)
        if lam == 1.0:
            assert j == i or torch.equal(out.inputs[i], x[i]) or not changed.any()
            kinds.add("left")
        elif torch.allclose(out.inputs[i], lam * x[i] + (1 - lam) * x[j], atol=1e-6):
            kinds.add("blended")
        else:  # a box of the partner's pixels, λ the area left
            assert torch.equal(out.inputs[i][:, changed], x[j][:, changed])
            assert lam == pytest.approx(1 - float(changed.sum()) / 256, abs=1 / 256 + 1e-9) or j == i
            kinds.add("cut")
    assert kinds == {"left", "blended", "cut"}


def test_mixup_cutmix_trains_through_the_trainer_and_fuses(tmp_path):
    from cutmix_repro.config import compose
    from cutmix_repro.fusion.groups import fusion_groups

    res = fit_run(["dataset=synthetic", "dataset.train_size=32", "dataset.test_size=16", "dataset.image_size=16",
                   *TINY_MODEL, "regularizer=mixup_cutmix", "trainer.epochs=1", "trainer.batch_size=16"],
                  tmp_path / "run")
    assert res["status"] == "finished" and res["regularizer_params"]["switch_prob"] == 0.5
    base = ["dataset=synthetic", "model=cifar_resnet", "model.depth=8", "model.bottleneck=false"]
    assert fusion_groups([compose([*base, "regularizer=cutmix"]), compose([*base, "regularizer=mixup_cutmix"])],
                         2) == ([[0, 1]], {})
    with pytest.raises(ConfigError, match="switch_prob=1.5 is invalid"):
        mixup_cutmix(switch_prob=1.5)
