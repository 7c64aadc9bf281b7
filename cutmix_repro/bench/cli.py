"""``python -m cutmix_repro.bench``: the sections chosen by ``--only``, measured in turn, and their report."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

import torch

from .decoding import bench_decoding
from .fmix import bench_fmix_masks
from .mixing import bench_mixing
from .overhead import bench_trainer_overhead
from .pipeline import bench_cifar_pipeline
from .report import record_cpu_throughput, record_fused_throughput, record_throughput, write_report
from .switches import bench_augment, bench_ema
from .training import CPU_COMPILE_CASES, bench_training
from .transfer import bench_transfer, bench_voc_plus_one


def package_doc() -> str:
    return sys.modules[__package__].__doc__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cutmix_repro.bench",
                                     description=" ".join(package_doc().split("\n\n")[0].split()))  # 1st paragraph
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the benchmark runs")
    parser.add_argument("--out", default="results/bench")
    parser.add_argument("--only", default="mixing,pipeline,overhead,cuda,compiled,decoding,transfer,augment,fmix,"
                                          "fused,saliency,cpu")
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
            if "preact_resnet18" in cuda_models:  # the FMix paper's Fashion-MNIST model: 1×28×28, batch 128
                results["cuda"] += bench_training("preact_resnet18", 10, 28, 128, steps, modes, in_chans=1)
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
        from ..throughput import measured_throughput

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
        from .saliency import bench_saliency

        results["saliency"] = bench_saliency(20 if quick else 200, args.saliency_cub, canvases=50 if quick else 2000)
    if "cpu" in parts:  # the CPU step's options: layout, threads, runs side by side
        from .cpu import bench_cpu_options

        results["cpu"] = bench_cpu_options(16 if quick else 128, 0.05 if quick else 4.0, quick)
        if not quick:
            record_cpu_throughput(Path(args.out), results["cpu"], stamp[:10])
    if "fused" in parts:
        from .fused import CPU_CASES, CUDA_CASES, bench_fused

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

