"""Tables 11 and 12 (and Figure 5): the robustness and uncertainty evaluations of trained runs."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from ..paper import (
    config_key,
)
from .figures import _pyplot
from .runs import fmt_mean_std


def evaluation_of(run: dict) -> dict:
    """The run's ``evaluation.json`` (``python -m cutmix_repro.evaluate``), or {} if it has none."""
    path = Path(run["_dir"]) / "evaluation.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _eval_runs(table: dict, row_overrides_: list[str], groups) -> list[tuple[dict, dict]]:
    runs = groups.get(config_key(tuple([f"+experiment={table['experiment']}", *row_overrides_])), [])
    return [(r, e) for r in runs if (e := evaluation_of(r))]


def fgsm_markdown(table: dict, groups, used: set[str]) -> tuple[str, list, list]:
    """Table 11: clean top-1 accuracy and accuracy under FGSM at the paper's ε, ours beside the paper's."""
    header = ["Method", "Paper top-1 acc", "Ours top-1 acc", "Paper FGSM acc", "Ours FGSM acc", "Runs"]
    lines = [f"## {table['title']}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    found, curves = [], []
    for row in table["rows"]:
        evaluated = _eval_runs(table, row["overrides"], groups)
        clean = [100 - e["clean"]["top1_err"] for _, e in evaluated if "clean" in e]
        attacked = [acc for _, e in evaluated if "fgsm" in e
                    for eps, acc in zip(e["fgsm"]["eps"], e["fgsm"]["top1_acc"]) if abs(eps - table["eps"]) < 1e-6]
        lines.append(f"| {row['label']} | {row['top1_acc']:.1f} | {fmt_mean_std(clean)} | {row['fgsm_acc']:.1f} | "
                     f"{fmt_mean_std(attacked)} | {len(evaluated)} |")
        if evaluated:
            used.add(config_key(tuple([f"+experiment={table['experiment']}", *row["overrides"]])))
            found.append((row["label"], len(evaluated), statistics.fmean(attacked) if attacked else float("nan")))
            curves.append((row["label"], [e for _, e in evaluated]))
    lines += ["", "Accuracy in %, higher is better; ours: mean ± std over the evaluated runs of the row's exact "
              "config (their best.pt unless evaluated otherwise); FGSM at ε = 8/255 in [0, 1] pixel units, clipped "
              "to [0, 1]. \"not run\": no evaluated run of the row.", ""]
    return "\n".join(lines), found, curves


def ood_markdown(table: dict, groups) -> tuple[str, list]:
    """Table 12 (the mean over the sets) and A2 (per set): paper / ours for each regularizer."""
    names = list(table["regularizers"])
    header = ["Set", *[f"{n} paper" for n in names], *[f"{n} ours" for n in names]]
    lines = [f"## {table['title']}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    ours: dict[str, dict] = {}
    for name, overrides in table["regularizers"].items():
        evaluated = [e["ood"] for _, e in _eval_runs(table, overrides, groups) if "ood" in e]
        ours[name] = evaluated[0] if evaluated else None
    found = [(n, 1, o["mean"]["auroc"]) for n, o in ours.items() if o]

    def cell(o, set_name) -> str:
        if o is None:
            return "not run"
        sets = {**o["sets"], **{k.removesuffix(" (resize)"): v for k, v in o["sets"].items()}, "mean": o["mean"]}
        m = sets.get(set_name)
        return "not run" if m is None else f"{m['tnr_at_95_tpr']:.1f} / {m['auroc']:.1f} / {m['detection_acc']:.1f}"

    for set_name, paper in table["sets"].items():
        lines.append(f"| {set_name} | " + " | ".join(" / ".join(f"{v:.1f}" for v in paper[n]) for n in names) + " | "
                     + " | ".join(cell(ours[n], set_name) for n in names) + " |")
    lines += ["", "TNR at 95% TPR / AUROC / detection accuracy in %, higher is better. Ours: the first evaluated run "
              "of each regularizer's exact config; its *mean* is over the sets it was evaluated on. A set is ours when "
              "its folder had that name (python -m cutmix_repro.evaluate --ood / --ood-crop).", ""]
    return "\n".join(lines), found


def plot_figure5(out: Path, curves: list[tuple[str, list[dict]]]) -> list[str]:
    """Figure 5 from our evaluated runs: occlusion (a) and in-between-class samples (b)."""
    plt = _pyplot()
    written = []
    for name, suite, draw in (("figure5_occlusion.png", "occlusion", _draw_occlusion),
                              ("figure5_in_between.png", "in-between", _draw_in_between)):
        runs = [(label, e[suite]) for label, evals in curves for e in evals[:1] if suite in e]
        if not runs:
            continue
        figure, axes = plt.subplots(1, 2, figsize=(9, 3.5))
        for label, data in runs:
            draw(axes, label, data)
        for ax in axes:
            ax.legend(fontsize=6)
        figure.tight_layout()
        figure.savefig(out / name, dpi=120)
        plt.close(figure)
        written.append(name)
    return written


def _draw_occlusion(axes, label, o):
    axes[0].plot(o["sizes"], o["centre_top1_err"], marker="o", label=label)
    axes[1].plot(o["sizes"], o["boundary_top1_err"], marker="o", label=label)
    for ax, kind in zip(axes, ("centre", "boundary")):
        ax.set_title(f"Figure 5(a): {kind} occlusion", fontsize=8)
        ax.set_xlabel("square side (pixels)")
        ax.set_ylabel("top-1 error (%)")


def _draw_in_between(axes, label, r):
    axes[0].plot(r["mixup"]["lam"], r["mixup"]["neither_err"], marker="o", label=label)
    axes[1].plot(r["cutmix"]["lam"], r["cutmix"]["neither_err"], marker="o", label=label)
    for ax, kind in zip(axes, ("Mixup", "CutMix")):
        ax.set_title(f"Figure 5(b): {kind} in-between-class samples", fontsize=8)
        ax.set_xlabel("combination ratio λ")
        ax.set_ylabel("neither class (%)")


