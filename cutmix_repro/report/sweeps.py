"""Any sweep among the runs: runs that differ in one numeric key (and the seed), as a table and a plot."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..engine.records import (
    BEST_TOP1,
    BEST_TOP5,
    LAST_TOP1,
)
from .figures import plot_errors_against
from .runs import PROTOCOL_NOTE, _scalar, fmt_mean, fmt_mean_std, model_cell, regularizer_cell


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
