"""The paper's facts (``paper_tables.yaml``): its result tables, and how runs are matched to its rows.

A row is keyed by the config that reproduces it: the table's experiment plus the row's Hydra
overrides, composed with the project's own configs. A run matches a row when the run's
resolved config, as recorded in its ``results.json``, has the same key. The reproduce command
launches exactly these rows (``launches``), so a row is written down once.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import yaml

from .config import compose, params, recipe_switches

TABLES = ("table3", "table4", "table5", "table6", "table7", "table8")
LOCALIZATION_TABLES = ("table9",)  # a row runs on several data sets, one experiment each; higher is better
EVALUATION_TABLES = ("table11", "table12")  # measured by python -m cutmix_repro.evaluate on trained runs
BEYOND_TABLES = ("beyond_mixers",)  # not the paper's: later methods under the paper's protocol, same layout
# the paper's claims on real images: seeds and a test each
REAL_TABLES = ("fashion_mnist_cpu", "fashion_mnist", "fashion_mnist_localization")
TRANSFER_TABLES = ("table10",)  # measured by python -m cutmix_repro.transfer from trained ImageNet ResNet-50s
FIGURES = ("figure3_alpha", "figure3_layers")


@functools.lru_cache(maxsize=1)
def load_tables() -> dict[str, Any]:
    text = resources.files("cutmix_repro").joinpath("paper_tables.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _norm(value):
    """Numbers as floats, one-element lists as their element, dicts sorted: comparable keys."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        items = [_norm(v) for v in value]
        return items[0] if len(items) == 1 else items
    return value


def make_key(dataset: str, model_target: str, model_options: dict, regularizer_target: str,
             regularizer_params: dict, label_smoothing: float, drop: tuple[str, ...] = (),
             switches: dict | None = None) -> str:
    """A canonical string for one setting; ``drop`` removes swept regularizer parameters. ``switches`` (recipe
    options that are not the paper's, ``config.recipe_switches``) are part of it when there are any."""
    params = {k: v for k, v in regularizer_params.items() if k not in drop}
    key = {"dataset": dataset, "model": {"target": model_target, "options": _norm(model_options)},
           "regularizer": {"target": regularizer_target, "params": _norm(params)},
           "label_smoothing": _norm(label_smoothing)}
    if switches:
        key["switches"] = dict(sorted(switches.items()))
    return json.dumps(key, sort_keys=True)


def run_key(result: dict, drop: tuple[str, ...] = ()) -> str:
    return make_key(result["dataset"], result.get("model_target", ""), result.get("model_options", {}),
                    result.get("regularizer_target", ""), result.get("regularizer_params", {}),
                    result.get("label_smoothing", 0.0), drop, result.get("switches"))


def dataset_name(cfg) -> str:
    """The data set's name as its factory reports it: ``dataset.name``, else the factory's name."""
    return cfg.dataset.get("name") or cfg.dataset._target_.rsplit(".", 1)[-1]


@functools.lru_cache(maxsize=256)
def config_key(overrides: tuple[str, ...], drop: tuple[str, ...] = ()) -> str:
    cfg = compose(list(overrides))
    return make_key(dataset_name(cfg), cfg.model._target_, params(cfg.model), cfg.regularizer._target_,
                    params(cfg.regularizer), cfg.label_smoothing, drop, recipe_switches(cfg))


def row_overrides(table: dict, row: dict) -> list[str]:
    experiment = row.get("experiment", table["experiment"])
    return [f"+experiment={experiment}", *row.get("overrides", table.get("overrides", []))]


def localization_cells(table: dict) -> list[tuple[dict, str, list[str]]]:
    """(row, data set key, the overrides that reproduce it) for every cell of a localization table."""
    cells = []
    for row in table["rows"]:
        for key, dataset in table["datasets"].items():
            experiment = dataset["experiments"][row["model"]]
            cells.append((row, key, [f"+experiment={experiment}", *row.get("overrides", [])]))
    return cells


def launches(name: str) -> list[tuple[str, list[str]]]:
    """(label, Hydra overrides) of every multirun that reproduces table or figure ``name``, seeds
    included: one per table row (per row and data set for a localization table); a figure's sweep and
    the baseline it is drawn against."""
    table = load_tables()[name]
    seeds = "seed=" + ",".join(str(s) for s in range(table["seeds"]))
    if name in LOCALIZATION_TABLES:
        return [(f"{row['label']}, {table['datasets'][key]['name']}", [*overrides, seeds])
                for row, key, overrides in localization_cells(table)]
    if name in FIGURES:
        values = ",".join(str(v) for v in table["values"])
        sweep = [*row_overrides(table, table), f"regularizer.{table['sweep_key']}={values}", seeds]
        baseline = [*row_overrides(table, {"overrides": table["baseline_overrides"]}), seeds]
        return [(f"{table['sweep_key']} sweep", sweep), ("baseline", baseline)]
    return [(row["label"], [*row_overrides(table, row), seeds]) for row in table["rows"]]
