"""Table 9: weakly supervised localization, ours beside the paper's."""

from __future__ import annotations

import shutil
import statistics
from pathlib import Path

from ..engine.records import (
    BEST_TOP1_LOC,
    LAST_GT_KNOWN_LOC,
    LAST_MAX_BOX_ACC,
    LAST_MAX_BOX_ACC_V2,
    LAST_TOP1_LOC,
)
from ..paper import (
    config_key,
    localization_cells,
)
from .runs import fmt_mean, fmt_mean_std, fmt_paper

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
