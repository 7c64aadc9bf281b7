"""Benchmarks against what users would otherwise run, measured side by side in one process.

``python -m cutmix_repro.bench [--quick] [--out results/bench]`` measures, each as a ratio:
  1. the mixing op: our CutMix vs ``timm.data.Mixup`` (CutMix mode) vs
     ``torchvision.transforms.v2.CutMix`` on 64×3×32×32 and 64×3×224×224 batches;
  2. the CIFAR input pipeline: our on-device batched crop/flip vs torchvision's CIFAR data set
     with the official PIL transforms in a DataLoader, in images/s;
  3. trainer overhead: our full training step (CutMix, loss, metrics, logging) vs a bare
     hand-written loop on the same model and batches, on the CPU;
  4. on CUDA (when present): steady-state training images/s of PyramidNet-200 (CIFAR batches of 64)
     and ResNet-50 (224×224 batches) for our step (bf16 autocast, channels_last) in each compile mode
     of ``--modes`` (eager, default, reduce-overhead = CUDA graphs) vs an official-style fp32 NCHW
     loop, achieved TFLOP/s, and the projected wall time of a 300-epoch CIFAR run;
  6. ImageNet input: host CPU time per training image of the PIL pipeline vs the device pipeline
     (``dataset.pipeline=device``), and each one's images/s (on CUDA: decoding + augmentation at batch 256);
  5. on the CPU: the same step eager vs compiled (``torch.compile``, as ``trainer.compile=true``), and
     the graphs and graph breaks dynamo counted, for a whole-model and a per-stage (feature CutMix)
     compilation and for ShakeDrop;
  7. Table 10's detectors: training images/s of each one's step beside ResNet-50's classification step on the
     same device, and the GPU-hours of the paper's recipes projected from ResNet-50's measured GPU throughput;
  8. what the devkit's +1 pixel changes in VOC07 mAP, on synthetic VOC-sized detections;
  9, 10. extra augmentation and weight EMA costs;
  11. the shapes of FMix's masks from the authors' spectrum and from the isotropic one;
  12. fused members: k runs as one fused model against k solo runs (``bench_fused.py``);
  13. how often SaliencyMix's saliency peak lands on the object, for each saliency input (``bench_saliency.py``).
It writes ``results/bench/<date>_<device>.md`` (date, machine, versions) and appends GPU
throughput to ``results/bench/throughput.json`` for the reproduce scripts' estimates.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import functools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torch.utils.benchmark as benchmark

from .engine.records import machine, package_versions


def timer(fn) -> benchmark.Timer:
    """A ``torch.utils.benchmark.Timer`` of ``fn()`` with every thread torch may use (Timer's default is one)."""
    return benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())


def median_time(fn, min_run_time: float) -> float:
    """Median seconds per call of ``fn`` (warm-up, blocks of calls until ``min_run_time`` seconds have
    passed, CUDA synchronised)."""
    return timer(fn).blocked_autorange(min_run_time=min_run_time).median


# 1. the mixing op ----------------------------------------------------------------------------
def bench_mixing(shapes, min_run_time: float, device="cpu") -> list[dict]:
    from timm.data import Mixup as TimmMixup
    from torchvision.transforms import v2

    from .regularizers import CutMix

    rows = []
    for shape in shapes:
        x = torch.randn(*shape, device=device)
        y = torch.randint(100, (shape[0],), device=device)
        ours = CutMix(alpha=1.0, prob=1.0)
        timm_mix = TimmMixup(mixup_alpha=0.0, cutmix_alpha=1.0, prob=1.0, mode="batch", label_smoothing=0.0,
                             num_classes=100)
        tv_mix = v2.CutMix(alpha=1.0, num_classes=100)
        t_ours, t_timm, t_tv = (median_time(functools.partial(mixer, x, y), min_run_time)
                                for mixer in (ours, timm_mix, tv_mix))
        rows.append({"shape": "×".join(map(str, shape)), "ours_ms": 1e3 * t_ours, "timm_ms": 1e3 * t_timm,
                     "torchvision_ms": 1e3 * t_tv, "ours_over_timm": t_ours / t_timm,
                     "ours_over_torchvision": t_ours / t_tv})
    return rows


# 2. the CIFAR input pipeline -----------------------------------------------------------------
def _write_cifar10(root: Path, num_images: int) -> None:
    import pickle

    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    per_batch = max(num_images // 5, 1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        n = per_batch if name != "test_batch" else 16
        with open(folder / name, "wb") as f:
            pickle.dump({"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                         "labels": rng.integers(0, 10, n).tolist()}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [str(i) for i in range(10)]}, f)


def bench_cifar_pipeline(num_images: int, batch_size: int, workers: int, min_run_time: float, device="cpu") -> dict:
    from torch.utils.data import DataLoader
    from torchvision import transforms as T

    from .data import cifar
    from .data.transforms import CIFAR_MEAN, CIFAR_STD

    with tempfile.TemporaryDirectory() as tmp:
        _write_cifar10(Path(tmp), num_images)
        official = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                              T.Normalize(CIFAR_MEAN, CIFAR_STD)])
        dataset = _unchecked_cifar10(tmp, official)  # torchvision's CIFAR10, MD5 check moved out
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                            persistent_workers=workers > 0)
        n = len(dataset)

        def torchvision_epoch():
            for x, y in loader:
                x.to(device), y.to(device)

        ours = cifar("cifar10", root=tmp, download=False, verify_md5=False, padding=4, hflip=True,
                     batch_size=batch_size, device=device)

        def ours_epoch():
            for _ in ours.train:
                pass

        t_tv = median_time(torchvision_epoch, min_run_time)
        t_ours = median_time(ours_epoch, min_run_time)
    return {"images": n, "batch_size": batch_size, "workers": workers, "ours_images_per_s": n / t_ours,
            "torchvision_images_per_s": n / t_tv, "speedup": t_tv / t_ours}


AUGMENT_CASES = (("none (the paper's)", {}), ("trivialaugment", {"policy": "trivialaugment"}),
                 ("randaugment", {"policy": "randaugment"}), ("random_erasing=0.25", {"random_erasing": 0.25}),
                 ("trivialaugment + random_erasing=0.25", {"policy": "trivialaugment", "random_erasing": 0.25}))


def bench_augment(num_images: int, batch_size: int, min_run_time: float, device: str = "cpu") -> list[dict]:
    """One epoch of the GPU-resident CIFAR loader (``TensorLoader``: crop, flip, normalise whole batches) with each
    extra augmentation of ``augment=`` (torchvision's v2 transforms called once per image)."""
    from .data.augment import Augment
    from .data.loaders import tensor_bundle
    from .data.transforms import CIFAR_MEAN, CIFAR_STD

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (num_images, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 100, (num_images,), generator=g)
    rows, base = [], None
    for label, options in AUGMENT_CASES:
        data = tensor_bundle("cifar", (images, labels, images[:64], labels[:64]), 100, CIFAR_MEAN, CIFAR_STD, 4, True,
                             batch_size=batch_size, device=device, augment=Augment(**options))

        def epoch(data=data):
            for _batch in data.train:
                pass
            if device == "cuda":
                torch.cuda.synchronize()

        seconds = median_time(epoch, min_run_time)
        base = base or seconds
        rows.append({"augment": label, "device": device, "ms_per_batch": 1000 * seconds / len(data.train),
                     "images_per_s": num_images / seconds, "added_ms_per_batch": 1000 * (seconds - base) /
                     len(data.train)})
    return rows


def bench_ema(models: list[tuple[str, int, dict]], min_run_time: float, device: str = "cpu") -> list[dict]:
    """``trainer.ema_decay``'s cost per optimizer step: one ``WeightEMA.update`` (timm's ModelEmaV3: a fused lerp
    over every parameter and buffer) of each model."""
    from .engine.ema import WeightEMA
    from .models import count_parameters, create_model

    rows = []
    for name, num_classes, options in models:
        model = create_model(name, num_classes, **options).to(device)
        ema = WeightEMA(model, 0.9998)

        def update(ema=ema):
            ema.update()
            if device == "cuda":
                torch.cuda.synchronize()

        rows.append({"model": name, "device": device, "params": count_parameters(model),
                     "ms_per_update": 1000 * median_time(update, min_run_time)})
    return rows


def _unchecked_cifar10(root, transform):
    """torchvision's CIFAR10 data set over files that are not the official release (no MD5 check)."""
    from torch.utils.data import Dataset

    from .data import load_cifar

    train_x, train_y, _, _ = load_cifar("cifar10", root, download=False, verify_md5=False)
    hwc, labels = train_x.permute(0, 2, 3, 1).contiguous().numpy(), train_y.tolist()  # torchvision's layout

    class Official(Dataset):  # torchvision.datasets.CIFAR10.__getitem__: a PIL image, then the transform
        def __len__(self):
            return len(labels)

        def __getitem__(self, i):
            from PIL import Image

            return transform(Image.fromarray(hwc[i])), labels[i]

    return Official()


# 3. trainer overhead ---------------------------------------------------------------------------
def bench_trainer_overhead(model_name: str, model_kwargs: dict, batch_size: int, steps: int, rounds: int) -> dict:
    from .engine.trainer import StepOptions, train_one_epoch
    from .models import create_model
    from .regularizers import CutMix

    options = StepOptions(device=torch.device("cpu"), log_interval=10 * steps)
    torch.manual_seed(0)
    batches = [(torch.randn(batch_size, 3, 32, 32), torch.randint(10, (batch_size,))) for _ in range(steps)]
    base = create_model(model_name, num_classes=10, **model_kwargs)
    ours_model, bare_model = copy.deepcopy(base), copy.deepcopy(base)

    def sgd(model):
        return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)

    ours_opt, bare_opt = sgd(ours_model), sgd(bare_model)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    regularizer = CutMix(alpha=1.0, prob=1.0)

    def ours():
        train_one_epoch(ours_model, batches, regularizer, ours_opt, scaler, options, 0)

    def bare():
        bare_model.train()
        for x, y in batches:
            loss = F.cross_entropy(bare_model(x), y)
            bare_opt.zero_grad(set_to_none=True)
            loss.backward()
            bare_opt.step()

    ours(), bare()  # warm up both
    t_ours, t_bare = [], []
    timers = [(timer(fn), out) for fn, out in ((ours, t_ours), (bare, t_bare))]
    for _ in range(rounds):  # interleaved, so drift in the machine's speed hits both alike
        for each, out in timers:
            out.append(each.timeit(number=1).mean)
    ratio = statistics.median(a / b for a, b in zip(t_ours, t_bare))
    return {"model": model_name, "batch_size": batch_size, "steps": steps, "rounds": rounds,
            "ours_step_ms": 1e3 * statistics.median(t_ours) / steps,
            "bare_step_ms": 1e3 * statistics.median(t_bare) / steps, "ratio": ratio}


# 4. CUDA training throughput -------------------------------------------------------------------
def forward_flops(model, shape) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, *shape, device=next(model.parameters()).device))
    model.train(was_training)
    return float(counter.get_total_flops())


def _official_cutmix(x, y, alpha=1.0):
    """The official code's per-batch CutMix (numpy λ and centre, torch permutation)."""
    lam = np.random.beta(alpha, alpha)
    perm = torch.randperm(x.size(0), device=x.device)
    h, w = x.shape[2:]
    cut = np.sqrt(1.0 - lam)
    ch, cw = int(h * cut), int(w * cut)
    cy, cx = np.random.randint(h), np.random.randint(w)
    y1, y2 = np.clip(cy - ch // 2, 0, h), np.clip(cy + ch // 2, 0, h)
    x1, x2 = np.clip(cx - cw // 2, 0, w), np.clip(cx + cw // 2, 0, w)
    x[:, :, y1:y2, x1:x2] = x[perm, :, y1:y2, x1:x2]
    lam = 1 - (y2 - y1) * (x2 - x1) / (h * w)
    return x, y, y[perm], lam


def bench_training(model_name: str, num_classes: int, image: int, batch_size: int, steps: int, modes: list[str],
                   device: str = "cuda", model_kwargs: dict | None = None, feature_mixing: bool = False,
                   backend: str = "inductor", official: bool = True, min_run_time: float = 3.0,
                   label: str | None = None) -> list[dict]:
    """Steady-state training images/s of the trainer's step (``train_one_epoch``: CutMix, or feature CutMix at a
    layer drawn per batch, the mixed loss, device metrics, SGD as the trainer builds it) for each compile mode
    (``eager``, or a ``torch.compile`` mode as ``trainer.compile_mode``), with bf16 autocast and channels_last on
    CUDA; the warm-up (compilation) time and dynamo's graph and graph-break counts; on CUDA also an
    official-style fp32 NCHW eager loop. Timed after a 3-batch warm-up, so the compile epoch is excluded."""
    from .engine.compiled import compile_model, compiled_graphs
    from .engine.optim import sgd
    from .engine.trainer import StepOptions, train_one_epoch
    from .models import create_model
    from .regularizers import CutMix, FeatureCutMix

    device = torch.device(device)
    cuda = device.type == "cuda"
    torch.backends.cudnn.benchmark = cuda
    torch.manual_seed(0)
    batches = [(torch.randn(batch_size, 3, image, image, device=device),
                torch.randint(num_classes, (batch_size,), device=device)) for _ in range(steps)]
    model = create_model(model_name, num_classes=num_classes, **(model_kwargs or {})).to(device)
    flops = forward_flops(model, (3, image, image))
    options = StepOptions(device=device, amp_dtype=torch.bfloat16 if cuda else None, channels_last=cuda,
                          log_interval=10 * steps)
    scaler = torch.amp.GradScaler(device.type, enabled=False)
    t_official = None
    if official:  # fp32, NCHW, eager, numpy draws, as the authors' train.py
        official_model = copy.deepcopy(model)
        official_opt = torch.optim.SGD(official_model.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                                       weight_decay=1e-4)

        def official_loop():
            official_model.train()
            for x, y in batches:
                x, ya, yb, lam = _official_cutmix(x, y)
                out = official_model(x)
                loss = lam * F.cross_entropy(out, ya) + (1 - lam) * F.cross_entropy(out, yb)
                official_opt.zero_grad()
                loss.backward()
                official_opt.step()

        t_official = median_time(official_loop, min_run_time)
        del official_model, official_opt
    rows = []
    for mode in modes:
        torch.manual_seed(0)
        ours = copy.deepcopy(model).to(memory_format=torch.channels_last if cuda else torch.contiguous_format)
        optimizer = sgd(ours, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4, classifier_lr=None)
        regularizer = FeatureCutMix(layers=[0, 1, 2, 3, 4]) if feature_mixing else CutMix(alpha=1.0, prob=1.0)
        if mode != "eager":
            compile_model(ours, feature_mixing, mode, backend)

        def step(chosen=batches, m=ours, o=optimizer, r=regularizer):
            train_one_epoch(m, chosen, r, o, scaler, options, 0)

        started = time.perf_counter()  # one call, no warm-up of its own: this is the compilation
        step(batches[:3])
        if cuda:
            torch.cuda.synchronize(device)
        warmup_s = time.perf_counter() - started
        counts = compiled_graphs() if mode != "eager" else {"graphs": 0, "graph_breaks": 0}
        seconds = median_time(step, min_run_time)
        ips = batch_size * steps / seconds
        row = {"model": label or model_name, "image": image, "batch_size": batch_size, "device": str(device),
               "mode": mode, "backend": backend if mode != "eager" else "", "regularizer": type(regularizer).__name__,
               "ours_images_per_s": ips, "step_ms": 1e3 * seconds / steps, "warmup_s": warmup_s, **counts,
               "forward_gflop_per_image": flops / 1e9, "ours_tflops": 3 * flops * ips / 1e12}
        if t_official is not None:
            row["official_images_per_s"] = batch_size * steps / t_official
            row["speedup"] = row["ours_images_per_s"] / row["official_images_per_s"]
        if image == 32:  # a 300-epoch CIFAR run: 50k training images, plus 10k test images per epoch forward-only
            row["projected_300_epoch_hours"] = 300 * (50_000 / ips + 10_000 / (3 * ips)) / 3600
        rows.append(row)
        del ours, optimizer
        if cuda:
            torch.cuda.empty_cache()
    eager = next((r for r in rows if r["mode"] == "eager"), None)
    for row in rows:
        row["over_eager"] = row["ours_images_per_s"] / eager["ours_images_per_s"] if eager else float("nan")
    return rows


CPU_COMPILE_CASES = [  # (label, model, options, feature mixing): every kind of graph the trainer compiles
    ("resnet20", "cifar_resnet", {"depth": 20, "bottleneck": False}, False),
    ("resnet20 feature-cutmix", "cifar_resnet", {"depth": 20, "bottleneck": False}, True),
    ("pyramidnet110 shakedrop", "pyramidnet110", {"shakedrop": True}, False),
]


# 6. ImageNet decoding and augmentation -------------------------------------------------------------
def _write_jpegs(root: Path, count: int, classes: int = 4) -> list[str]:
    """An ImageFolder of ``count`` JPEGs of 500×375 (ImageNet's most common size), photo-like content
    (smooth colours plus grain) at quality 90: about 100 KB each, as ImageNet's."""
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:375, 0:500] / 500
    paths = []
    for i in range(count):
        f = rng.uniform(0.5, 3, (3, 3))
        smooth = np.stack([np.sin(2 * np.pi * (a * yy + b * xx) + c) for a, b, c in f], -1)
        pixels = np.clip((smooth + 1) * 110 + rng.normal(0, 12, (375, 500, 3)), 0, 255).astype(np.uint8)
        folder = root / "train" / f"n{i % classes:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"img_{i}.JPEG"
        Image.fromarray(pixels).save(path, quality=90)
        paths.append(str(path))
    return paths


def bench_decoding(count: int, batch_size: int, device: str = "cpu") -> dict:
    """Host CPU time per training image (``time.process_time`` of this process, one thread): the PIL pipeline
    (open, decode, the official transforms) vs what the device pipeline leaves to the host (read the bytes,
    draw the augmentation; decoding and augmenting run on the device, on a GPU). And the throughput of each
    pipeline run entirely on ``device`` (on the CPU: torchvision's CPU decoder and the same tensor code)."""
    from PIL import Image

    from .data.decoded import decode_batch, draw_train, read_bytes, train_batch
    from .data.transforms import imagenet_train_transform

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            paths = _write_jpegs(Path(tmp), count)
            megabytes = sum(os.path.getsize(p) for p in paths) / len(paths) / 1e6
            pil = imagenet_train_transform(224)
            started, cpu = time.perf_counter(), time.process_time()
            for path in paths:
                with Image.open(path) as image:
                    pil(image.convert("RGB"))
            pil_cpu, pil_wall = (time.process_time() - cpu) / count, (time.perf_counter() - started) / count

            batches = [paths[i:i + batch_size] for i in range(0, count, batch_size)]
            generator = torch.Generator().manual_seed(0)
            cpu = time.process_time()
            encoded = []
            for batch in batches:  # the host's share: read bytes, draw the augmentation (sizes from the headers)
                data = [read_bytes(p) for p in batch]
                sizes = torch.tensor([Image.open(p).size[::-1] for p in batch])
                draw_train(sizes, generator)
                encoded.append(data)
            host_cpu = (time.process_time() - cpu) / count

            dev = torch.device(device)
            for batch, data in zip(batches[:1], encoded):  # warm-up: the decoder's handles and kernels load once
                images = decode_batch(data, batch, dev)
                train_batch(images, draw_train(torch.tensor([list(i.shape[-2:]) for i in images]), generator), 224)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            started, cpu = time.perf_counter(), time.process_time()
            for batch, data in zip(batches, encoded):
                images = decode_batch(data, batch, dev)
                sizes = torch.tensor([list(image.shape[-2:]) for image in images])
                train_batch(images, draw_train(sizes, generator), 224)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            tensor_wall, tensor_cpu = (time.perf_counter() - started) / count, (time.process_time() - cpu) / count
    finally:
        torch.set_num_threads(threads)
    return {"images": count, "batch_size": batch_size, "device": device, "jpeg_mb": megabytes,
            "pil_cpu_ms": 1e3 * pil_cpu, "device_pipeline_host_cpu_ms": 1e3 * host_cpu,
            "host_cpu_ratio": host_cpu / pil_cpu, "pil_images_per_s": 1 / pil_wall,
            "tensor_images_per_s": 1 / tensor_wall, "tensor_cpu_ms": 1e3 * tensor_cpu,
            "tensor_over_pil": pil_wall / tensor_wall}


# 7. Table 10's transfer tasks -------------------------------------------------------------------
# The paper appendix's recipes: (task, detector, images per iteration × iterations, image size of its step)
TRANSFER_RECIPES = [("voc_faster_rcnn", "faster_rcnn_c4", 8 * 120_000), ("voc_ssd", "ssd300_r50", 32 * 120_000),
                    ("voc_faster_rcnn_fpn", "faster_rcnn_fpn", 8 * 120_000)]


def bench_transfer(batch_size: int, steps: int, device: str = "cpu", size: tuple[int, int] = (375, 500),
                   quick: bool = False) -> list[dict]:
    """Training images/s of each detector's step (the configs' options: Faster R-CNN at a shorter side of 600 with
    128 RoIs per image, SSD at 300²) on VOC-sized images (500×375, 1–3 objects), beside ResNet-50's ImageNet
    classification step (224², the trainer's model) on the same device: the ratio projects Table 10's GPU time
    from ResNet-50's measured GPU throughput."""
    from .config import build, compose
    from .transfer.detection import build_detector

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
    from .evaluation.voc_ap import ImageDetections, voc07_map

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


# 11. FMix's masks: the authors' spectrum vs the isotropic one ------------------------------------------------
def bench_fmix_masks(count: int = 400, size: int = 32, lam: float = 0.5, seed: int = 0) -> list[dict]:
    """The shapes of ``count`` FMix masks (size × size, λ's share kept) of each spectrum: pixel edges between the
    kept and the pasted part (4-neighbours; those between rows and between columns), and connected regions of
    both parts (4-connected), as mean ± standard error."""
    from scipy import ndimage

    from .regularizers.fmix import SPECTRA, FMix

    rows = []
    for spectrum in SPECTRA:
        mixer, values = FMix(spectrum=spectrum), []
        torch.manual_seed(seed)
        for _ in range(count):
            m = mixer.mask(lam, size, size).numpy().astype(bool)
            across_rows, across_cols = int((m[1:] != m[:-1]).sum()), int((m[:, 1:] != m[:, :-1]).sum())
            values.append((across_rows + across_cols, across_rows, across_cols,
                           ndimage.label(m)[1] + ndimage.label(~m)[1]))
        values = np.array(values, dtype=float)
        mean, sem = values.mean(0), values.std(0, ddof=1) / np.sqrt(count)
        rows.append({"spectrum": spectrum, "masks": count, "size": size, "lam": lam,
                     "edges": mean[0], "edges_sem": sem[0], "edges_between_rows": mean[1],
                     "edges_between_columns": mean[2], "regions": mean[3], "regions_sem": sem[3]})
    return rows


# the report ------------------------------------------------------------------------------------
def _table(rows: list[dict], columns: list[tuple[str, str, str]]) -> list[str]:
    lines = ["| " + " | ".join(c[1] for c in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(format(row[c[0]], c[2]) for c in columns) + " |")
    return lines


def write_report(out: Path, results: dict, stamp: str, device_name: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# Benchmarks, {stamp}", "", f"Device: **{device_name}**. Machine: `{json.dumps(machine())}`.",
             f"Versions: `{json.dumps(package_versions())}`.", "",
             f"Command: `python -m cutmix_repro.bench {' '.join(results['argv'])}`", ""]
    if "mixing" in results:
        lines += ["## 1. Mixing op (median time per call)", "",
                  *_table(results["mixing"], [("shape", "batch", "s"), ("ours_ms", "ours (ms)", ".3f"),
                                              ("timm_ms", "timm Mixup (ms)", ".3f"),
                                              ("torchvision_ms", "torchvision v2 CutMix (ms)", ".3f"),
                                              ("ours_over_timm", "ours / timm", ".3f"),
                                              ("ours_over_torchvision", "ours / torchvision", ".3f")]),
                  "", "Target: at 224×224, ours ≤ 0.5× timm's time.", ""]
    if "pipeline" in results:
        p = results["pipeline"]
        lines += ["## 2. CIFAR input pipeline (one epoch)", "",
                  *_table([p], [("images", "images", "d"), ("batch_size", "batch", "d"),
                                ("workers", "DataLoader workers (torchvision)", "d"),
                                ("ours_images_per_s", "ours (img/s)", ".0f"),
                                ("torchvision_images_per_s", "torchvision + PIL (img/s)", ".0f"),
                                ("speedup", "speed-up", ".1f")]),
                  "", "Ours runs in the main process; target ≥ 10×.", ""]
    if "overhead" in results:
        lines += ["## 3. Trainer overhead on the CPU", "",
                  *_table([results["overhead"]], [("model", "model", "s"), ("batch_size", "batch", "d"),
                                                  ("ours_step_ms", "ours (ms/step)", ".1f"),
                                                  ("bare_step_ms", "bare loop (ms/step)", ".1f"),
                                                  ("ratio", "ours / bare", ".3f")]),
                  "", "Ours includes CutMix, the mixed loss, device-side metrics and the NaN check; the bare loop "
                  "is forward, cross-entropy, backward, SGD step. Median over interleaved rounds. Target ≤ 1.05×.", ""]
    columns = [("model", "model", "s"), ("batch_size", "batch", "d"), ("mode", "compile mode", "s"),
               ("ours_images_per_s", "ours (img/s)", ".0f"), ("step_ms", "ms/step", ".1f"),
               ("over_eager", "× eager", ".2f"), ("warmup_s", "warm-up/compile (s)", ".1f"),
               ("graphs", "graphs", "d"), ("graph_breaks", "graph breaks", "d")]
    if results.get("cuda"):
        lines += ["## 4. CUDA training throughput (steady state)", "",
                  *_table(results["cuda"], [*columns, ("official_images_per_s", "official-style fp32 (img/s)", ".0f"),
                                            ("speedup", "speed-up", ".2f"), ("ours_tflops", "ours TFLOP/s", ".1f")]),
                  ""]
        for row in results["cuda"]:
            if "projected_300_epoch_hours" in row:
                lines.append(f"Projected 300-epoch CIFAR run, {row['model']}, {row['mode']}: "
                             f"{row['projected_300_epoch_hours']:.2f} h (goal for PyramidNet-200 on one H100: < 1 h).")
        lines.append("")
    elif "cuda_skipped" in results:
        lines += ["## 4. CUDA training throughput (steady state)", "", results["cuda_skipped"], ""]
    if results.get("compiled"):
        lines += ["## 5. Eager vs compiled training step", "",
                  *_table(results["compiled"], [*columns, ("backend", "backend", "s")]), "",
                  "The trainer's step (`train_one_epoch`) timed after a 3-batch warm-up that pays for compilation; "
                  "graphs and graph breaks from dynamo's counters (engine/compiled.py).", ""]
    if results.get("decoding"):
        lines += ["## 6. ImageNet decoding and augmentation (500×375 JPEGs, one thread)", "",
                  *_table(results["decoding"], [("device", "device", "s"), ("images", "images", "d"),
                                                ("jpeg_mb", "MB/file", ".3f"),
                                                ("pil_cpu_ms", "PIL pipeline: host CPU ms/image", ".2f"),
                                                ("device_pipeline_host_cpu_ms", "device pipeline: host CPU ms/image",
                                                 ".3f"),
                                                ("host_cpu_ratio", "host CPU ratio", ".3f"),
                                                ("pil_images_per_s", "PIL img/s", ".0f"),
                                                ("tensor_images_per_s", "tensor path img/s", ".0f"),
                                                ("tensor_over_pil", "tensor / PIL", ".2f")]), "",
                  "Host CPU of the device pipeline: reading the file and drawing the augmentation (what is left to "
                  "the host when decoding and augmenting run on a GPU; kernel launches not included). The tensor "
                  "path's throughput is measured on the row's device (on the CPU: torchvision's CPU decoder). "
                  "Target: host CPU ratio ≤ 0.1; on an H100 ≥ 10,000 img/s decoded and augmented.", ""]
    if results.get("transfer"):
        lines += ["## 7. Table 10's transfer: detector training steps", "",
                  *_table(results["transfer"], [("task", "task", "s"), ("model", "model", "s"),
                                                ("device", "device", "s"), ("batch_size", "batch", "d"),
                                                ("images_per_s", "img/s", ".2f"),
                                                ("resnet50_images_per_s", "ResNet-50 224² classification img/s", ".2f"),
                                                ("over_resnet50", "÷ ResNet-50", ".4f")]), "",
                  "VOC-sized images (500×375); Faster R-CNN resized to a shorter side of 600 (C4: 128 RoIs per image), "
                  "SSD to 300². The ratio to ResNet-50's step on the same device projects each task's GPU time from "
                  "ResNet-50's measured GPU throughput (README: Table 10).", ""]
        for row in results["transfer"]:
            if row.get("projected_gpu_hours") is not None:
                lines.append(f"Projected paper recipe of {row['task']} ({row['paper_images']:,} images): "
                             f"{row['projected_gpu_hours']:.1f} GPU-hours on {row['projected_on']}.")
        lines.append("")
    if results.get("voc_plus_one"):
        p = results["voc_plus_one"]
        lines += ["## 8. VOC07 mAP with and without the devkit's +1 pixel", "",
                  f"{p['images']} synthetic VOC-sized images (boxes 20–400 px, detections jittered by 15% of the box "
                  f"size): mAP {p['map']:.2f} without, {p['map_plus_one']:.2f} with the +1 "
                  f"({p['difference']:+.2f} points).", ""]
    if results.get("augment"):
        lines += ["## 9. Extra augmentation (`augment=`) on the GPU-resident CIFAR loader (batches of "
                  f"{results['augment_batch']})", "",
                  *_table(results["augment"], [("augment", "augment", ""), ("device", "device", ""),
                                               ("ms_per_batch", "ms / batch", ".2f"),
                                               ("added_ms_per_batch", "added ms / batch", "+.2f"),
                                               ("images_per_s", "images/s", ",.0f")]), "",
                  "torchvision's v2 transforms draw one operation per call, so the loader calls them once per "
                  "image; the paper's path (first row) does the whole batch in a few tensor operations.", ""]
    if results.get("fmix"):
        r = results["fmix"][0]
        lines += [f"## 11. FMix's masks: the authors' spectrum vs the isotropic one ({r['masks']} masks of "
                  f"{r['size']}×{r['size']} at λ = {r['lam']} each)", "",
                  *_table([{**row, "edges_pm": f"{row['edges']:.1f} ± {row['edges_sem']:.1f}",
                            "regions_pm": f"{row['regions']:.2f} ± {row['regions_sem']:.2f}"}
                           for row in results["fmix"]],
                          [("spectrum", "spectrum", ""), ("edges_pm", "edges kept/pasted (± s.e.)", ""),
                           ("edges_between_rows", "of them between rows", ".1f"),
                           ("edges_between_columns", "between columns", ".1f"),
                           ("regions_pm", "connected regions (± s.e.)", "")]), "",
                  "`authors`: ecs-vlc/FMix's `make_low_freq_image` (its complex spectrum from the frequency grid's "
                  "first two rows: horizontal frequencies 0 and 1 only); `isotropic`: the paper's description.", ""]
    if results.get("saliency"):
        from .bench_saliency import report_lines as saliency_lines

        lines += saliency_lines(results["saliency"])
    if results.get("fused"):
        from .bench_fused import report_lines

        lines += report_lines(results["fused"])
    if results.get("ema"):
        lines += ["## 10. Weight EMA (`trainer.ema_decay`): one update per optimizer step", "",
                  *_table(results["ema"], [("model", "model", ""), ("device", "device", ""),
                                           ("params", "parameters", ",d"), ("ms_per_update", "ms / update", ".2f")]),
                  "",
                  "Besides this, the average is evaluated on the test set after every epoch (a second evaluation "
                  "pass).", ""]
    path = out / f"{stamp.replace(' ', '_').replace(':', '')}_{device_name.replace(' ', '-')}.md"
    path.write_text("\n".join(lines))
    return path


def record_throughput(out: Path, rows: list[dict], device_name: str, date: str) -> None:
    path = out / "throughput.json"
    entries = json.loads(path.read_text()) if path.exists() else []
    for row in rows:
        entries.append({"model": row["model"], "data": "cifar" if row["image"] == 32 else "imagenet",
                        "device": device_name, "date": date, "images_per_s": row["ours_images_per_s"],
                        "batch_size": row["batch_size"], "mode": row["mode"]})
    path.write_text(json.dumps(entries, indent=2))


def record_fused_throughput(out: Path, rows: list[dict], device_name: str, date: str) -> None:
    """The fused groups' aggregate GPU rates, for ``reproduce --fuse``'s estimates."""
    path = out / "throughput.json"
    entries = json.loads(path.read_text()) if path.exists() else []
    for row in rows:
        if not row.get("out_of_memory") and row["members"] > 1:
            entries.append({"model": row["model"], "data": "cifar", "device": device_name, "date": date,
                            "images_per_s": row["aggregate_images_per_s"], "batch_size": row["batch_size"],
                            "mode": row["mode"], "members": row["members"]})
    path.write_text(json.dumps(entries, indent=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cutmix_repro.bench",
                                     description=" ".join(__doc__.split("\n\n")[0].split()))  # the first paragraph
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the benchmark runs")
    parser.add_argument("--out", default="results/bench")
    parser.add_argument("--only", default="mixing,pipeline,overhead,cuda,compiled,decoding,transfer,augment,fmix,"
                                          "fused,saliency")
    parser.add_argument("--modes", default="eager",
                        help="compile modes of the training benchmarks: eager and/or torch.compile modes "
                             "(default, reduce-overhead, ...), comma-separated")
    parser.add_argument("--cuda-models", default="pyramidnet200,resnet50", help="models of the CUDA benchmark")
    parser.add_argument("--fused-devices", default="cpu,cuda", help="where the fused section measures")
    parser.add_argument("--saliency-cub", default=None, help="a CUB-200-2011 folder for the saliency section")
    args = parser.parse_args(argv)
    parts = set(args.only.split(","))
    quick = args.quick
    results: dict = {"argv": sys.argv[1:] if argv is None else list(argv)}
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    has_cuda = torch.cuda.is_available()
    device_name = torch.cuda.get_device_name(0) if has_cuda and parts & {"cuda", "decoding", "augment", "fused"} \
        else "cpu"
    if "mixing" in parts:
        shapes = [(8, 3, 32, 32), (8, 3, 64, 64)] if quick else [(64, 3, 32, 32), (64, 3, 224, 224)]
        seconds = 0.01 if quick else 1.0
        results["mixing"] = bench_mixing(shapes, seconds)
        if has_cuda and "cuda" in parts:
            results["mixing"] += [{**r, "shape": r["shape"] + " (cuda)"} for r in bench_mixing(shapes, seconds, "cuda")]
    if "pipeline" in parts:
        workers = min(os.cpu_count() or 1, 2 if quick else 8)
        results["pipeline"] = bench_cifar_pipeline(512 if quick else 10_000, 64, workers, 0.02 if quick else 5.0)
    if "overhead" in parts:
        results["overhead"] = (bench_trainer_overhead("cifar_resnet", {"depth": 8, "bottleneck": False}, 8, 2, 2)
                               if quick else
                               bench_trainer_overhead("cifar_resnet", {"depth": 20, "bottleneck": False}, 64, 10, 7))
    modes = args.modes.split(",")
    if "cuda" in parts:
        if not has_cuda:
            results["cuda_skipped"] = "No CUDA device on this machine: skipped."
        else:
            steps, results["cuda"] = (3 if quick else 20), []
            cuda_models = args.cuda_models.split(",")
            if "pyramidnet200" in cuda_models:
                results["cuda"] += bench_training("pyramidnet200", 100, 32, 64, steps, modes)
            if "resnet50" in cuda_models:
                for batch in (256, 128, 64):
                    try:
                        results["cuda"] += bench_training("resnet50", 1000, 224, batch, steps, modes)
                        break
                    except torch.cuda.OutOfMemoryError:
                        torch.cuda.empty_cache()
            record_throughput(Path(args.out), results["cuda"], device_name, stamp[:10])
    if "compiled" in parts:  # on the CPU: every kind of graph the trainer compiles, eager vs compiled
        cpu_modes = ["eager", *(m for m in modes if m != "eager")] if len(modes) > 1 else ["eager", "default"]
        results["compiled"] = []
        cases = [("resnet8", "cifar_resnet", {"depth": 8, "bottleneck": False}, False),
                 ("resnet8 feature-cutmix", "cifar_resnet", {"depth": 8, "bottleneck": False}, True)] \
            if quick else CPU_COMPILE_CASES
        for label, name, options, feature_mixing in cases:
            results["compiled"] += bench_training(
                name, 100, 32, 8 if quick else 64, 2 if quick else 5, cpu_modes, "cpu", options, feature_mixing,
                backend="eager" if quick else "inductor", official=False, min_run_time=0.02 if quick else 5.0,
                label=label)
    if "decoding" in parts:
        count, batch = (16, 8) if quick else (256, 64)
        results["decoding"] = [bench_decoding(count, batch, "cpu")]
        if has_cuda:
            results["decoding"].append(bench_decoding(count if quick else 1024, 8 if quick else 256, "cuda"))
    if "transfer" in parts:
        device = "cuda" if has_cuda else "cpu"
        rows = bench_transfer(1 if quick else 2, 1 if quick else 3, device, (150, 200) if quick else (375, 500), quick)
        from .reproduce import measured_throughput

        measured = measured_throughput("resnet50", "imagenet")
        for row in rows:  # GPU time of the paper's recipe, from ResNet-50's measured GPU throughput and the ratio
            if measured is not None:
                speed = measured["images_per_s"] * row["over_resnet50"]
                row["projected_gpu_hours"] = row["paper_images"] / speed / 3600
                row["projected_on"] = (f"{measured['device']} (ResNet-50 {measured['images_per_s']:.0f} img/s, "
                                       f"{measured['date']})")
        results["transfer"] = rows
        results["voc_plus_one"] = bench_voc_plus_one(200 if quick else 2000)
    if "augment" in parts:
        count, batch = (32, 16) if quick else (2048, 64)
        results["augment_batch"] = batch
        results["augment"] = bench_augment(count, batch, 0.01 if quick else 2.0, "cpu")
        if has_cuda:
            results["augment"] += bench_augment(count, batch, 0.05 if quick else 2.0, "cuda")
        ema_models = ([("cifar_resnet", 10, {"depth": 8, "bottleneck": False})] if quick else
                      [("pyramidnet200", 100, {}), ("resnet50", 1000, {})])
        results["ema"] = bench_ema(ema_models, 0.01 if quick else 1.0, "cpu")
        if has_cuda:
            results["ema"] += bench_ema(ema_models, 0.05 if quick else 1.0, "cuda")
    if "fmix" in parts:
        results["fmix"] = bench_fmix_masks(20 if quick else 400)
    if "saliency" in parts:
        from .bench_saliency import bench_saliency

        results["saliency"] = bench_saliency(20 if quick else 200, args.saliency_cub)
    if "fused" in parts:
        from .bench_fused import CPU_CASES, CUDA_CASES, bench_fused

        cpu_cases = [("resnet8", "cifar_resnet", {"depth": 8, "bottleneck": False})] if quick else CPU_CASES
        results["fused"] = []
        if "cpu" in args.fused_devices.split(","):
            results["fused"] += bench_fused(cpu_cases, (1, 2) if quick else (1, 2, 4, 8), 8 if quick else 64,
                                            1 if quick else 4, "cpu", 0.01 if quick else 2.0)
        if has_cuda and "cuda" in args.fused_devices.split(","):
            cuda_rows = bench_fused(CUDA_CASES, (1, 2) if quick else (1, 2, 4, 8), 8 if quick else 64,
                                    2 if quick else 10, "cuda", 0.05 if quick else 3.0)
            results["fused"] += cuda_rows
            record_fused_throughput(Path(args.out), cuda_rows, device_name, stamp[:10])
    path = write_report(Path(args.out), results, stamp, device_name)
    print(path.read_text())
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
