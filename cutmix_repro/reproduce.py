"""One table or figure of the paper, one command: ``python -m cutmix_repro.reproduce table5``.

The runs come from ``paper_tables.yaml`` (``paper.launches``): one Hydra multirun per table row, with
the paper's number of seeds (three on CIFAR, one on ImageNet); for Figure 3, the sweep and its
baseline. It first prints how many runs that is and a GPU-hours estimate from the throughput that
``python -m cutmix_repro.bench`` measured on a GPU (``results/bench/throughput.json``; where none was
measured it says so), then trains, then writes the report. Extra arguments are Hydra overrides for every
run (``trainer.epochs=2`` for a smoke pass, ``hydra/launcher=slurm`` for one SLURM job per run).

    python -m cutmix_repro.reproduce table5 [--dry-run] [--runs-dir runs] [--out runs/report] [OVERRIDES...]

``--dry-run`` prints each launch as a command to paste (under a comment naming its row); ``--fuse`` trains each
launch's runs (a row's seeds) as fused groups (``hydra/launcher=fused``); each launch's runs go to
``RUNS_DIR/NAME/<its overrides>`` (``runs/table6/cifar100_pyramidnet110,regularizer=cutmix``).

Tables 11 and 12 measure trained models: ``reproduce table11`` (Table 3's ResNet-50s) and ``reproduce
table12`` (Table 5's PyramidNet-200s) run ``python -m cutmix_repro.evaluate`` on the finished runs of
their rows under ``--runs-dir`` (extra arguments go to it, e.g. ``--ood-crop data/TinyImageNet``), say
which training runs are missing, and write the report.

Table 10 transfers trained backbones: ``reproduce table10`` finds the Table 3 ResNet-50 runs of its four rows
under ``--runs-dir`` (baseline, Mixup, Cutout, CutMix), names the missing ones, and launches ``python -m
cutmix_repro.transfer`` for each found backbone and task (SSD, Faster R-CNN, NIC) with ``seeds`` seeds each;
extra arguments are the transfer's overrides (``task.data.root=...``, ``recipe=short``).
"""

from __future__ import annotations

import argparse
import functools
import json
import shlex
import subprocess
import sys
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from .config import compose
from .models.factory import arch_name
from .paper import (
    BEYOND_TABLES,
    EVALUATION_TABLES,
    FIGURES,
    LOCALIZATION_TABLES,
    REAL_TABLES,
    TABLES,
    TRANSFER_TABLES,
    config_key,
    dataset_name,
    launches,
    load_tables,
    run_key,
)
from .throughput import data_kind, measured_throughput, throughput_file

NAMES = TABLES + LOCALIZATION_TABLES + TRANSFER_TABLES + EVALUATION_TABLES + FIGURES + BEYOND_TABLES + REAL_TABLES
# what each evaluation table measures, and the table whose training runs it needs
EVALUATIONS = {"table11": (["clean", "fgsm", "occlusion", "in-between"], "table3"),
               "table12": (["clean", "ood", "calibration"], "table5")}
TRAIN_IMAGES = {"cifar10": 50_000, "cifar100": 50_000, "imagenet": 1_281_167, "digits": 1_438, "cub": 5_994,
                "imagenet_boxes": 1_281_167, "fashion_mnist": 60_000}
TEST_IMAGES = {"cifar10": 10_000, "cifar100": 10_000, "fashion_mnist": 10_000}  # evaluated after every epoch


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


def cpu_estimate(commands: list[list[str]], jobs: int, path: Path | None = None) -> str | None:
    """A CPU table's wall time, from the summed rate of ``jobs`` runs side by side that ``bench --only cpu`` measured on
    this kind of CPU (training images per epoch, plus the test set at a third of the cost), or None."""
    path = throughput_file() if path is None else path
    entries = json.loads(path.read_text()) if path.exists() else []
    seconds, used = 0.0, None
    for overrides in commands:
        count, first = expand(overrides)
        cfg = compose([o for o in first if not o.startswith("hydra")])
        data, model = dataset_name(cfg), arch_name(cfg.model)
        found = [e for e in entries if e.get("device") == "cpu" and e.get("model") == model and e.get("data") == data
                 and e.get("jobs") == jobs]
        if not found:
            return None
        used = max(found, key=lambda e: e["date"])
        images = cfg.dataset.get("train_subset") or TRAIN_IMAGES.get(data, 0)
        seconds += count * cfg.trainer.epochs * (images + TEST_IMAGES.get(data, 0) / 3) / used["images_per_s"]
    return (f"about {seconds / 60:.0f} minutes on this CPU, {jobs} runs side by side (their summed rate "
            f"{used['images_per_s']:.0f} img/s measured by `bench --only cpu` on {used['date']}, {used['cpu']})")


IMAGE_SHAPES = {"cifar": (3, 32, 32), "fashion_mnist": (1, 28, 28), "imagenet": (3, 224, 224)}


@functools.lru_cache(maxsize=16)
def _flops(model_json: str, shape: tuple[int, ...]) -> float:
    """Forward FLOPs per image of the model a config (as JSON) describes, on images of ``shape``."""
    from .bench.common import forward_flops
    from .config import build
    from .models import model_inputs

    return forward_flops(build(OmegaConf.create(json.loads(model_json)), "model", **model_inputs(10, shape[0])), shape)


def flop_scaled_throughput(cfg, dataset: str, path: Path | None = None) -> dict | None:
    """Where a model on small images (32×32, 28×28) has no measured GPU rate: the fastest measured solo rate of a model
    of the paper on 32×32 images, scaled by the two models' forward FLOPs per image (the same FLOP/s achieved), or
    None."""
    from .models import list_models, model_config

    path = throughput_file() if path is None else path
    if not path.exists() or data_kind(dataset) == "imagenet":  # a 32×32 rate says little of a 224×224 model
        return None
    solo = [e for e in json.loads(path.read_text()) if e.get("device", "cpu") != "cpu" and e.get("members", 1) == 1
            and e.get("data") == "cifar" and e.get("model") in list_models()]
    if not solo:
        return None
    reference = max(solo, key=lambda e: e["images_per_s"])
    shape = IMAGE_SHAPES[data_kind(dataset)]
    ours = _flops(json.dumps(OmegaConf.to_container(cfg.model, resolve=True), sort_keys=True), shape)
    theirs = _flops(json.dumps(OmegaConf.to_container(model_config(reference["model"]), resolve=True)),
                    IMAGE_SHAPES["cifar"])
    return {**reference, "images_per_s": reference["images_per_s"] * theirs / ours,
            "reference": f"{reference['model']}'s {reference['images_per_s']:.0f} img/s on {reference['device']} "
                         f"({reference['date']})"}


def estimate(commands: list[list[str]], fuse: bool = False) -> tuple[int, float | None, list[str]]:
    """(runs in all, GPU-hours or None where some model has no measured GPU throughput, notes). With ``fuse``,
    each launch's runs train as fused groups of up to ``fuse.max_members``: at a measured fused group's aggregate
    rate where there is one, else (said so) at the solo rate."""
    total, hours, notes = 0, 0.0, set()
    for overrides in commands:
        count, first = expand(overrides)
        cfg = compose([o for o in first if not o.startswith("hydra")])
        total += count
        data, model = dataset_name(cfg), arch_name(cfg.model)
        group = min(count, int(cfg.fuse.max_members)) if fuse else 1
        measured = measured_throughput(model, data, members=group)
        if measured is None:
            measured = flop_scaled_throughput(cfg, data)
            if measured is None:
                notes.add(f"no measured GPU throughput for {model} on {data} in {throughput_file()}")
                hours = None
                continue
            notes.add(f"{model} on {data}: no rate measured; {measured['images_per_s']:.0f} img/s scaled by forward "
                      f"FLOPs from {measured['reference']} (a lower bound on the hours: a small model uses a GPU less "
                      "well; scripts/gpu_check.sh fashion measures it)")
        if hours is not None:
            images = TRAIN_IMAGES.get(data, cfg.dataset.get("train_size", 0))
            hours += count * cfg.trainer.epochs * images / measured["images_per_s"] / 3600
        members = measured.get("members", 1)
        mode = measured.get("mode") if members == 1 else None
        mode = ("captured step (trainer.capture), " if mode == "captured" else f"compile mode {mode}, ") if mode else ""
        kind = f"fused, {members} members, aggregate " if members > 1 else ""
        notes.add(f"{model}: {kind}{measured['images_per_s']:.0f} img/s on {measured['device']} "
                  f"({mode}{measured['date']})")
        if fuse and group > 1 and members == 1:
            notes.add(f"{model}: no fused rate measured for groups of {group}, the solo rate used "
                      "(scripts/gpu_check.sh fused measures it)")
    return total, hours, sorted(notes)


def folder_name(overrides: list[str]) -> str:
    """A launch's folder, named by what it holds: its overrides but the seeds, the experiment by its name,
    a swept key with its values joined by '_' (``cifar100_pyramidnet110,regularizer=cutmix``,
    ``cifar100_pyramidnet,regularizer.alpha=0.1_0.25_0.5``)."""
    parts = []
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.get_key_element().lstrip("+~")
        if key == "seed":
            continue
        values = list(override.sweep_string_iterator()) if override.is_sweep_override() else [override.value()]
        value = "_".join(str(v) for v in values)
        parts.append(value if key == "experiment" else f"{key}={value}")
    return ",".join(parts).replace("/", "-").replace(" ", "")


def commands_for(name: str, extra: list[str], runs_dir: str) -> list[tuple[str, list[str]]]:
    return [(label, [*overrides, f'hydra.sweep.dir="{runs_dir}/{name}/{folder_name(overrides)}"', *extra])
            for label, overrides in launches(name)]


def python() -> str:
    """The interpreter, as a user would type it from here (``.venv/bin/python`` inside the clone)."""
    exe = Path(sys.executable)
    try:
        return str(exe.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(exe)


def show(label: str, command: list[str]) -> None:
    """The command as a line a user can paste, under a comment naming the row."""
    print(f"# {label}\n{shlex.join([python(), *command])}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cutmix_repro.reproduce",
                                     description=" ".join(__doc__.split("\n\n")[0].split()))  # the first paragraph
    parser.add_argument("name", help=f"one of {', '.join(NAMES)}")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run")
    parser.add_argument("--dry-run", action="store_true", help="print the training commands, run nothing")
    parser.add_argument("--runs-dir", default="runs", help="where the runs go (default: runs)")
    parser.add_argument("--out", default="runs/report", help="where the report goes (default: runs/report)")
    parser.add_argument("--jobs", type=int, default=None, help="runs trained side by side, each with an equal share "
                        "of the CPU threads (default: the table's `jobs`, else 1)")
    parser.add_argument("--fuse", action="store_true", help="train each launch's runs as fused groups "
                        "(hydra/launcher=fused) and estimate from a fused rate where one was measured")
    args, passed_on = parser.parse_known_intermixed_args(argv)
    if args.name not in NAMES:
        print(f"error: {args.name!r} is not a table or figure of the paper: choose one of "
              f"{', '.join(NAMES)}", file=sys.stderr)
        return 2
    if args.name in EVALUATION_TABLES:
        return evaluate_table(args, [*args.overrides, *passed_on])
    if args.name in TRANSFER_TABLES:
        if passed_on:
            print(f"error: {passed_on[0]!r} is not an option of python -m cutmix_repro.reproduce", file=sys.stderr)
            return 2
        return transfer_table(args)
    if passed_on:
        print(f"error: {passed_on[0]!r} is not an option of python -m cutmix_repro.reproduce", file=sys.stderr)
        return 2
    if args.jobs is None:
        args.jobs = int(load_tables()[args.name].get("jobs", 1))
    if args.jobs < 1 or (args.jobs > 1 and args.fuse):
        print(f"error: --jobs={args.jobs} is invalid: a number of runs side by side >= 1 (without --fuse, which trains "
              "a launch's runs as one model)", file=sys.stderr)
        return 2
    commands = commands_for(args.name, [*args.overrides, *(["hydra/launcher=fused"] if args.fuse else [])],
                            args.runs_dir)
    total, hours, notes = estimate([overrides for _, overrides in commands], args.fuse)
    print(f"{args.name}: {len(commands)} settings, {total} runs in all")
    on_cpu = cpu_estimate([overrides for _, overrides in commands], args.jobs) if args.jobs > 1 else None
    if on_cpu:
        print(f"estimate: {on_cpu}")
    if hours is None:
        print("estimate: none on a GPU — " + "; ".join(n for n in notes if n.startswith("no measured")))
    else:
        print(f"estimate: {hours:.1f} GPU-hours ({'; '.join(notes)})")
    train = ["-m", "cutmix_repro.train", "-m"]
    return run_launches(args, [(label, [*train, *overrides]) for label, overrides in commands])


def split_seeds(label: str, command: list[str]) -> list[tuple[str, list[str]]]:
    """A launch's runs one by one: each seed of its ``seed=a,b,c`` sweep as its own one-run multirun, landing in the
    sweep folder's subfolder of the same number as the whole sweep would put it (``hydra.sweep.subdir``)."""
    seeds = [o for o in command if o.startswith("seed=")]
    if len(seeds) != 1 or "," not in seeds[0]:
        return [(label, command)]
    values = seeds[0].split("=", 1)[1].split(",")
    return [(f"{label}, seed {value}", [f"seed={value}" if o == seeds[0] else o for o in command]
             + [f"hydra.sweep.subdir={i}"]) for i, value in enumerate(values)]


def side_by_side(commands: list[tuple[str, list[str]]], jobs: int) -> list[tuple[str, list[str]]]:
    """``jobs`` > 1: every run its own command, with ``trainer.threads`` = the CPU threads / ``jobs`` (unless given)
    and no progress bar (their lines would interleave)."""
    import os

    threads = max(1, (os.cpu_count() or 1) // jobs)
    out = []
    for label, command in commands:
        for run_label, run in split_seeds(label, command):
            extra = [] if any(o.startswith("trainer.threads=") for o in run) else [f"trainer.threads={threads}"]
            out.append((run_label, [*run, *extra, "trainer.progress=false"]))
    return out


def run_launches(args, commands: list[tuple[str, list[str]]]) -> int:
    """Print each command under its label and, unless ``--dry-run``, run it (``--jobs`` of them at a time, each run
    its own command); then write the report of the runs."""
    jobs = getattr(args, "jobs", None) or 1
    if jobs > 1:
        commands = side_by_side(commands, jobs)
    running: list[tuple[str, subprocess.Popen]] = []

    def wait_oldest() -> int:
        done_label, process = running.pop(0)
        status = process.wait()
        if status != 0:
            for _, other in running:
                other.wait()
            print(f"error: the runs of {done_label!r} failed (exit status {status}); the report was not written",
                  file=sys.stderr)
        return status

    for label, command in commands:
        show(label, command)
        if args.dry_run:
            continue
        if len(running) == jobs and (status := wait_oldest()):
            return status
        running.append((label, subprocess.Popen([sys.executable, *command])))
    while running:
        if status := wait_oldest():
            return status
    if not args.dry_run:
        from .report import main as report

        return report([f"{args.runs_dir}/{args.name}", "--out", args.out])
    return 0


def evaluate_table(args, evaluate_args: list[str]) -> int:
    """Evaluate the finished runs of an evaluation table's rows, then write the report."""
    from .report import find_results
    from .report import main as report

    table = load_tables()[args.name]
    suites, needed = EVALUATIONS[args.name]
    rows = ({r["label"]: r["overrides"] for r in table["rows"]} if "rows" in table else table["regularizers"])
    runs = [(d, r) for d, r in find_results([args.runs_dir]) if r.get("status") == "finished"] \
        if Path(args.runs_dir).exists() else []
    missing, evaluated = [], 0
    for label, overrides in rows.items():
        key = config_key(tuple([f"+experiment={table['experiment']}", *overrides]))
        matches = [d for d, r in runs if run_key(r) == key]
        if not matches:
            missing.append(label)
        for run_dir in matches:
            command = ["-m", "cutmix_repro.evaluate", str(run_dir), *suites, *evaluate_args]
            show(label, command)
            if not args.dry_run:
                status = subprocess.run([sys.executable, *command]).returncode
                if status != 0:
                    print(f"error: evaluating {run_dir} failed (exit status {status})", file=sys.stderr)
                    return status
            evaluated += 1
    if missing:
        print(f"{args.name}: no finished run under {args.runs_dir} for {', '.join(missing)}: train them first, e.g. "
              f"python -m cutmix_repro.reproduce {needed}", file=sys.stderr)
    if evaluated and not args.dry_run:
        return report([args.runs_dir, "--out", args.out])
    return 0 if evaluated else 2


def transfer_commands(name: str, runs_dir: str, extra: list[str]) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """(label, transfer command) for each found backbone and task of a transfer table, and the labels of the
    rows whose backbone (a finished training run of the backbone table's row) is not under ``runs_dir``."""
    from .report import find_results

    tables = load_tables()
    table, backbones = tables[name], tables[tables[name]["backbone_table"]]
    runs = [(d, r) for d, r in find_results([runs_dir]) if r.get("status") == "finished" and "dataset" in r] \
        if Path(runs_dir).exists() else []
    tasks = list(dict.fromkeys(c["task"] for c in table["columns"]))
    seeds = "seed=" + ",".join(str(s) for s in range(table["seeds"]))
    commands, missing = [], []
    for row in table["rows"]:
        key = config_key(tuple([f"+experiment={backbones['experiment']}", *row["overrides"]]))
        found = sorted(d for d, r in runs if run_key(r) == key)
        if not found:
            missing.append(row["label"])
            continue
        for task in tasks:
            folder = f"{runs_dir}/{name}/{row['label'].lower()}/{task}"
            commands.append((f"{row['label']} backbone ({found[0]}), {task}",
                             ["-m", "cutmix_repro.transfer", "-m", f"+task={task}", f"init_from={found[0]}", seeds,
                              f'hydra.sweep.dir="{folder}"', *extra]))
    return commands, missing


def transfer_table(args) -> int:
    """Launch a transfer table's cells from the backbones found under ``--runs-dir``, then write the report."""
    commands, missing = transfer_commands(args.name, args.runs_dir, list(args.overrides))
    table = load_tables()[args.name]
    backbone_table = table["backbone_table"]
    print(f"{args.name}: {len(commands)} launches of {table['seeds']} seeds each, from the backbones of "
          f"{len(table['rows']) - len(missing)} of its {len(table['rows'])} rows found under {args.runs_dir}")
    if missing:
        print(f"{args.name}: no finished {backbone_table} run under {args.runs_dir} for {', '.join(missing)}: train "
              f"them first, e.g. python -m cutmix_repro.reproduce {backbone_table}", file=sys.stderr)
    if not commands:
        return 2
    return run_launches(args, commands)


if __name__ == "__main__":
    sys.exit(main())
