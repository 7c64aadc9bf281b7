"""Error-rate tables laid out like the paper's, written from real runs.

``python -m cutmix_repro.report RUN_DIR_OR_GLOB... [--out runs/report]`` reads every ``results.json``
below the given run or multirun directories and writes, under ``--out``:
- one Markdown table per paper table (rows in the paper's order: paper top-1/top-5, ours best-epoch
  mean ± std over seeds with the number of runs, ours last-epoch mean, difference to the paper) and a
  validation-curve plot per table;
- the Figure 3 sweeps as tables and PNG plots;
- ``sweeps.md`` and a plot per sweep found among the runs: runs that differ in one numeric key only
  (and the seed), drawn as error against the swept value with seed error bars;
- ``table10.md`` from the runs of ``python -m cutmix_repro.transfer`` (detection mAP, caption scores), each
  row's backbone being the Table 3 run of its setting;
- ``unmatched_runs.md`` for runs that match no paper row, with their model and regularizer options.
Cells with no run say "not run": nothing is ever filled from the paper into "ours".
"""

from __future__ import annotations

import argparse
import glob
import importlib
import inspect
import json
import shutil
import statistics
import sys
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Any

from .engine.records import (
    BEST_TOP1,
    BEST_TOP1_LOC,
    BEST_TOP5,
    EPOCH,
    FINISHED,
    LAST_GT_KNOWN_LOC,
    LAST_MAX_BOX_ACC,
    LAST_MAX_BOX_ACC_V2,
    LAST_TOP1,
    LAST_TOP1_LOC,
    LAST_TOP5,
    STATUS,
    VAL_TOP1,
)
from .paper import (
    BEYOND_TABLES,
    EVALUATION_TABLES,
    FIGURES,
    LOCALIZATION_TABLES,
    TABLES,
    TRANSFER_TABLES,
    config_key,
    load_tables,
    localization_cells,
    row_overrides,
    run_key,
)

PROTOCOL_NOTE = (
    "*Best* is each run's lowest test top-1 error over all epochs (the latest such epoch on a tie), picked on "
    "the test set as the paper reports (§4.1) and as the authors' train.py keeps it; *best top-5* is the top-5 "
    "error of that same epoch (the authors' `best_err5`), not the lowest top-5 over epochs. *Last* is the final "
    "epoch's error, the honest protocol. Mean ± sample standard deviation over n runs (seeds). "
    "Δ = ours (best) − paper. \"not run\" means no finished run of this row's exact config was found. "
    "*Epochs* lists the length of the runs included (the paper trained 300)."
)


def find_results(paths: list[str]) -> list[tuple[Path, dict]]:
    """Every results.json at or below the given directories (globs allowed), each once."""
    found: dict[Path, dict] = {}
    for pattern in paths:
        matches = glob.glob(pattern) or [pattern]
        for match in matches:
            root = Path(match)
            files = [root] if root.name == "results.json" else sorted(root.rglob("results.json"))
            for f in files:
                try:
                    found[f.resolve()] = json.loads(f.read_text())
                except (OSError, json.JSONDecodeError) as err:
                    print(f"warning: skipping {f}: {err}", file=sys.stderr)
    return [(_relative(p.parent), r) for p, r in sorted(found.items())]


def _relative(path: Path) -> Path:
    try:
        return path.relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def stats(values: list[float]) -> tuple[float, float | None]:
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)


def fmt_mean_std(values: list[float]) -> str:
    if not values:
        return "not run"
    mean, std = stats(values)
    return f"{mean:.2f} ± {std:.2f} (n={len(values)})" if std is not None else f"{mean:.2f} (n=1)"


def fmt_mean(values: list[float]) -> str:
    return f"{statistics.fmean(values):.2f}" if values else "not run"


def fmt_paper(value) -> str:
    return "—" if value is None else f"{value:.2f}"


def group_runs(runs: list[tuple[Path, dict]], drop: tuple[str, ...] = ()) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for run_dir, result in runs:
        groups[run_key(result, drop)].append({**result, "_dir": str(run_dir)})
    return groups


# --- how a run's model and regularizer are shown ------------------------------------------------------------
def _fmt_value(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _signature_defaults(target: str) -> dict[str, Any] | None:
    """The keyword defaults of the class or function ``target`` names (None if it cannot be imported)."""
    module, _, name = target.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), name)
        return {p.name: p.default for p in inspect.signature(obj).parameters.values()}
    except (ImportError, AttributeError, ValueError, TypeError):
        return None


def describe_options(target: str, options: dict[str, Any]) -> str:
    """The options that say what this component is: those without a default (a model's depth, width,
    blocks), those that differ from their default, and switches passed on (``shakedrop``) when on."""
    defaults = _signature_defaults(target)
    shown = []
    for key, value in options.items():
        if isinstance(value, dict) and "_target_" in value:  # a nested component (Compose's steps)
            inner = {k: v for k, v in value.items() if not k.startswith("_")}
            shown.append(f"{key}={value['_target_'].rsplit('.', 1)[-1]}({describe_options(value['_target_'], inner)})")
            continue
        if defaults is None or key not in defaults:
            if value in (False, None, 0) and defaults is not None:
                continue  # a switch forwarded to a part of the model, off
        elif defaults[key] is not inspect.Parameter.empty and defaults[key] == value:
            continue
        shown.append(f"{key}={_fmt_value(value)}")
    return ", ".join(shown)


def model_cell(run: dict) -> tuple[str, str]:
    """(the model by its real shape, its options), e.g. ("pyramidnet11", "depth=11, alpha=12, bottleneck=True")."""
    return run["model"], describe_options(run.get("model_target", ""), run.get("model_options", {})) or "—"


def regularizer_cell(run: dict) -> tuple[str, str]:
    """(the regularizer, its options and label smoothing, and every switch that is not the paper's recipe)."""
    options = describe_options(run.get("regularizer_target", ""), run.get("regularizer_params", {}))
    if run.get("label_smoothing"):
        options = ", ".join(filter(None, [options, f"label_smoothing={_fmt_value(run['label_smoothing'])}"]))
    for name, value in (run.get("switches") or {}).items():
        options = ", ".join(filter(None, [options, f"**{name}={value}, not the paper's recipe**"]))
    return str(run.get("regularizer")), options or "—"


# --- the paper's tables and Figure 3 ------------------------------------------------------------------------
def table_markdown(table: dict, groups: dict[str, list[dict]], used: set[str]) -> tuple[str, list]:
    has_top5 = any("top5" in row for row in table["rows"])
    has_params = any("params" in row for row in table["rows"])
    header = ["Method"] + (["Params (paper / ours)"] if has_params else [])
    header += ["Paper top-1", "Ours best top-1", "Ours last top-1", "Δ top-1"]
    if has_top5:
        header += ["Paper top-5", "Ours best top-5", "Ours last top-5"]
    header += ["Epochs"]
    lines = [f"## {table['title']}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    curves = []
    for row in table["rows"]:
        key = config_key(tuple(row_overrides(table, row)))
        runs = groups.get(key, [])
        if runs:
            used.add(key)
        best1 = [r[BEST_TOP1] for r in runs]
        cells = [row["label"]]
        if has_params:
            ours = f"{runs[0]['num_params'] / 1e6:.2f}M" if runs else "not run"
            cells.append(f"{row.get('params', '—')} / {ours}")
        delta = f"{statistics.fmean(best1) - row['top1']:+.2f}" if runs and row.get("top1") is not None else \
            ("not run" if not runs else "—")
        cells += [fmt_paper(row.get("top1")), fmt_mean_std(best1), fmt_mean([r[LAST_TOP1] for r in runs]), delta]
        if has_top5:
            cells += [fmt_paper(row.get("top5")), fmt_mean_std([r[BEST_TOP5] for r in runs]),
                      fmt_mean([r[LAST_TOP5] for r in runs])]
        epochs = sorted({r["epochs"] for r in runs})
        cells.append(", ".join(str(e) for e in epochs) if runs else "—")
        lines.append("| " + " | ".join(cells) + " |")
        if runs:
            curves.append((row["label"], runs))
    published = [row for row in table["rows"] if row.get("published")]
    if published:  # methods with no number for this setting: what their authors report elsewhere
        lines += ["", "Not the paper's methods; their own published numbers, from other settings (not comparable):",
                  *(f"- {row['label']}: {row['published']}" for row in published)]
    lines += ["", PROTOCOL_NOTE, ""]
    return "\n".join(lines), curves


LOCALIZATION_NOTE = (
    "Top-1 localization accuracy (%, higher is better; §4.2 and appendix B): the box of the predicted class's CAM "
    "at threshold 0.15 has IoU ≥ 0.5 with a true box and the top-1 class is right. *Ours* is the last epoch's, "
    "mean ± sample standard deviation over n runs; *best ep.* is at the epoch of the lowest test top-1 error. "
    "GT-known: the box of the true class's CAM, class ignored. MaxBoxAcc: GT-known at the best threshold of "
    "0, 0.01, …, 0.99; MaxBoxAccV2: the boxes of all regions, the mean over IoU 0.3 / 0.5 / 0.7 of the best "
    "threshold's accuracy (both Choe et al., CVPR 2020, beyond the paper; the last three columns at the last "
    "epoch). Boxes and IoU follow clovaai/wsolevaluation: the CAM scaled to 8-bit levels, a pixel in when its "
    "level is above ⌊255·t⌋, the largest 8-connected region, box ends clipped to W − 1, IoU with inclusive "
    "ends. \"not run\" means no finished run of this cell's exact config was found."
)


def localization_markdown(table: dict, groups: dict[str, list[dict]], used: set[str],
                          out: Path) -> tuple[str, list]:
    """Table 9: a column group per data set (paper, ours last and at the best epoch, Δ, GT-known, MaxBoxAcc,
    MaxBoxAccV2), and the sample images with their boxes of one run per cell (``localization.png``, copied)."""
    names = {key: d["name"] for key, d in table["datasets"].items()}
    header = ["Method"]
    for name in names.values():
        header += [f"{name} paper", "ours", "ours best ep.", "Δ", "GT-known", "MaxBoxAcc", "MaxBoxAccV2"]
    lines = [f"## {table['title']}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    rows: dict[str, list[str]] = {}
    found, figures = [], []
    for row, key, overrides in localization_cells(table):
        runs = groups.get(config_key(tuple(overrides)), [])
        cells = rows.setdefault(row["label"], [row["label"]])
        located = [r for r in runs if LAST_TOP1_LOC in r]
        last = [r[LAST_TOP1_LOC] for r in located]
        cells += [fmt_paper(row.get(key)), fmt_mean_std(last), fmt_mean([r[BEST_TOP1_LOC] for r in located]),
                  f"{statistics.fmean(last) - row[key]:+.2f}" if last else "not run",
                  fmt_mean([r[LAST_GT_KNOWN_LOC] for r in located]),
                  fmt_mean([r[LAST_MAX_BOX_ACC] for r in located]),
                  fmt_mean([r[LAST_MAX_BOX_ACC_V2] for r in located if r.get(LAST_MAX_BOX_ACC_V2) is not None])]
        if last:
            used.add(config_key(tuple(overrides)))
            found.append((f"{row['label']}, {names[key]}", len(last), statistics.fmean(last)))
            picture = Path(runs[0]["_dir"]) / "localization.png"
            if picture.is_file():
                name = f"table9_{len(figures) + 1}.png"
                shutil.copyfile(picture, out / name)
                figures.append(f"![{row['label']}, {names[key]}: true boxes green, predicted red]({name})")
    lines += ["| " + " | ".join(cells) + " |" for cells in rows.values()]
    lines += ["", LOCALIZATION_NOTE, ""]
    if figures:
        lines += ["Test images of one run per cell: the CAM of the predicted class, its box (red) and the true "
                  "boxes (green).", "", *figures, ""]
    return "\n".join(lines), found


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


def _scalar(value):
    return value[0] if isinstance(value, list) and len(value) == 1 else value


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


# --- any sweep among the runs --------------------------------------------------------------------------------
def setting(run: dict) -> dict[str, Any]:
    """A run's setting as flat dotted keys, the seed left out: what a sweep can vary."""
    flat: dict[str, Any] = {"dataset": run["dataset"], "model": run.get("model_target", run["model"]),
                            "regularizer": run.get("regularizer_target", run.get("regularizer")),
                            "label_smoothing": run.get("label_smoothing", 0.0), "trainer.epochs": run.get("epochs"),
                            "trainer.lr": run.get("lr"), "trainer.batch_size": run.get("batch_size")}

    def walk(prefix: str, node: dict) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(f"{prefix}{key}.", value)
            else:
                flat[f"{prefix}{key}"] = _scalar(value)

    walk("model.", run.get("model_options", {}))
    walk("regularizer.", run.get("regularizer_params", {}))
    return flat


def find_sweeps(runs: list[dict]) -> list[tuple[str, list[dict], dict[float, list[dict]]]]:
    """(swept key, the runs, runs by value) for every group of runs that differ in one numeric key only,
    seeds aside, with at least two values of it."""
    settings = [setting(r) for r in runs]
    groups: dict[tuple[str, str], dict[float, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for run, flat in zip(runs, settings):
        for key, value in flat.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                rest = json.dumps({k: v for k, v in flat.items() if k != key}, sort_keys=True, default=str)
                groups[key, rest][float(value)].append(run)
    sweeps = []
    for (key, _), by_value in sorted(groups.items()):
        if len(by_value) >= 2:
            members = [r for rs in by_value.values() for r in rs]
            sweeps.append((key, members, dict(by_value)))
    return sweeps


def _without(run: dict, key: str) -> dict:
    """The run with the swept option left out, to describe what its sweep holds fixed."""
    group, _, name = key.partition(".")
    field = {"model": "model_options", "regularizer": "regularizer_params"}.get(group)
    if field is None or "." in name:
        return run
    return {**run, field: {k: v for k, v in run.get(field, {}).items() if k != name}}


def sweeps_markdown(sweeps, out: Path, figures: bool) -> tuple[str, list[str]]:
    lines, files = ["## Sweeps found among the runs", ""], []
    if not sweeps:
        lines += ["None: no runs differ in exactly one numeric key.", ""]
    for i, (key, members, by_value) in enumerate(sweeps, start=1):
        first = _without(members[0], key)
        model, model_options = model_cell(first)
        regularizer, regularizer_options = regularizer_cell(first)
        title = (f"{key} sweep: {first['dataset']}, {model} ({model_options}), {regularizer} "
                 f"({regularizer_options}), {first['epochs']} epochs")
        lines += [f"### {i}. {title}", "", f"| {key} | Ours best top-1 | Ours last top-1 | Ours best top-5 |",
                  "|---|---|---|---|"]
        for value in sorted(by_value):
            rs = by_value[value]
            lines.append(f"| {value:g} | {fmt_mean_std([r[BEST_TOP1] for r in rs])} | "
                         f"{fmt_mean([r[LAST_TOP1] for r in rs])} | {fmt_mean_std([r[BEST_TOP5] for r in rs])} |")
        name = f"sweep{i}_{key.replace('.', '_')}.png"
        if figures and plot_errors_against(out / name, title, key, by_value):
            lines += ["", f"![{key} sweep]({name})"]
            files.append(name)
        lines.append("")
    lines += [PROTOCOL_NOTE, ""]
    return "\n".join(lines), files


def unmatched_markdown(groups: dict[str, list[dict]], used: set[str]) -> tuple[str, list[list[str]]]:
    header = ["Dataset", "Model", "Model options", "Regularizer", "Regularizer options", "Epochs",
              "Ours best top-1", "Ours last top-1", "Ours best top-5", "Ours last top-1 loc", "Runs"]
    rows = []
    for key, runs in sorted(groups.items(), key=lambda kv: (kv[1][0]["dataset"], kv[1][0]["model"],
                                                             str(kv[1][0].get("regularizer")))):
        if key in used:
            continue
        first = runs[0]
        rows.append([first["dataset"], *model_cell(first), *regularizer_cell(first),
                     ", ".join(str(e) for e in sorted({r["epochs"] for r in runs})),
                     fmt_mean_std([r[BEST_TOP1] for r in runs]), fmt_mean([r[LAST_TOP1] for r in runs]),
                     fmt_mean_std([r[BEST_TOP5] for r in runs]),
                     fmt_mean([r[LAST_TOP1_LOC] for r in runs if LAST_TOP1_LOC in r]).replace("not run", "—"),
                     ", ".join(r["_dir"] for r in runs)])
    lines = ["## Runs that match no paper row", ""]
    if rows:
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
    else:
        lines.append("None.")
    lines += ["", PROTOCOL_NOTE, ""]
    return "\n".join(lines), rows


TRANSFER_NOTE = (
    "Each cell: our runs of `python -m cutmix_repro.transfer` with the paper appendix's recipe (`recipe=paper`), "
    "mean ± std over seeds (n = runs), the paper's single number beside it; a row's backbone is the Table 3 run of "
    "the same setting (its ImageNet best top-1 error, mean over the backbones used). Detection: VOC07 test, "
    "11-point AP at IoU > 0.5, difficult objects ignored (evaluation/voc_ap.py). Captioning: the COCO caption "
    "scorers on val2014. VOC07 AP varies by ~0.2 between runs of one setting; the paper's gaps are ~1 point.")


def transfer_markdown(table: dict, runs: list[tuple[Path, dict]], backbone_table: dict) -> tuple[str, list]:
    """Table 10: per backbone row, the paper's line and ours (mean ± std over seeds, n) for each column; runs
    that fit no row (other backbones, the short recipe) in a second table."""
    finished = [r for _, r in runs if r.get(STATUS) == FINISHED and r.get("metrics")]
    columns = table["columns"]
    header = "| Backbone (ImageNet top-1 err) | from | " + " | ".join(c["name"] for c in columns) + " |"
    lines = [f"# {table['title']}", "", header, "|" + "---|" * (len(columns) + 2)]
    used, found = set(), []
    for row in table["rows"]:
        key = config_key(tuple([f"+experiment={backbone_table['experiment']}", *row["overrides"]]))
        mine = [r for r in finished if r.get("backbone", {}).get("run_key") == key and r.get("paper_recipe")]
        used.update(id(r) for r in mine)
        errors = [e for r in mine if (e := r["backbone"].get("imagenet_top1_err")) is not None]
        lines.append(f"| {row['label']} ({row['imagenet_top1']:.2f}) | paper | "
                     + " | ".join(fmt_paper(row.get(c["key"])) for c in columns) + " |")
        cells = []
        for c in columns:
            values = [r["metrics"][c["metric"]] for r in mine if r["task"] == c["task"]]
            cells.append(fmt_mean_std(values))
            if values:
                found.append((f"{row['label']} {c['name']}", len(values), stats(values)[0]))
        ours = f"{fmt_mean(errors)}" if errors else "no run"
        lines.append(f"| {row['label']} ({ours}) | ours | " + " | ".join(cells) + " |")
    lines += ["", TRANSFER_NOTE, ""]
    others: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in finished:
        if id(r) not in used:
            backbone = r.get("backbone", {})
            name = backbone.get("regularizer") or backbone.get("source", "?")
            switches = "".join(f" + {name} {value.split(' (')[0]}" for name, value in r.get("switches", {}).items())
            recipe = r.get("recipe", "?") + switches + ("" if r.get("paper_recipe") else ", not the paper's")
            others[(f"{name} ({backbone.get('source', '?')})", recipe)].append(r)
    if others:
        lines += ["## Other backbones and recipes", "",
                  "| Backbone | recipe | " + " | ".join(c["name"] for c in columns) + " |",
                  "|" + "---|" * (len(columns) + 2)]
        for (name, recipe), rs in sorted(others.items()):
            cells = [fmt_mean_std([r["metrics"][c["metric"]] for r in rs if r["task"] == c["task"]]) for c in columns]
            lines.append(f"| {name} | {recipe} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines), found


def generate(paths: list[str], out: Path, figures: bool = True) -> dict[str, Any]:
    """Write every table and figure for the runs under ``paths`` into ``out``; return a summary."""
    out.mkdir(parents=True, exist_ok=True)
    everything = find_results(paths)
    transfers = [(d, r) for d, r in everything if "task" in r]  # python -m cutmix_repro.transfer runs: Table 10
    for d, r in everything:
        if "task" not in r and "dataset" not in r:
            print(f"warning: skipping {d / 'results.json'}: neither a training nor a transfer run's", file=sys.stderr)
    everything = [(d, r) for d, r in everything if "task" not in r and "dataset" in r]
    runs = [(d, r) for d, r in everything if r.get(STATUS) == FINISHED]
    unfinished = len(everything) - len(runs)
    groups = group_runs(runs)
    tables = load_tables()
    used: set[str] = set()
    summary: dict[str, Any] = {"runs": len(runs), "unfinished": unfinished, "tables": {}, "files": []}
    for name in TABLES + BEYOND_TABLES:
        text, curves = table_markdown(tables[name], groups, used)
        (out / f"{name}.md").write_text(text)
        summary["files"].append(f"{name}.md")
        summary["tables"][name] = [(label, len(rs), stats([r[BEST_TOP1] for r in rs])[0]) for label, rs in curves]
        if figures and plot_curves(out / f"curves_{name}.png", tables[name]["title"], curves):
            summary["files"].append(f"curves_{name}.png")
    for name in LOCALIZATION_TABLES:
        text, found = localization_markdown(tables[name], groups, used, out)
        (out / f"{name}.md").write_text(text)
        summary["files"].append(f"{name}.md")
        summary["tables"][name] = found
    for name in EVALUATION_TABLES:
        if name == "table11":
            text, found, curves = fgsm_markdown(tables[name], groups, used)
            if figures:
                summary["files"] += plot_figure5(out, curves)
        else:
            text, found = ood_markdown(tables[name], groups)
        (out / f"{name}.md").write_text(text)
        summary["files"].append(f"{name}.md")
        summary["tables"][name] = found
    for name in TRANSFER_TABLES:
        text, found = transfer_markdown(tables[name], transfers, tables[tables[name]["backbone_table"]])
        (out / f"{name}.md").write_text(text)
        summary["files"].append(f"{name}.md")
        summary["tables"][name] = found
    for name in FIGURES:
        fig = tables[name]
        text, points = figure_markdown(fig, runs, used)
        (out / f"{name}.md").write_text(text)
        summary["files"].append(f"{name}.md")
        summary["tables"][name] = [(f"{fig['sweep_key']}={k:g}", len(v), stats([r[BEST_TOP1] for r in v])[0])
                                   for k, v in sorted(points.items())]
        if figures and plot_errors_against(out / f"{name}.png", fig["title"], fig["sweep_key"], points,
                                           {float(k): v for k, v in (fig.get("paper") or {}).items()},
                                           fig["baseline"]):
            summary["files"].append(f"{name}.png")
    sweeps = find_sweeps([{**r, "_dir": str(d)} for d, r in runs])
    text, files = sweeps_markdown(sweeps, out, figures)
    (out / "sweeps.md").write_text(text)
    summary["files"] += ["sweeps.md", *files]
    summary["sweeps"] = [(key, sorted(by_value)) for key, _, by_value in sweeps]
    text, extra = unmatched_markdown(groups, used)
    (out / "unmatched_runs.md").write_text(text)
    summary["files"].append("unmatched_runs.md")
    summary["unmatched"] = extra
    return summary


def print_summary(summary: dict[str, Any], out: Path) -> None:
    print(f"{summary['runs']} finished runs read ({summary['unfinished']} unfinished skipped); tables in {out}/")
    tables = load_tables()
    for name, rows in summary["tables"].items():
        table = tables[name]
        if name in EVALUATION_TABLES:
            print(f"  {name}: {len(rows)} {'rows' if name == 'table11' else 'regularizers'} with evaluated runs")
            continue
        if name in TRANSFER_TABLES:
            print(f"  {name}: {len(rows)}/{len(table['rows']) * len(table['columns'])} cells with runs")
            for label, n, mean in rows:
                print(f"    {label:<45} {mean:6.2f}  (n={n})")
            continue
        if name in LOCALIZATION_TABLES:
            print(f"  {name}: {len(rows)}/{len(table['rows']) * len(table['datasets'])} cells with runs")
            for label, n, mean in rows:
                print(f"    {label:<45} top-1 loc {mean:6.2f}  (n={n})")
            continue
        total = len(table.get("rows", table.get("values", [])))
        print(f"  {name}: {len(rows)}/{total} {'rows' if name in TABLES + BEYOND_TABLES else 'points'} with runs")
        for label, n, mean in rows:
            print(f"    {label:<45} best top-1 {mean:6.2f}  (n={n})")
    for key, values in summary["sweeps"]:
        print(f"  sweep over {key}: {', '.join(f'{v:g}' for v in values)} (sweeps.md)")
    if summary["unmatched"]:
        print("  runs matching no paper row (top-1 error, %):")
        print(f"    {'dataset':<9} {'model':<14} {'regularizer':<30} {'epochs':>6}  {'best (mean ± std, n)':<22} last")
        for row in summary["unmatched"]:
            regularizer = f"{row[3]} {row[4]}" if row[4] != "—" else row[3]
            print(f"    {row[0]:<9} {row[1]:<14} {regularizer:<30} {row[5]:>6}  {row[6]:<22} {row[7]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cutmix_repro.report",
                                     description=" ".join(__doc__.split("\n\n")[0].split()))  # the first paragraph
    parser.add_argument("paths", nargs="+", help="run or multirun directories (globs allowed)")
    parser.add_argument("--out", default="runs/report",
                        help="where the tables and figures go (default: runs/report, never a folder of the repository)")
    parser.add_argument("--no-figures", action="store_true", help="write the Markdown tables only")
    args = parser.parse_args(argv)
    missing = [p for p in args.paths if not glob.glob(p)]
    if missing:
        print(f"error: no run directory at {missing[0]!r}: give run or multirun directories or globs",
              file=sys.stderr)
        return 2
    out = Path(args.out)
    summary = generate(args.paths, out, figures=not args.no_figures)
    print_summary(summary, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
