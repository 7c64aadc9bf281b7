"""ImageNet decoded and augmented on the device (``dataset.pipeline=device``), checked on the CPU with
torchvision's CPU decoder: odd files decode as PIL decodes them, the augmentations are torchvision's in
distribution (fixed seeds, KS / χ² tests against torchvision's own draws), the evaluation transform is
within a stated pixel error of PIL's, and the loader keeps the order, shards and resume of the PIL one."""

from __future__ import annotations

import dataclasses
import io
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from fakedata import write_imagefolder
from PIL import Image
from scipy import stats
from torchvision import transforms as T
from torchvision.transforms.v2 import functional as TF

from cutmix_repro.config import compose
from cutmix_repro.data import imagenet
from cutmix_repro.data.decoded import (
    DecodedLoader,
    TrainDraws,
    color_jitter,
    decode_batch,
    draw_crops,
    draw_train,
    eval_batch,
    lighting,
    read_bytes,
    step_generator,
    train_batch,
)
from cutmix_repro.data.transforms import IMAGENET_MEAN, IMAGENET_STD, Lighting, imagenet_eval_transform
from cutmix_repro.errors import ConfigError, DataError


def _photo(height: int, width: int, seed: int = 0) -> Image.Image:
    """A smooth RGB picture (gradients and blobs) that JPEG encodes as it would a photograph."""
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    rng = np.random.default_rng(seed)
    channels = [np.sin(2 * math.pi * (f1 * yy + f2 * xx) + p) for f1, f2, p in rng.uniform(0.5, 3, (3, 3))]
    pixels = ((np.stack(channels, -1) + 1) * 127.5).astype(np.uint8)
    return Image.fromarray(pixels)


def _odd_files(folder: Path) -> dict[str, Path]:
    """What real ImageNet holds besides RGB JPEGs: CMYK and grayscale JPEGs, a PNG named .JPEG, a corrupt file."""
    folder.mkdir(parents=True, exist_ok=True)
    picture = _photo(48, 64)
    files = {"rgb": folder / "rgb.JPEG", "cmyk": folder / "cmyk.JPEG", "gray": folder / "gray.JPEG",
             "png": folder / "png_named.JPEG"}
    picture.save(files["rgb"], quality=90)
    picture.convert("CMYK").save(files["cmyk"], quality=90)
    picture.convert("L").save(files["gray"], quality=90)
    picture.save(files["png"], format="PNG")
    return files


def test_odd_files_decode_exactly_as_pil_converts_them_to_rgb(tmp_path):
    files = _odd_files(tmp_path)
    names = list(files)
    decoded = decode_batch([read_bytes(str(files[n])) for n in names], [str(files[n]) for n in names], "cpu")
    for name, image in zip(names, decoded):
        pil = torch.from_numpy(np.array(Image.open(files[name]).convert("RGB"))).permute(2, 0, 1)
        assert image.dtype == torch.uint8 and image.shape == (3, 48, 64), name
        assert torch.equal(image, pil), name


def test_a_corrupt_file_is_one_error_line_naming_it(tmp_path):
    files = _odd_files(tmp_path)
    bad = tmp_path / "truncated.JPEG"
    bad.write_bytes(files["rgb"].read_bytes()[:40])
    with pytest.raises(DataError, match=r"^dataset\.root: .*truncated\.JPEG is not a readable image"):
        decode_batch([read_bytes(str(files["rgb"])), read_bytes(str(bad))], [str(files["rgb"]), str(bad)], "cpu")


# --- the augmentations are torchvision's in distribution ---------------------------------------------------------
@pytest.mark.parametrize("size", [(375, 500), (500, 333), (64, 400), (300, 40), (224, 224)])
def test_crop_scale_aspect_ratio_and_position_follow_torchvision(size):
    """Two-sample KS tests against ``RandomResizedCrop.get_params`` on the same image size (the thin
    sizes hit its centre-crop fall-back)."""
    height, width = size
    n = 3000
    ours = draw_crops(torch.tensor([size] * n), torch.Generator().manual_seed(7)).double()
    torch.manual_seed(8)
    image = torch.empty(1, height, width)
    theirs = torch.tensor([T.RandomResizedCrop.get_params(image, (0.08, 1.0), (3 / 4, 4 / 3)) for _ in range(n)]
                          ).double()  # (top, left, h, w) like ours
    for name, f in {"scale": lambda b: b[:, 2] * b[:, 3] / (height * width),
                    "log aspect": lambda b: torch.log(b[:, 3] / b[:, 2]),
                    "top": lambda b: (b[:, 0] + 0.5) / (height - b[:, 2] + 1),
                    "left": lambda b: (b[:, 1] + 0.5) / (width - b[:, 3] + 1)}.items():
        assert stats.ks_2samp(f(ours).numpy(), f(theirs).numpy()).pvalue > 1e-3, name
    assert ((ours[:, 0] + ours[:, 2] <= height) & (ours[:, 1] + ours[:, 3] <= width) & (ours.min(1).values >= 0)).all()


def test_flip_rate_jitter_factors_and_order_and_lighting_noise_follow_the_official_transforms():
    n = 4000
    draws = draw_train(torch.tensor([[100, 120]] * n), torch.Generator().manual_seed(3))
    assert stats.binomtest(int(draws.flips.sum()), n, 0.5).pvalue > 1e-3
    torch.manual_seed(4)
    jitter = T.ColorJitter(0.4, 0.4, 0.4)
    theirs = torch.tensor([jitter.get_params(jitter.brightness, jitter.contrast, jitter.saturation, None)[1:4]
                           for _ in range(n)])
    for k in range(3):
        assert stats.ks_2samp(draws.factors[:, k].numpy(), theirs[:, k].numpy()).pvalue > 1e-3
    orders = [tuple(row) for row in draws.order.tolist()]  # torchvision: randperm, every order alike
    counts = [orders.count(order) for order in itertools.permutations(range(3))]
    assert sum(counts) == n and stats.chisquare(counts).pvalue > 1e-3, counts
    assert stats.kstest(draws.lighting.flatten().numpy(), stats.norm(0, 0.1).cdf).pvalue > 1e-3


def test_jitter_and_lighting_apply_torchvisions_and_the_official_formulas():
    torch.manual_seed(5)
    x = torch.rand(4, 3, 9, 11)
    factors = torch.tensor([[0.7, 1.3, 1.1], [1.4, 0.6, 0.9], [1.0, 1.0, 1.0], [0.65, 1.2, 0.6]])
    order = torch.tensor([[0, 1, 2], [2, 0, 1], [1, 2, 0], [2, 1, 0]])
    ours = color_jitter(x, factors, order)
    adjust = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation]
    for i in range(4):
        expected = x[i]
        for op in order[i].tolist():
            expected = adjust[op](expected, float(factors[i, op]))
        assert torch.allclose(ours[i], expected, atol=1e-6), i
    torch.manual_seed(6)
    alpha = torch.randn(3) * 0.1
    torch.manual_seed(6)
    official = Lighting(0.1)(x[0])
    assert torch.allclose(lighting(x[:1], alpha.view(1, 3))[0], official, atol=1e-6)


def test_train_batch_crops_flips_and_normalises_the_decoded_pixels():
    image = torch.from_numpy(np.array(_photo(60, 80))).permute(2, 0, 1).contiguous()
    draws = TrainDraws(boxes=torch.tensor([[10, 20, 30, 40], [0, 0, 60, 80]]), flips=torch.tensor([False, True]),
                       factors=torch.ones(2, 3), order=torch.tensor([[0, 1, 2]] * 2), lighting=torch.zeros(2, 3))
    out = train_batch([image, image], draws, size=32)
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    first = TF.resized_crop(image, 10, 20, 30, 40, [32, 32], antialias=True).float() / 255
    second = TF.resize(image, [32, 32], antialias=True).flip(-1).float() / 255
    assert torch.allclose(out[0], (first - mean) / std, atol=1e-5)
    assert torch.allclose(out[1], (second - mean) / std, atol=1e-5)
    # lighting before the normalisation, as the official Compose([..., ToTensor(), Lighting(0.1), normalize])
    alpha = torch.tensor([[0.2, -0.1, 0.15], [0.0, 0.0, 0.0]])
    lit = train_batch([image, image], dataclasses.replace(draws, lighting=alpha), size=32)
    shifted = lighting(first.unsqueeze(0), alpha[:1])[0]
    assert not torch.allclose(shifted, first, atol=1e-3), "the draw changes the image"
    assert torch.allclose(lit[0], (shifted - mean) / std, atol=1e-5)


# In normalised units (÷ std ≈ 0.225): a few pixels one uint8 level apart (rounding), none more (measured on
# 2026-11-27: mean 4e-5, max 0.0175 = 1 level of 255).
EVAL_MEAN_ABS_ERROR, EVAL_MAX_ABS_ERROR = 0.001, 0.02


def _textured(height: int, width: int, seed: int) -> Image.Image:
    """A picture with fine detail (grain, stripes of a few pixels) where a resize without antialiasing aliases."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    detail = rng.normal(0, 25, (height, width, 1)) + 30 * np.sin(xx * 1.3 + yy * 0.7)[..., None]
    return Image.fromarray(np.clip(np.asarray(_photo(height, width, seed)) + detail, 0, 255).astype(np.uint8))


def test_evaluation_transform_is_within_a_stated_pixel_error_of_pils():
    """Resize 256 + centre crop 224: torch's antialiased bilinear against PIL's (the decoders agree exactly)."""
    pil_transform = imagenet_eval_transform(224, 256)
    for seed, (h, w) in enumerate([(375, 500), (500, 375), (300, 300), (200, 260)]):
        buffer = io.BytesIO()
        _textured(h, w, seed).save(buffer, "JPEG", quality=90)
        data = torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8)
        ours = eval_batch(decode_batch([data], ["x"], "cpu"), 224, 256)[0]
        theirs = pil_transform(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
        error = (ours - theirs).abs()
        assert ours.shape == theirs.shape == (3, 224, 224)
        assert error.mean() < EVAL_MEAN_ABS_ERROR and error.max() < EVAL_MAX_ABS_ERROR, (error.mean(), error.max())


# --- the loader --------------------------------------------------------------------------------------------------
def _device_imagenet(root, **overrides):
    return imagenet(str(root), **{"image_size": 32, "resize": 36, "num_workers": 0, "prefetch_factor": 2,
                                  "batch_size": 4, "pipeline": "device", **overrides})


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet")
    write_imagefolder(root, classes=3, train_per_class=5, val_per_class=2)
    _odd_files(root / "train" / "n00000001")  # ImageNet's odd files in one class
    return root


def test_device_pipeline_loads_every_image_once_per_epoch_with_its_label(folder):
    data = _device_imagenet(folder)
    assert isinstance(data.train, DecodedLoader) and data.num_classes == 3
    labels = []
    for x, y in data.train:
        assert x.dtype == torch.float32 and x.shape[1:] == (3, 32, 32) and torch.isfinite(x).all()
        labels += y.tolist()
    assert sorted(labels) == sorted(data.train.labels.tolist()) and len(labels) == 19
    val = [x for x, _ in data.val]
    assert sum(len(x) for x in val) == 6 and val[0].shape[1:] == (3, 32, 32)
    image, label = data.val.sample(1)  # what TensorBoard's fixed test images read
    assert image.shape == (3, 32, 32) and torch.allclose(image, val[0][1]) and label == data.val.labels[1]


def test_device_pipeline_resumed_mid_epoch_gives_the_same_batches(folder):
    data = _device_imagenet(folder)
    data.train.set_epoch(2)
    full = list(data.train)
    data.train.set_epoch(2, start_step=3)
    resumed = list(data.train)
    assert len(resumed) == len(full) - 3
    for (a, ya), (b, yb) in zip(full[3:], resumed):
        assert torch.equal(a, b) and torch.equal(ya, yb)
    data.train.set_epoch(3)
    assert not torch.equal(next(iter(data.train))[0], full[0][0]), "another epoch, another augmentation"


def test_ddp_ranks_decode_disjoint_shards(folder):
    seen = []
    for rank in range(2):
        data = _device_imagenet(folder, rank=rank, world_size=2, batch_size=3)
        data.train.set_epoch(0)
        seen.append([i for _, _, idx in data.train.loader for i in idx.tolist()])
    assert not set(seen[0]) & set(seen[1]) and len(seen[0]) == len(seen[1]) == 9


def test_pipeline_is_chosen_by_device_and_checked(folder):
    assert compose(["dataset=imagenet"]).dataset.pipeline == "auto"
    assert not isinstance(_device_imagenet(folder, pipeline="auto").train, DecodedLoader), "PIL on the CPU"
    from cutmix_repro.data.imagenet import resolve_pipeline

    assert resolve_pipeline("auto", "cuda") == "device" and resolve_pipeline("pil", "cuda") == "pil"
    with pytest.raises(ConfigError, match="pipeline='nvjpeg'.*auto.*device.*pil"):
        _device_imagenet(folder, pipeline="nvjpeg")


def test_step_generators_differ_by_seed_epoch_rank_and_step():
    draws = {key: torch.rand(4, generator=step_generator(*key)) for key in
             [(0, 0, 0, 0), (1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, 1)]}
    values = list(draws.values())
    assert all(not torch.equal(a, b) for i, a in enumerate(values) for b in values[i + 1:])


def test_batched_decoding_falls_back_to_the_cpu_decoder_for_what_it_refuses(tmp_path, monkeypatch):
    """The CUDA path's routing, run with torchvision's batched decoder on the CPU: a PNG named .JPEG never
    reaches it, and a file it refuses (here: CMYK, as a device decoder may) is decoded on the CPU."""
    import cutmix_repro.data.decoded as decoded

    files = _odd_files(tmp_path)
    names = list(files)
    data = [read_bytes(str(files[n])) for n in names]
    real, calls = decoded.decode_jpeg, []

    def picky(inputs, **kwargs):
        batch = inputs if isinstance(inputs, list) else [inputs]
        calls.append(len(batch))
        assert all(decoded.is_jpeg(d) for d in batch), "a file that is not a JPEG reached the JPEG decoder"
        if any(torch.equal(d, data[names.index("cmyk")]) for d in batch):
            raise RuntimeError("nvjpeg: unsupported colour space")
        return real(inputs, **kwargs)

    monkeypatch.setattr(decoded, "decode_jpeg", picky)
    images = decode_batch(data, [str(files[n]) for n in names], "cpu", batched=True)
    assert calls[0] == 3, "the three JPEGs in one batched call"
    for name, image in zip(names, images):
        assert torch.equal(image, torch.from_numpy(np.array(Image.open(files[name]).convert("RGB"))).permute(2, 0, 1))
