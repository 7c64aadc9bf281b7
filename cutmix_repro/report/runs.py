"""Reading runs: every ``results.json`` below the given folders, grouped by their training setting; the
numbers' formats; how a run's model and regularizer are shown."""

from __future__ import annotations

import glob
import importlib
import inspect
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..paper import (
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

def _scalar(value):
    return value[0] if isinstance(value, list) and len(value) == 1 else value
