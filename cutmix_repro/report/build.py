"""``python -m cutmix_repro.report``: every table and figure written from the runs found, and a summary."""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path
from typing import Any

from ..engine.records import (
    BEST_TOP1,
    FINISHED,
    STATUS,
)
from ..paper import (
    BEYOND_TABLES,
    EVALUATION_TABLES,
    FIGURES,
    LOCALIZATION_TABLES,
    REAL_TABLES,
    TABLES,
    TRANSFER_TABLES,
    load_tables,
)
from .evaluation import fgsm_markdown, ood_markdown, plot_figure5
from .figures import figure_markdown, plot_curves, plot_errors_against
from .localization import localization_markdown
from .real import real_markdown
from .runs import find_results, group_runs, stats
from .sweeps import find_sweeps, sweeps_markdown
from .tables import table_markdown, unmatched_markdown
from .transfer import transfer_markdown


def package_doc() -> str:
    return sys.modules[__package__].__doc__


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
    for name in REAL_TABLES:
        text, found = real_markdown(tables[name], groups, used)
        (out / f"{name}.md").write_text(text)
        summary["files"].append(f"{name}.md")
        summary["tables"][name] = [(label, n, mean) for label, (n, mean) in found.items()]
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
        print(f"  {name}: {len(rows)}/{total} {'points' if name in FIGURES else 'rows'} with runs")
        which = "last" if name in REAL_TABLES else "best"
        for label, n, mean in rows:
            print(f"    {label:<45} {which} top-1 {mean:6.2f}  (n={n})")
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
                                     description=" ".join(package_doc().split("\n\n")[0].split()))  # 1st paragraph
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

