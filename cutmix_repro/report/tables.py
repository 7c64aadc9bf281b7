"""The paper's error-rate tables (Tables 3-8, and the beyond-the-paper comparison), and the runs that match no
row."""

from __future__ import annotations

import statistics

from ..engine.records import (
    BEST_TOP1,
    BEST_TOP5,
    LAST_TOP1,
    LAST_TOP1_LOC,
    LAST_TOP5,
)
from ..paper import (
    config_key,
    row_overrides,
)
from .runs import PROTOCOL_NOTE, fmt_mean, fmt_mean_std, fmt_paper, model_cell, regularizer_cell


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
