"""How many runs a reproduce script launches and, from throughput measured by
``cutmix_repro.bench`` on a GPU (``results/bench/throughput.json``), how many GPU-hours.

``python -m cutmix_repro.estimate --seeds 0,1,2 --row "+experiment=... regularizer=..." ... -- EXTRA``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser

from .paper import compose, dataset_name

TRAIN_IMAGES = {"cifar10": 50_000, "cifar100": 50_000, "imagenet": 1_281_167, "digits": 1_438}
THROUGHPUT_FILE = Path("results/bench/throughput.json")


def expand(overrides: list[str]) -> tuple[int, list[str]]:
    """(number of runs the overrides sweep over, the overrides with each sweep's first value)."""
    count, first = 1, []
    for override in OverridesParser.create().parse_overrides(overrides):
        if override.is_sweep_override():
            values = list(override.sweep_string_iterator())
            count *= len(values)
            first.append(f"{override.get_key_element()}={values[0]}")
        else:
            first.append(override.input_line)
    return count, first


def measured_throughput(model: str, dataset: str, path: Path = THROUGHPUT_FILE) -> dict | None:
    if not path.exists():
        return None
    kind = "imagenet" if dataset == "imagenet" else "cifar"
    for entry in json.loads(path.read_text()):
        if entry.get("model") == model and entry.get("data") == kind and entry.get("device", "cpu") != "cpu":
            return entry
    return None


def estimate(rows: list[str], seeds: str, extra: list[str]) -> tuple[int, float | None, list[str]]:
    total, hours, notes = 0, 0.0, []
    for row in rows:
        count, first = expand([*row.split(), f"seed={seeds}", *extra])
        cfg = compose(first)
        total += count
        data, model = dataset_name(cfg), cfg.model.name
        images = TRAIN_IMAGES.get(data, cfg.dataset.get("train_size", 0))
        measured = measured_throughput(model, data)
        if measured is None or hours is None:
            if measured is None:
                notes.append(f"no measured GPU throughput for {model} on {data} in {THROUGHPUT_FILE}")
            hours = None
            continue
        hours += count * cfg.trainer.epochs * images / measured["images_per_s"] / 3600
        notes.append(f"{model}: {measured['images_per_s']:.0f} img/s on {measured['device']} ({measured['date']})")
    return total, hours, sorted(set(notes))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(prog="python -m cutmix_repro.estimate")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--row", action="append", default=[], help="one row's overrides")
    args = parser.parse_args(own)
    total, hours, notes = estimate(args.row, args.seeds, extra)
    print(f"{len(args.row)} settings, {total} runs in all")
    if hours is None:
        print("estimate: none — " + "; ".join(n for n in notes if n.startswith("no measured")))
    else:
        print(f"estimate: {hours:.1f} GPU-hours ({'; '.join(notes)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
