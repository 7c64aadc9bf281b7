"""Error-rate tables laid out like the paper's, written from real runs.

``python -m cutmix_repro.report RUN_DIR_OR_GLOB... [--out results]`` reads every
``results.json`` below the given run or multirun directories and writes, under ``--out``:
one Markdown table per paper table (rows in the paper's order: paper top-1/top-5, ours
best-epoch mean ± std over seeds with the number of runs, ours last-epoch mean, difference
to the paper), the Figure 3 sweeps as tables and PNG plots, a training-curve plot per
table, and ``unmatched_runs.md`` for runs that match no paper row. Cells with no run say
"not run": nothing is ever filled from the paper into "ours".
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from .paper import FIGURES, TABLES, config_key, load_tables, row_overrides, run_key

PROTOCOL_NOTE = (
    "*Best* is each run's lowest test error over all epochs — picked on the test set, which is how the paper "
    "reports (REFERENCE.md §2); *last* is the final epoch's error, the honest protocol. Mean ± sample standard "
    "deviation over n runs (seeds). Δ = ours (best) − paper. \"not run\" means no finished run of this row's exact "
    "config was found. *Epochs* lists the length of the runs included (the paper trained 300)."
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
        best1 = [r["best_top1_err"] for r in runs]
        cells = [row["label"]]
        if has_params:
            ours = f"{runs[0]['num_params'] / 1e6:.2f}M" if runs else "not run"
            cells.append(f"{row.get('params', '—')} / {ours}")
        delta = f"{statistics.fmean(best1) - row['top1']:+.2f}" if runs else "not run"
        cells += [fmt_paper(row.get("top1")), fmt_mean_std(best1), fmt_mean([r["last_top1_err"] for r in runs]), delta]
        if has_top5:
            cells += [fmt_paper(row.get("top5")), fmt_mean_std([r["best_top5_err"] for r in runs]),
                      fmt_mean([r["last_top5_err"] for r in runs])]
        epochs = sorted({r["epochs"] for r in runs})
        cells.append(", ".join(str(e) for e in epochs) if runs else "—")
        lines.append("| " + " | ".join(cells) + " |")
        if runs:
            curves.append((row["label"], runs))
    lines += ["", PROTOCOL_NOTE, ""]
    return "\n".join(lines), curves


def sweep_markdown(fig: dict, runs: list[tuple[Path, dict]], used: set[str]):
    """Figure 3's sweeps: runs of the figure's config with any value of the swept key."""
    drop = (fig["sweep_key"],)
    key = config_key(tuple(row_overrides(fig, fig)), drop)
    points: dict[float, list[dict]] = defaultdict(list)
    for _, result in runs:
        if run_key(result, drop) == key:
            value = result["regularizer_params"].get(fig["sweep_key"])
            if isinstance(value, list) and len(value) == 1:
                value = value[0]
            if isinstance(value, int | float):
                points[float(value)].append(result)
                used.add(run_key(result))
    paper = {float(k): v for k, v in (fig.get("paper") or {}).items()}
    lines = [f"## {fig['title']}", "", f"| {fig['sweep_key']} | Paper top-1 | Ours best top-1 | Ours last top-1 |",
             "|---|---|---|---|"]
    for value in sorted(set(map(float, fig["values"])) | set(points)):
        rs = points.get(value, [])
        lines.append(f"| {value:g} | {fmt_paper(paper.get(value))} | {fmt_mean_std([r['best_top1_err'] for r in rs])}"
                     f" | {fmt_mean([r['last_top1_err'] for r in rs])} |")
    lines += ["", f"Paper baseline (no CutMix): {fig['baseline']:.2f}. Other points of the paper's figure exist only "
              "as plotted points, so they are not listed.", "", PROTOCOL_NOTE, ""]
    return "\n".join(lines), points


def plot_sweep(path: Path, fig: dict, points: dict[float, list[dict]]) -> bool:
    if not points:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = sorted(points)
    means = [stats([r["best_top1_err"] for r in points[x]])[0] for x in xs]
    errs = [stats([r["best_top1_err"] for r in points[x]])[1] or 0.0 for x in xs]
    figure, ax = plt.subplots(figsize=(5, 3.5))
    ax.errorbar(xs, means, yerr=errs, marker="o", capsize=3, label="ours (best epoch, mean ± std)")
    ax.axhline(fig["baseline"], color="gray", linestyle="--", label="paper baseline")
    for x, y in (fig.get("paper") or {}).items():
        ax.plot([float(x)], [y], "r*", markersize=10, label="paper")
    if fig["sweep_key"] == "alpha":
        ax.set_xscale("log")
    ax.set_xlabel(fig["sweep_key"])
    ax.set_ylabel("top-1 error (%)")
    ax.set_title(fig["title"], fontsize=8)
    ax.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True


def plot_curves(path: Path, title: str, curves: list[tuple[str, list[dict]]]) -> bool:
    """Validation top-1 error per epoch for every row that has runs (mean over seeds)."""
    if not curves:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(6, 4))
    for label, runs in curves:
        by_epoch: dict[int, list[float]] = defaultdict(list)
        for run in runs:
            for entry in run.get("history", []):
                by_epoch[entry["epoch"]].append(entry["val_top1_err"])
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


def unmatched_markdown(groups: dict[str, list[dict]], used: set[str]) -> tuple[str, list[list[str]]]:
    header = ["Dataset", "Model", "Regularizer", "Options", "Epochs", "Ours best top-1", "Ours last top-1",
              "Ours best top-5", "Runs"]
    rows = []
    for key, runs in sorted(groups.items(), key=lambda kv: (kv[1][0]["dataset"], kv[1][0]["model"],
                                                             kv[1][0].get("regularizer", ""))):
        if key in used:
            continue
        first = runs[0]
        params = first.get("regularizer_params", {})
        options = [f"{k}={v}" for k, v in params.items() if k in ("alpha", "prob", "layers")]
        options += [f"{k}={v}" for k, v in first.get("model_options", {}).items()
                    if k in ("shakedrop", "drop_path_rate", "dropblock") and v]
        if first.get("label_smoothing"):
            options.append(f"label_smoothing={first['label_smoothing']}")
        rows.append([first["dataset"], first["model"], str(first.get("regularizer")), ", ".join(options) or "—",
                     ", ".join(str(e) for e in sorted({r["epochs"] for r in runs})),
                     fmt_mean_std([r["best_top1_err"] for r in runs]), fmt_mean([r["last_top1_err"] for r in runs]),
                     fmt_mean_std([r["best_top5_err"] for r in runs]), ", ".join(r["_dir"] for r in runs)])
    lines = ["## Runs that match no paper row", ""]
    if rows:
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
    else:
        lines.append("None.")
    lines += ["", PROTOCOL_NOTE, ""]
    return "\n".join(lines), rows


def generate(paths: list[str], out: Path, figures: bool = True) -> dict[str, Any]:
    """Write every table and figure for the runs under ``paths`` into ``out``; return a summary."""
    out.mkdir(parents=True, exist_ok=True)
    everything = find_results(paths)
    runs = [(d, r) for d, r in everything if r.get("status") == "finished"]
    unfinished = len(everything) - len(runs)
    groups = group_runs(runs)
    tables = load_tables()
    used: set[str] = set()
    summary: dict[str, Any] = {"runs": len(runs), "unfinished": unfinished, "tables": {}, "files": []}
    for name in TABLES:
        text, curves = table_markdown(tables[name], groups, used)
        (out / f"{name}.md").write_text(text)
        summary["files"].append(f"{name}.md")
        summary["tables"][name] = [(label, len(rs), stats([r["best_top1_err"] for r in rs])[0]) for label, rs in curves]
        if figures and plot_curves(out / f"curves_{name}.png", tables[name]["title"], curves):
            summary["files"].append(f"curves_{name}.png")
    for name in FIGURES:
        text, points = sweep_markdown(tables[name], runs, used)
        (out / f"{name}.md").write_text(text)
        summary["files"].append(f"{name}.md")
        summary["tables"][name] = [(f"{tables[name]['sweep_key']}={k:g}", len(v),
                                    stats([r["best_top1_err"] for r in v])[0]) for k, v in sorted(points.items())]
        if figures and plot_sweep(out / f"{name}.png", tables[name], points):
            summary["files"].append(f"{name}.png")
    text, extra = unmatched_markdown(groups, used)
    (out / "unmatched_runs.md").write_text(text)
    summary["files"].append("unmatched_runs.md")
    summary["unmatched"] = extra
    return summary


def print_summary(summary: dict[str, Any], out: Path) -> None:
    print(f"{summary['runs']} finished runs read ({summary['unfinished']} unfinished skipped); tables in {out}/")
    tables = load_tables()
    for name, rows in summary["tables"].items():
        total = len(tables[name].get("rows", tables[name].get("values", [])))
        print(f"  {name}: {len(rows)}/{total} {'rows' if name in TABLES else 'points'} with runs")
        for label, n, mean in rows:
            print(f"    {label:<45} best top-1 {mean:6.2f}  (n={n})")
    if summary["unmatched"]:
        print("  runs matching no paper row (top-1 error, %):")
        print(f"    {'dataset':<9} {'model':<14} {'regularizer':<28} {'epochs':>6}  {'best (mean ± std, n)':<22} last")
        for row in summary["unmatched"]:
            regularizer = f"{row[2]} {row[3]}" if row[3] != "—" else row[2]
            print(f"    {row[0]:<9} {row[1]:<14} {regularizer:<28} {row[4]:>6}  {row[5]:<22} {row[6]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cutmix_repro.report", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="run or multirun directories (globs allowed)")
    parser.add_argument("--out", default="results", help="where the tables and figures go (default: results)")
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
