"""Table 10: the transfer runs of ``python -m cutmix_repro.transfer``, in their backbones' rows."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from ..engine.records import (
    FINISHED,
    STATUS,
)
from ..paper import (
    config_key,
)
from .runs import fmt_mean, fmt_mean_std, fmt_paper, stats

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
