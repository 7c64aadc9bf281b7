"""The report: ``results/bench/<date>_<device>.md`` (date, machine, versions, every section measured), and the GPU
throughput the reproduce scripts estimate from (``results/bench/throughput.json``)."""

from __future__ import annotations

import json
from pathlib import Path

from ..engine.records import machine, package_versions
from .common import table


def write_report(out: Path, results: dict, stamp: str, device_name: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# Benchmarks, {stamp}", "", f"Device: **{device_name}**. Machine: `{json.dumps(machine())}`.",
             f"Versions: `{json.dumps(package_versions())}`.", "",
             f"Command: `python -m cutmix_repro.bench {' '.join(results['argv'])}`", ""]
    if "mixing" in results:
        lines += ["## 1. Mixing op (median time per call)", "",
                  *table(results["mixing"], [("shape", "batch", "s"), ("ours_ms", "ours (ms)", ".3f"),
                                              ("timm_ms", "timm Mixup (ms)", ".3f"),
                                              ("torchvision_ms", "torchvision v2 CutMix (ms)", ".3f"),
                                              ("ours_over_timm", "ours / timm", ".3f"),
                                              ("ours_over_torchvision", "ours / torchvision", ".3f")]),
                  "", "Target: at 224×224, ours ≤ 0.5× timm's time.", ""]
    if "pipeline" in results:
        p = results["pipeline"]
        lines += ["## 2. CIFAR input pipeline (one epoch)", "",
                  *table([p], [("images", "images", "d"), ("batch_size", "batch", "d"),
                                ("workers", "DataLoader workers (torchvision)", "d"),
                                ("ours_images_per_s", "ours (img/s)", ".0f"),
                                ("torchvision_images_per_s", "torchvision + PIL (img/s)", ".0f"),
                                ("speedup", "speed-up", ".1f")]),
                  "", "Ours runs in the main process; target ≥ 10×.", ""]
    if "overhead" in results:
        lines += ["## 3. Trainer overhead on the CPU", "",
                  *table([results["overhead"]], [("model", "model", "s"), ("batch_size", "batch", "d"),
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
                  *table(results["cuda"], [*columns, ("official_images_per_s", "official-style fp32 (img/s)", ".0f"),
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
                  *table(results["compiled"], [*columns, ("backend", "backend", "s")]), "",
                  "The trainer's step (`train_one_epoch`) timed after a 3-batch warm-up that pays for compilation; "
                  "graphs and graph breaks from dynamo's counters (engine/compiled.py).", ""]
    if results.get("decoding"):
        lines += ["## 6. ImageNet decoding and augmentation (500×375 JPEGs, one thread)", "",
                  *table(results["decoding"], [("device", "device", "s"), ("images", "images", "d"),
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
                  *table(results["transfer"], [("task", "task", "s"), ("model", "model", "s"),
                                                ("device", "device", "s"), ("batch_size", "batch", "d"),
                                                ("images_per_s", "img/s", ".2f"),
                                                ("resnet50_images_per_s", "ResNet-50 224² classification img/s", ".2f"),
                                                ("over_resnet50", "÷ ResNet-50", ".4f")]), "",
                  "VOC-sized images (500×375); Faster R-CNN resized to a shorter side of 600 (C4: 128 RoIs per image), "
                  "SSD to 300². The ratio to ResNet-50's step on the same device projects each task's GPU time from "
                  "ResNet-50's measured GPU throughput (docs/transfer.md).", ""]
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
                  *table(results["augment"], [("augment", "augment", ""), ("device", "device", ""),
                                               ("ms_per_batch", "ms / batch", ".2f"),
                                               ("added_ms_per_batch", "added ms / batch", "+.2f"),
                                               ("images_per_s", "images/s", ",.0f")]), "",
                  "torchvision's v2 transforms draw one operation per call, so the loader calls them once per "
                  "image; the paper's path (first row) does the whole batch in a few tensor operations.", ""]
    if results.get("fmix"):
        r = results["fmix"][0]
        lines += [f"## 11. FMix's masks: the authors' spectrum vs the isotropic one ({r['masks']} masks of "
                  f"{r['size']}×{r['size']} at λ = {r['lam']} each)", "",
                  *table([{**row, "edges_pm": f"{row['edges']:.1f} ± {row['edges_sem']:.1f}",
                            "regions_pm": f"{row['regions']:.2f} ± {row['regions_sem']:.2f}"}
                           for row in results["fmix"]],
                          [("spectrum", "spectrum", ""), ("edges_pm", "edges kept/pasted (± s.e.)", ""),
                           ("edges_between_rows", "of them between rows", ".1f"),
                           ("edges_between_columns", "between columns", ".1f"),
                           ("regions_pm", "connected regions (± s.e.)", "")]), "",
                  "`authors`: ecs-vlc/FMix's `make_low_freq_image` (its complex spectrum from the frequency grid's "
                  "first two rows: horizontal frequencies 0 and 1 only); `isotropic`: the paper's description.", ""]
    if results.get("saliency"):
        from .saliency import report_lines as saliency_lines

        lines += saliency_lines(results["saliency"])
    if results.get("cpu"):
        from .cpu import report_lines as cpu_lines

        lines += cpu_lines(results["cpu"])
    if results.get("fused"):
        from .fused import report_lines

        lines += report_lines(results["fused"])
    if results.get("ema"):
        lines += ["## 10. Weight EMA (`trainer.ema_decay`): one update per optimizer step", "",
                  *table(results["ema"], [("model", "model", ""), ("device", "device", ""),
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
        data = {32: "cifar", 28: "fashion_mnist"}.get(row["image"], "imagenet")
        entries.append({"model": row["model"], "data": data,
                        "device": device_name, "date": date, "images_per_s": row["ours_images_per_s"],
                        "batch_size": row["batch_size"], "mode": row["mode"]})
    path.write_text(json.dumps(entries, indent=2))


def record_fused_throughput(out: Path, rows: list[dict], device_name: str, date: str) -> None:
    """The fused groups' aggregate GPU rates (for ``reproduce --fuse``'s estimates) and the captured solo step's."""
    path = out / "throughput.json"
    entries = json.loads(path.read_text()) if path.exists() else []
    for row in rows:
        if not row.get("out_of_memory") and not row.get("capture_error") and (row["members"] > 1
                                                                           or row["mode"] == "captured"):
            entries.append({"model": row["model"], "data": "cifar", "device": device_name, "date": date,
                            "images_per_s": row["aggregate_images_per_s"], "batch_size": row["batch_size"],
                            "mode": row["mode"], "members": row["members"]})
    path.write_text(json.dumps(entries, indent=2))


def record_cpu_throughput(out: Path, rows: list[dict], date: str) -> None:
    """The summed rate of runs side by side on this CPU (section 14), for ``reproduce``'s estimate of a CPU table."""
    from ..engine.records import machine

    out.mkdir(parents=True, exist_ok=True)
    path = out / "throughput.json"
    entries = json.loads(path.read_text()) if path.exists() else []
    for row in rows:
        if row["option"].startswith("2 runs side by side"):
            entries.append({"model": "resnet20", "data": "fashion_mnist" if "Fashion" in row["case"] else "cifar",
                            "device": "cpu", "cpu": machine()["platform"], "date": date, "jobs": 2,
                            "images_per_s": row["images_per_s"], "batch_size": row.get("batch_size", 128),
                            "mode": "eager"})
    path.write_text(json.dumps(entries, indent=2))
