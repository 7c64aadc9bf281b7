"""Figure 3's α sweep and the plots (validation curves, error against a swept value)."""

from __future__ import annotations

import statistics
import textwrap
from collections import defaultdict
from pathlib import Path

from ..engine.records import (
    BEST_TOP1,
    EPOCH,
    LAST_TOP1,
    VAL_TOP1,
)
from ..paper import (
    config_key,
    row_overrides,
    run_key,
)
from .runs import PROTOCOL_NOTE, _scalar, fmt_mean, fmt_mean_std, fmt_paper, stats


def figure_markdown(fig: dict, runs: list[tuple[Path, dict]], used: set[str]):
    """Figure 3's sweeps: runs of the figure's config with any value of the swept key."""
    drop = (fig["sweep_key"],)
    key = config_key(tuple(row_overrides(fig, fig)), drop)
    points: dict[float, list[dict]] = defaultdict(list)
    for _, result in runs:
        if run_key(result, drop) == key:
            value = _scalar(result["regularizer_params"].get(fig["sweep_key"]))
            if isinstance(value, int | float):
                points[float(value)].append(result)
                used.add(run_key(result))
    paper = {float(k): v for k, v in (fig.get("paper") or {}).items()}
    lines = [f"## {fig['title']}", "", f"| {fig['sweep_key']} | Paper top-1 | Ours best top-1 | Ours last top-1 |",
             "|---|---|---|---|"]
    for value in sorted(set(map(float, fig["values"])) | set(points)):
        rs = points.get(value, [])
        lines.append(f"| {value:g} | {fmt_paper(paper.get(value))} | {fmt_mean_std([r[BEST_TOP1] for r in rs])}"
                     f" | {fmt_mean([r[LAST_TOP1] for r in rs])} |")
    lines += ["", f"Paper baseline (no CutMix): {fig['baseline']:.2f}. Other points of the paper's figure exist only "
              "as plotted points, so they are not listed.", "", PROTOCOL_NOTE, ""]
    return "\n".join(lines), points


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_errors_against(path: Path, title: str, xlabel: str, points: dict[float, list[dict]],
                        paper: dict[float, float] | None = None, baseline: float | None = None) -> bool:
    """Best- and last-epoch top-1 error (mean, seed standard deviation as error bars) against a swept value."""
    if not points:
        return False
    plt = _pyplot()
    xs = sorted(points)
    figure, ax = plt.subplots(figsize=(5, 3.5))
    for field, label in ((BEST_TOP1, "ours, best epoch"), (LAST_TOP1, "ours, last epoch")):
        means_stds = [stats([r[field] for r in points[x]]) for x in xs]
        ax.errorbar(xs, [m for m, _ in means_stds], yerr=[s or 0.0 for _, s in means_stds], marker="o", capsize=3,
                    label=f"{label} (mean ± std over seeds)")
    if baseline is not None:
        ax.axhline(baseline, color="gray", linestyle="--", label="paper baseline")
    for x, y in (paper or {}).items():
        ax.plot([float(x)], [y], "r*", markersize=10, label="paper")
    if min(xs) > 0 and max(xs) / min(xs) >= 10:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("top-1 error (%)")
    ax.set_title(textwrap.fill(title, 70), fontsize=7)
    ax.legend(fontsize=6)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True


def plot_curves(path: Path, title: str, curves: list[tuple[str, list[dict]]]) -> bool:
    """Validation top-1 error per epoch for every row that has runs (mean over seeds)."""
    if not curves:
        return False
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(6, 4))
    for label, runs in curves:
        by_epoch: dict[int, list[float]] = defaultdict(list)
        for run in runs:
            for entry in run.get("history", []):
                by_epoch[entry[EPOCH]].append(entry[VAL_TOP1])
        epochs = sorted(by_epoch)
        ax.plot(epochs, [statistics.fmean(by_epoch[e]) for e in epochs], label=f"{label} (n={len(runs)})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("val top-1 error (%)")
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=6)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True
