"""Evaluate any checkpoint as the paper's §4.4 does: ``python -m cutmix_repro.evaluate RUN [SUITES...]``.

``RUN`` is a run directory of ours (its ``best.pt``, or ``--checkpoint last.pt``), a checkpoint of ours,
or with ``--format official --model NAME --dataset NAME`` a checkpoint the authors released. Suites
(all by default): ``clean`` (top-1/top-5 error), ``fgsm`` (Table 11: top-1 accuracy under a one-step
attack of ε in [0, 1] pixel units, 8/255 by default, a list sweeps), ``occlusion`` (Figure 5(a):
centre and boundary occlusion of s×s squares), ``in-between`` (Figure 5(b): Mixup and centred-CutMix
pairs of two classes, predictions that are neither), ``ood`` (Table 12 / A2: maximum-softmax
detection of ImageFolders given by ``--ood`` / ``--ood-crop`` and of uniform and Gaussian noise),
``calibration`` (ECE, NLL, Brier, reliability diagram, temperature scaling). It writes
``evaluation.json`` (suites run again replace their own entries only), ``evaluation.md``, PNG figures
and the same scalars to TensorBoard (``tb/``, at the checkpoint's epoch) into the run directory or
``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch

from .errors import ConfigError, DataError

SUITES = ("clean", "fgsm", "occlusion", "in-between", "ood", "calibration")


def parse_eps(text: str) -> float:
    try:
        value = float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"eps={text!r} is invalid: a number or a fraction such as 8/255") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"eps={text!r} is invalid: the attack's step must be >= 0")
    return value


def load(args) -> tuple[torch.nn.Module, Any, Path, int]:
    """(model, its data set, the output folder, the checkpoint's epoch)."""
    from .config import build, compose

    if args.format == "official":
        from .evaluation.official import load_official, read

        if not args.model or not args.dataset:
            raise ConfigError("--model", args.model, "an authors' file needs --model (pyramidnet200, resnet50, …) "
                              "and --dataset (cifar100, imagenet, …)")
        model = load_official(args.path, args.model)
        overrides = [f"dataset={args.dataset}"] + ([f"dataset.root={args.data_root}"] if args.data_root else [])
        data = build(compose(overrides).dataset, "dataset", batch_size=args.batch_size)
        epoch = int(read(args.path).get("epoch", 0))
        return model, data, Path(args.out or Path(args.path).parent), epoch
    from .saved import load_run

    run = load_run(args.path, args.checkpoint, args.weights)
    if args.data_root:
        run.cfg.dataset.root = args.data_root
    epoch = int(torch.load(run.checkpoint, map_location="cpu", weights_only=True)["epoch"])
    return run.model, run.data(batch_size=args.batch_size), Path(args.out or run.run_dir), epoch


def run_suites(model, data, suites: list[str], args, device: torch.device) -> dict[str, Any]:
    from .evaluation import calibration, occlusion
    from .evaluation.attacks import fgsm
    from .evaluation.pixels import PixelModel

    model = model.to(device).eval()
    pixel = PixelModel(model, data.mean, data.std).to(device)
    results: dict[str, Any] = {}
    if "clean" in suites:
        from .engine.step import StepOptions, evaluate

        clean = evaluate(model, data.val, StepOptions(device=device))
        results["clean"] = {k: clean[k] for k in ("top1_err", "top5_err", "count")}
    height, width = data.val.sample(0)[0].shape[-2:]
    sizes = args.occlusion_sizes or [round(height * i / 8) for i in range(9)]
    right = torch.zeros(len(args.eps), device=device)
    occluded = torch.zeros(2, len(sizes), device=device)
    logits_all, targets_all, count = [], [], 0
    with torch.no_grad():
        for images, targets, *_ in data.val:
            images, targets = images.to(device), targets.to(device)
            count += len(targets)
            if "fgsm" in suites:
                clean01 = pixel.to_pixels(images)
                for i, eps in enumerate(args.eps):
                    right[i] += (pixel(fgsm(pixel, clean01, targets, eps)).argmax(1) == targets).sum()
            if "occlusion" in suites:
                for j, size in enumerate(sizes):
                    for k, boundary in enumerate((False, True)):
                        wrong = model(occlusion.occlude(images, size, boundary)).argmax(1) != targets
                        occluded[k, j] += wrong.sum()
            if {"calibration", "ood"} & set(suites):
                logits_all.append(model(images).float().cpu())
                targets_all.append(targets.cpu())
    if "fgsm" in suites:
        results["fgsm"] = {"eps": list(args.eps), "top1_acc": (100.0 * right / count).tolist()}
    if "occlusion" in suites:
        results["occlusion"] = {"sizes": sizes, "zero": "a zero of the normalised input (the data set's mean colour)",
                                "centre_top1_err": (100.0 * occluded[0] / count).tolist(),
                                "boundary_top1_err": (100.0 * occluded[1] / count).tolist()}
    if "in-between" in suites:
        results["in-between"] = in_between(model, data, args.pairs, height, device)
    if "calibration" in suites:
        logits, targets = torch.cat(logits_all), torch.cat(targets_all)
        fit, held = torch.arange(0, len(targets), 2), torch.arange(1, len(targets), 2)
        temperature = calibration.fit_temperature(logits[fit], targets[fit])
        results["calibration"] = {
            "all": calibration.scores(logits, targets), "held_out": calibration.scores(logits[held], targets[held]),
            "temperature": temperature,
            "held_out_scaled": calibration.scores(logits[held] / temperature, targets[held]),
            "fitted_on": "test images of even index", "reported_on": "test images of odd index",
            "reliability": calibration.reliability(logits.softmax(1), targets)}
    if "ood" in suites:
        in_scores = torch.cat(logits_all).softmax(1).max(1).values
        results["ood"] = out_of_distribution(model, data, in_scores, args, (len(data.mean), height, width), device)
    return results


def in_between(model, data, pairs: int, height: int, device) -> dict[str, Any]:
    from .evaluation import occlusion

    try:
        a, b = occlusion.in_between_pairs(data.val.labels, pairs)
    except ValueError as err:
        raise DataError("dataset", problem=str(err)) from None
    lams = [round(0.1 * i, 1) for i in range(11)]
    sides = [round(height * i / 8) for i in range(9)]
    mixup, cutmix, cut_lams = torch.zeros(len(lams)), torch.zeros(len(sides)), []
    with torch.no_grad():
        for start in range(0, len(a), 64):
            xa, ya = _stack(data.val, a[start : start + 64], device)
            xb, yb = _stack(data.val, b[start : start + 64], device)
            for i, lam in enumerate(lams):
                mixup[i] += occlusion.neither(model(lam * xa + (1 - lam) * xb), ya, yb).cpu()
            for j, side in enumerate(sides):
                mixed, lam = occlusion.cutmix_centre(xa, xb, side)
                cutmix[j] += occlusion.neither(model(mixed), ya, yb).cpu()
                if start == 0:
                    cut_lams.append(lam)
    n = len(a)
    return {"pairs": n, "mixup": {"lam": lams, "neither_err": (100.0 * mixup / n).tolist()},
            "cutmix": {"side": sides, "lam": cut_lams, "neither_err": (100.0 * cutmix / n).tolist()}}


def _stack(loader, indices, device):
    samples = [loader.sample(int(i)) for i in indices]
    return (torch.stack([s[0] for s in samples]).to(device),
            torch.tensor([s[1] for s in samples], device=device))


def out_of_distribution(model, data, in_scores, args, shape, device) -> dict[str, Any]:
    from torchvision import datasets
    from torchvision import transforms as T

    from .evaluation import ood

    normalize = T.Normalize(data.mean, data.std)
    sets = {}
    for path, crop in [(p, False) for p in args.ood] + [(p, True) for p in args.ood_crop]:
        folder = Path(path)
        if not folder.is_dir():
            raise ConfigError("--ood", path, "no such folder (an ImageFolder: one sub-folder of images, at least)")
        size = shape[1:]
        resize = T.CenterCrop(size) if crop else T.Resize(size)
        try:
            images = datasets.ImageFolder(path, transform=T.Compose([resize, T.ToTensor(), normalize]))
        except FileNotFoundError as err:
            raise ConfigError("--ood", path, f"holds no images ({err})") from None
        loader = torch.utils.data.DataLoader(images, batch_size=args.batch_size)
        name = f"{folder.name} ({'crop' if crop else 'resize'})"
        sets[name] = ood.max_softmax(model, (x.to(device) for x, _ in loader))
    count = min(len(in_scores), args.noise_count)
    for kind in ("uniform", "gaussian"):
        noise = normalize(ood.noise_images(kind, count, shape))
        sets[kind] = ood.max_softmax(model, (noise[i : i + args.batch_size].to(device)
                                             for i in range(0, count, args.batch_size)))
    per_set = {name: ood.detection_metrics(in_scores.numpy(), scores.numpy()) for name, scores in sets.items()}
    mean = {k: sum(m[k] for m in per_set.values()) / len(per_set) for k in next(iter(per_set.values()))}
    return {"sets": per_set, "mean": mean, "in_distribution": len(in_scores)}


def write(out: Path, results: dict[str, Any], epoch: int, source: str) -> Path:
    """Merge into ``evaluation.json`` (atomically), then ``evaluation.md``, the figures and TensorBoard."""
    from .engine.checkpoint import write_json

    out.mkdir(parents=True, exist_ok=True)
    path = out / "evaluation.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    merged = {**old, **results, "checkpoint": source, "epoch": epoch}
    write_json(path, merged)
    (out / "evaluation.md").write_text(markdown(merged))
    figures(out, merged)
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(out / "tb")) as writer:
        for tag, value in scalars(results).items():
            writer.add_scalar(tag, value, epoch)
    return path


def scalars(results: dict[str, Any]) -> dict[str, float]:
    out = {}
    if "clean" in results:
        clean = results["clean"]
        out.update({"eval/clean_top1_err": clean["top1_err"], "eval/clean_top5_err": clean["top5_err"]})
    for eps, acc in zip(results.get("fgsm", {}).get("eps", []), results.get("fgsm", {}).get("top1_acc", [])):
        out[f"eval/fgsm_top1_acc/eps={eps:.4f}"] = acc
    if "ood" in results:
        out.update({f"eval/ood_{k}": v for k, v in results["ood"]["mean"].items()})
    if "calibration" in results:
        c = results["calibration"]
        out.update({"eval/ece": c["all"]["ece"], "eval/nll": c["all"]["nll"], "eval/brier": c["all"]["brier"],
                    "eval/ece_temperature_scaled": c["held_out_scaled"]["ece"]})
    return out


def markdown(r: dict[str, Any]) -> str:
    lines = [f"# Evaluation of {r['checkpoint']} (epoch {r['epoch']})", ""]
    if "clean" in r:
        c = r["clean"]
        lines += [f"**Clean**: top-1 error {c['top1_err']:.2f}%, top-5 error {c['top5_err']:.2f}% "
                  f"({c['count']} images).", ""]
    if "fgsm" in r:
        lines += ["**FGSM** (top-1 accuracy under attack, paper Table 11):", "", "| ε | top-1 acc (%) |", "|---|---|"]
        lines += [f"| {eps:.4f} ({eps * 255:.1f}/255) | {acc:.2f} |"
                  for eps, acc in zip(r["fgsm"]["eps"], r["fgsm"]["top1_acc"])]
        lines.append("")
    if "occlusion" in r:
        o = r["occlusion"]
        lines += [f"**Occlusion** (top-1 error %, Figure 5(a); zero = {o['zero']}):", "",
                  "| side | centre | boundary |", "|---|---|---|"]
        lines += [f"| {s} | {a:.2f} | {b:.2f} |"
                  for s, a, b in zip(o["sizes"], o["centre_top1_err"], o["boundary_top1_err"])]
        lines.append("")
    if "in-between" in r:
        m, c = r["in-between"]["mixup"], r["in-between"]["cutmix"]
        lines += [f"**In-between-class samples** ({r['in-between']['pairs']} pairs; % neither class, "
                  "Figure 5(b)):", "",
                  "| Mixup λ | error | | CutMix side | λ | error |", "|---|---|---|---|---|---|"]
        for i in range(max(len(m["lam"]), len(c["side"]))):
            left = f"| {m['lam'][i]:.1f} | {m['neither_err'][i]:.2f} |" if i < len(m["lam"]) else "| | |"
            right = (f" | {c['side'][i]} | {c['lam'][i]:.3f} | {c['neither_err'][i]:.2f} |" if i < len(c["side"])
                     else " | | | |")
            lines.append(left + right)
        lines.append("")
    if "ood" in r:
        lines += ["**Out-of-distribution detection** (max softmax probability, %, Table 12 / A2):", "",
                  "| set | TNR at 95% TPR | AUROC | detection acc. |", "|---|---|---|---|"]
        for name, m in {**r["ood"]["sets"], "mean": r["ood"]["mean"]}.items():
            lines.append(f"| {name} | {m['tnr_at_95_tpr']:.1f} | {m['auroc']:.1f} | {m['detection_acc']:.1f} |")
        lines.append("")
    if "calibration" in r:
        c = r["calibration"]
        lines += [f"**Calibration** (ECE over 15 bins, NLL, Brier; temperature {c['temperature']:.3f} fitted on "
                  f"{c['fitted_on']}, reported on {c['reported_on']}):", "",
                  "| | ECE (%) | NLL | Brier | top-1 err (%) |", "|---|---|---|---|---|"]
        for name, key in (("all test images", "all"), ("held-out half", "held_out"),
                          ("held-out half, temperature-scaled", "held_out_scaled")):
            m = c[key]
            lines.append(f"| {name} | {m['ece']:.2f} | {m['nll']:.4f} | {m['brier']:.4f} | {m['top1_err']:.2f} |")
        lines.append("")
    return "\n".join(lines)


def figures(out: Path, r: dict[str, Any]) -> dict[str, str]:
    """The suites' figures, each titled with what it shows and which checkpoint (and epoch) it is of;
    returns {file name: title}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    source = f"{r['checkpoint']} (epoch {r['epoch']})"
    titles: dict[str, str] = {}

    def lines(name: str, title: str, xlabel: str, ylabel: str, series) -> None:
        fig, ax = plt.subplots(figsize=(5, 3.8))
        for (xs, ys), marker, label in series:
            ax.plot(xs, ys, marker=marker, label=label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        titles[name] = f"{title}\n{source}"
        ax.set_title(titles[name], fontsize=8)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / name, dpi=120)
        plt.close(fig)

    if "occlusion" in r:
        o = r["occlusion"]
        lines("occlusion.png", "Occlusion (paper Figure 5(a))", "occluded square side (pixels)", "top-1 error (%)",
              [((o["sizes"], o["centre_top1_err"]), "o", "centre occlusion"),
               ((o["sizes"], o["boundary_top1_err"]), "s", "boundary occlusion")])
    if "in-between" in r:
        m, c = r["in-between"]["mixup"], r["in-between"]["cutmix"]
        lines("in_between.png", f"In-between-class samples, {r['in-between']['pairs']} pairs (paper Figure 5(b))",
              "combination ratio λ (share of A)", "predictions of neither class (%)",
              [((m["lam"], m["neither_err"]), "o", "Mixup in-between samples"),
               ((c["lam"], c["neither_err"]), "s", "CutMix in-between samples")])
    if "calibration" in r:
        bins = r["calibration"]["reliability"]
        fig, ax = plt.subplots(figsize=(4.2, 4.4))
        ax.bar([conf for conf, _, n in bins if n], [acc for _, acc, n in bins if n], width=1 / len(bins),
               edgecolor="black", alpha=0.7, label="accuracy")
        ax.plot([0, 1], [0, 1], "k--", label="perfect calibration")
        ax.set_xlabel("confidence (max softmax)")
        ax.set_ylabel("accuracy")
        titles["reliability.png"] = f"Reliability, ECE {r['calibration']['all']['ece']:.2f}%\n{source}"
        ax.set_title(titles["reliability.png"], fontsize=8)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "reliability.png", dpi=120)
        plt.close(fig)
    return titles


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line on stderr (no usage block) and exit status 2."""

    def error(self, message: str):
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m cutmix_repro.evaluate",
                          description=" ".join(__doc__.split("\n\n")[0].split()))  # the first paragraph
    parser.add_argument("path", help="a run directory or checkpoint of ours, or an authors' file (--format official)")
    parser.add_argument("suites", nargs="*", help=f"any of {', '.join(SUITES)} (default: all)")
    parser.add_argument("--checkpoint", default="best.pt", help="which checkpoint of a run directory (default best.pt)")
    parser.add_argument("--use-ema", dest="weights", action="store_const", const="ema", default="model",
                        help="the same as --weights ema (timm's validate.py flag)")
    parser.add_argument("--weights", default="model", help="model (the trained weights) or ema (their moving "
                        "average, runs with trainer.ema_decay)")
    parser.add_argument("--format", choices=("ours", "official"), default="ours")
    parser.add_argument("--model", help="with --format official: our preset of the same design (pyramidnet200, …)")
    parser.add_argument("--dataset", help="with --format official: the data set (cifar10, cifar100, imagenet)")
    parser.add_argument("--data-root", help="where the data set is (default: as the run or config says)")
    parser.add_argument("--out", help="where the results go (default: the run directory)")
    parser.add_argument("--eps", nargs="+", type=parse_eps, default=[8 / 255], help="FGSM steps (default 8/255)")
    parser.add_argument("--occlusion-sizes", nargs="+", type=int, help="squares' sides (default: 0 … the image, 9)")
    parser.add_argument("--pairs", type=int, default=10_000, help="in-between pairs (default 10000)")
    parser.add_argument("--ood", nargs="*", default=[], help="out-of-distribution ImageFolders, resized")
    parser.add_argument("--ood-crop", nargs="*", default=[], help="out-of-distribution ImageFolders, centre-cropped")
    parser.add_argument("--noise-count", type=int, default=10_000, help="images per noise set (at most the test set)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    args = parser.parse_args(argv)
    suites = args.suites or list(SUITES)
    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        print(f"error: suite {unknown[0]!r} is unknown: choose from {', '.join(SUITES)}", file=sys.stderr)
        return 2
    try:
        from .engine.distributed import resolve_device

        device = resolve_device(args.device, 0)
        model, data, out, epoch = load(args)
        results = run_suites(model, data, suites, args, device)
        path = write(out, results, epoch, str(args.path))
    except (ConfigError, DataError, ValueError, OSError) as err:
        print(f"error: {err}".splitlines()[0], file=sys.stderr)
        return 2
    print((out / "evaluation.md").read_text())
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
