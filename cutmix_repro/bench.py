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
     compilation and for ShakeDrop.
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cutmix_repro.bench",
                                     description=" ".join(__doc__.split("\n\n")[0].split()))  # the first paragraph
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the benchmark runs")
    parser.add_argument("--out", default="results/bench")
    parser.add_argument("--only", default="mixing,pipeline,overhead,cuda,compiled,decoding")
    parser.add_argument("--modes", default="eager",
                        help="compile modes of the training benchmarks: eager and/or torch.compile modes "
                             "(default, reduce-overhead, ...), comma-separated")
    parser.add_argument("--cuda-models", default="pyramidnet200,resnet50", help="models of the CUDA benchmark")
    args = parser.parse_args(argv)
    parts = set(args.only.split(","))
    quick = args.quick
    results: dict = {"argv": sys.argv[1:] if argv is None else list(argv)}
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    has_cuda = torch.cuda.is_available()
    device_name = torch.cuda.get_device_name(0) if has_cuda and parts & {"cuda", "decoding"} else "cpu"
    if "mixing" in parts:
        shapes = [(8, 3, 32, 32), (8, 3, 64, 64)] if quick else [(64, 3, 32, 32), (64, 3, 224, 224)]
        seconds = 0.05 if quick else 1.0
        results["mixing"] = bench_mixing(shapes, seconds)
        if has_cuda and "cuda" in parts:
            results["mixing"] += [{**r, "shape": r["shape"] + " (cuda)"} for r in bench_mixing(shapes, seconds, "cuda")]
    if "pipeline" in parts:
        workers = min(os.cpu_count() or 1, 2 if quick else 8)
        results["pipeline"] = bench_cifar_pipeline(512 if quick else 10_000, 64, workers, 0.1 if quick else 5.0)
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
                backend="eager" if quick else "inductor", official=False, min_run_time=0.1 if quick else 5.0,
                label=label)
    if "decoding" in parts:
        count, batch = (16, 8) if quick else (256, 64)
        results["decoding"] = [bench_decoding(count, batch, "cpu")]
        if has_cuda:
            results["decoding"].append(bench_decoding(count if quick else 1024, 8 if quick else 256, "cuda"))
    path = write_report(Path(args.out), results, stamp, device_name)
    print(path.read_text())
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
