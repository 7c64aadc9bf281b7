"""The paper's tables as data (paper_tables.yaml), the report written from runs, and the reproduce
command that launches each table's rows."""

import json
import re
import shlex
import statistics
import sys
from pathlib import Path

import pytest
from fakedata import write_cifar100
from helpers import fit_run
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate

from cutmix_repro import report, reproduce
from cutmix_repro.config import compose, params
from cutmix_repro.engine import records as R
from cutmix_repro.models import arch_name
from cutmix_repro.paper import (
    FIGURES,
    LOCALIZATION_TABLES,
    TABLES,
    config_key,
    dataset_name,
    launches,
    load_tables,
    localization_cells,
    row_overrides,
)

# How many rows each result table of the paper has (Tables 3-8) and which columns it prints.
PAPER_SHAPE = {"table3": (8, True), "table4": (6, True), "table5": (15, True), "table6": (4, True),
               "table7": (5, False), "table8": (6, True)}


def test_the_paper_tables_have_the_papers_shape_and_plausible_numbers():
    t = load_tables()
    assert set(PAPER_SHAPE) == set(TABLES)
    for name, (rows, has_top5) in PAPER_SHAPE.items():
        assert len(t[name]["rows"]) == rows, name
        for row in t[name]["rows"]:
            assert 0 < row["top1"] < 30 and ("top5" in row) == has_top5, (name, row)
            assert row["top1"] == round(row["top1"], 2)
    assert t["table5"]["rows"][13]["label"] == "+ CutMix" and t["table5"]["rows"][13]["top1"] == 14.47
    assert t["table8"]["rows"][0]["top1"] == t["table5"]["rows"][13]["top1"], "one run, two tables"
    assert t["figure3_alpha"]["values"] == [0.1, 0.25, 0.5, 1.0, 2.0, 4.0]
    assert t["figure3_alpha"]["paper"] == {1.0: 14.47} and t["figure3_alpha"]["baseline"] == 16.45
    assert t["figure3_layers"]["values"] == [0, 1, 2, 3, 4]
    table9 = t["table9"]
    assert len(table9["rows"]) == 8 and set(table9["datasets"]) == {"cub", "imagenet"}
    assert all(30 < row[key] < 60 for row in table9["rows"] for key in ("cub", "imagenet"))
    assert table9["rows"][-1] == {**table9["rows"][-1], "label": "ResNet-50 + CutMix", "cub": 54.81, "imagenet": 47.25}


def test_every_row_composes_to_a_distinct_buildable_setting():
    t = load_tables()
    for name in TABLES:
        keys = [config_key(tuple(row_overrides(t[name], row))) for row in t[name]["rows"]]
        assert len(set(keys)) == len(keys), f"two rows of {name} share one config"
        for row in t[name]["rows"]:
            instantiate(compose(row_overrides(t[name], row)).regularizer)
    cfg = compose(row_overrides(t["table5"], t["table5"]["rows"][-1]))
    assert arch_name(cfg.model) == "pyramidnet200" and cfg.model.shakedrop and cfg.regularizer.prob == 0.5
    assert dataset_name(cfg) == "cifar100" and cfg.trainer.lr == 0.25 and cfg.trainer.epochs == 300


def fake_result(overrides, best1, last1, best5=3.0, last5=3.5, seed=0, epochs=300, status="finished"):
    """A results.json as the trainer writes it, for the config the overrides compose to."""
    cfg = compose(overrides)
    history = [{R.EPOCH: e, R.VAL_TOP1: last1 + (epochs - e), R.VAL_TOP5: last5} for e in range(1, 4)]
    return {R.STATUS: status, "dataset": dataset_name(cfg), "model": arch_name(cfg.model),
            "model_target": cfg.model._target_, "model_options": params(cfg.model),
            "regularizer": "x", "regularizer_target": cfg.regularizer._target_,
            "regularizer_params": params(cfg.regularizer),
            "label_smoothing": cfg.label_smoothing, "seed": seed, "epochs": epochs, "lr": cfg.trainer.lr,
            "batch_size": cfg.trainer.batch_size, "num_params": 26_844_952, R.BEST_TOP1: best1, R.LAST_TOP1: last1,
            R.BEST_TOP5: best5, R.LAST_TOP5: last5, "history": history}


def write_runs(root: Path, results: list[dict]) -> None:
    for i, r in enumerate(results):
        (root / f"run{i}").mkdir(parents=True)
        (root / f"run{i}" / "results.json").write_text(json.dumps(r))


def test_report_means_stds_counts_best_last_and_not_run(tmp_path):
    exp = "+experiment=cifar100_pyramidnet"
    cutmix = [fake_result([exp, "regularizer=cutmix"], b, l, seed=s)
              for s, (b, l) in enumerate([(14.2, 14.8), (14.5, 15.4), (14.7, 15.0)])]
    baseline = [fake_result([exp, "regularizer=baseline"], 16.0, 16.6)]
    unfinished = [fake_result([exp, "regularizer=mixup"], 1.0, 1.0, status="running")]
    write_runs(tmp_path / "runs", cutmix + baseline + unfinished)
    summary = report.generate([str(tmp_path / "runs")], tmp_path / "out")
    assert summary["runs"] == 4 and summary["unfinished"] == 1
    table5 = (tmp_path / "out" / "table5.md").read_text()
    row = next(line for line in table5.splitlines() if line.startswith("| + CutMix |"))
    mean, std = statistics.fmean([14.2, 14.5, 14.7]), statistics.stdev([14.2, 14.5, 14.7])
    assert f"{mean:.2f} ± {std:.2f} (n=3)" in row
    assert f"| {statistics.fmean([14.8, 15.4, 15.0]):.2f} |" in row  # last-epoch mean
    assert f"{mean - 14.47:+.2f}" in row and "| 14.47 |" in row
    assert "| Baseline | 16.45 | 16.00 (n=1) | 16.60 | -0.45 |" in table5
    mixup = next(line for line in table5.splitlines() if line.startswith("| + Mixup (α=1.0) |"))
    assert mixup.count("not run") == 5, "an unfinished run fills nothing"
    assert "not run" in (tmp_path / "out" / "table3.md").read_text()
    # Table 8's first row is the same config as Table 5's CutMix row
    assert f"{mean:.2f} ± {std:.2f} (n=3)" in (tmp_path / "out" / "table8.md").read_text()
    assert "picked on the test set" in table5 and "REFERENCE" not in table5


def test_an_unmatched_run_shows_its_model_by_real_shape_and_its_options(tmp_path):
    odd = fake_result(["+experiment=cifar100_pyramidnet", "regularizer=cutmix", "regularizer.prob=0.9"], 15.0, 15.5)
    small = fake_result(["+experiment=cifar100_pyramidnet", "model.depth=11", "model.alpha=12",
                         "model.shakedrop=true"], 40.0, 41.0)
    write_runs(tmp_path / "runs", [odd, small])
    summary = report.generate([str(tmp_path / "runs")], tmp_path / "out", figures=False)
    extra = (tmp_path / "out" / "unmatched_runs.md").read_text()
    assert len(summary["unmatched"]) == 2 and "15.00 (n=1)" in extra
    assert "15.00" not in (tmp_path / "out" / "table5.md").read_text()
    by_model = {row[1]: row for row in summary["unmatched"]}
    assert set(by_model) == {"pyramidnet200", "pyramidnet11"}, "not named by the preset it started from"
    assert by_model["pyramidnet11"][2] == "depth=11, alpha=12, bottleneck=True, shakedrop=True"
    assert by_model["pyramidnet200"][2] == "depth=200, alpha=240, bottleneck=True"
    assert by_model["pyramidnet200"][4] == "prob=0.9" and by_model["pyramidnet11"][4] == "prob=0.5"


def test_figure3_tables_and_plots_are_written(tmp_path):
    exp = "+experiment=cifar100_pyramidnet"
    runs = [fake_result([exp, "regularizer=cutmix", f"regularizer.alpha={a}"], 15 - a, 15.5, seed=s)
            for a in (0.25, 1.0, 4.0) for s in (0, 1)]
    runs += [fake_result([exp, "regularizer=feature_cutmix", f"regularizer.layers={k}"], 15 + k, 16) for k in (0, 2)]
    write_runs(tmp_path / "runs", runs)
    summary = report.generate([str(tmp_path / "runs")], tmp_path / "out")
    for name in ("figure3_alpha.png", "figure3_layers.png", "curves_table5.png"):
        path = tmp_path / "out" / name
        assert name in summary["files"] and path.stat().st_size > 1000
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    alpha = (tmp_path / "out" / "figure3_alpha.md").read_text()
    assert "| 0.25 | — | 14.75 ± 0.00 (n=2) |" in alpha and "| 1 | 14.47 | 14.00 ± 0.00 (n=2) |" in alpha
    assert "| 2 | — | 17.00 (n=1) |" in (tmp_path / "out" / "figure3_layers.md").read_text()


def test_any_sweep_is_drawn_against_its_value_with_seed_error_bars(tmp_path):
    """A reduced-size α sweep on PyramidNet-110 (no paper row): runs that differ in α and the seed."""
    exp = "+experiment=cifar100_pyramidnet110"
    sweep = [fake_result([exp, f"regularizer.alpha={a}"], 20 - a + s, 21 - a, seed=s, epochs=30)
             for a in (0.5, 1.0, 2.0) for s in (0, 1)]
    other = [fake_result([exp, "regularizer=baseline"], 22.0, 23.0, epochs=30),  # another regularizer
             fake_result([exp, "regularizer.alpha=8.0", "regularizer.prob=0.9"], 9.0, 9.0, epochs=30)]  # 2 keys differ
    write_runs(tmp_path / "runs", sweep + other)
    summary = report.generate([str(tmp_path / "runs")], tmp_path / "out")
    assert summary["sweeps"] == [("regularizer.alpha", [0.5, 1.0, 2.0])]
    text = (tmp_path / "out" / "sweeps.md").read_text()
    for a in (0.5, 1.0, 2.0):
        best = [20 - a + s for s in (0, 1)]
        assert f"| {a:g} | {statistics.fmean(best):.2f} ± {statistics.stdev(best):.2f} (n=2) | {21 - a:.2f} |" in text
    assert "pyramidnet110" in text and "30 epochs" in text
    png = tmp_path / "out" / "sweep1_regularizer_alpha.png"
    assert "sweep1_regularizer_alpha.png" in summary["files"] and png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("name", TABLES + LOCALIZATION_TABLES + FIGURES)
def test_reproduce_launches_exactly_the_rows_of_its_table_with_the_papers_seeds(name, capsys):
    assert reproduce.main([name, "--dry-run", "trainer.epochs=2"]) == 0
    out = capsys.readouterr().out
    commands = [shlex.split(line) for line in out.splitlines() if "cutmix_repro.train" in line]
    assert all(c[0] == sys.executable or Path(c[0]).resolve() == Path(sys.executable).resolve() for c in commands)
    assert all(c[1:4] == ["-m", "cutmix_repro.train", "-m"] for c in commands), "commands to paste, as they are"
    lines = [c[4:] for c in commands]
    folders = [next(a for a in c if a.startswith("hydra.sweep.dir=")) for c in commands]
    assert len(set(folders)) == len(folders) and not any(re.search(r"/run\d+\W*$", f) for f in folders)
    assert all(f'/{name}/' in f and "regularizer=" in f for f in folders), "named by what they hold"
    table = load_tables()[name]
    announced = int(re.search(r"(\d+) runs in all", out).group(1))
    launched, keys = 0, set()
    for line in lines:
        overrides = OverridesParser.create().parse_overrides(line)
        combos, first = 1, []
        for o in overrides:
            values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [None]
            combos *= len(values)
            first.append(o.input_line if values[0] is None else f"{o.get_key_element()}={values[0]}")
        launched += combos
        assert f"seed={','.join(map(str, range(table['seeds'])))}" in line
        setting = tuple(a for a in first if not a.startswith(("seed=", "hydra.", "trainer.epochs")))
        assert compose(list(setting) + ["trainer.epochs=2"]).trainer.epochs == 2
        keys.add(config_key(setting))
    assert launched == announced and len(lines) == len(launches(name))
    if name in TABLES:
        assert keys == {config_key(tuple(row_overrides(table, row))) for row in table["rows"]}
        assert announced == len(table["rows"]) * table["seeds"]
    elif name in LOCALIZATION_TABLES:
        assert keys == {config_key(tuple(overrides)) for _, _, overrides in localization_cells(table)}
        assert announced == len(table["rows"]) * len(table["datasets"]) * table["seeds"] == len(keys)
    else:
        assert announced == (len(table["values"]) + 1) * table["seeds"]


def test_end_to_end_two_tiny_runs_of_table6_render_their_rows(tmp_path):
    write_cifar100(tmp_path / "data", train=4, test=3)
    table = load_tables()["table6"]
    for row in table["rows"][:2]:  # PyramidNet-110: baseline and CutMix
        overrides = [*row_overrides(table, row), f"dataset.root={tmp_path / 'data'}", "dataset.download=false",
                     "trainer.epochs=1", "trainer.batch_size=2"]
        fit_run(overrides, tmp_path / "runs" / row["label"].replace(" ", "_"))
    assert report.main([str(tmp_path / "runs"), "--out", str(tmp_path / "tables"), "--no-figures"]) == 0
    table6 = (tmp_path / "tables" / "table6.md").read_text()
    for label in ("PyramidNet-110 (α̃=64)", "PyramidNet-110 + CutMix"):
        row = next(line for line in table6.splitlines() if line.startswith(f"| {label} |"))
        assert "(n=1)" in row and "| 1 |" in row and "1.7M / 1.73M" in row, row
    assert "None." in (tmp_path / "tables" / "unmatched_runs.md").read_text()


def test_steady_images_per_s_leaves_out_every_cold_epoch_of_a_resumed_history():
    def entry(epoch, speed, cold):
        return {R.EPOCH: epoch, R.VAL_TOP1: 50.0, R.VAL_TOP5: 10.0, R.IMAGES_PER_S: speed, R.COLD_START: cold}

    # epochs 1 and 4 each started a process (the run was resumed before epoch 4): both pay warm-up
    history = [entry(1, 10.0, True), entry(2, 100.0, False), entry(3, 110.0, False), entry(4, 20.0, True),
               entry(5, 120.0, False)]
    s = R.summarize(history)
    assert s[R.STEADY_IMAGES_PER_S] == pytest.approx(110.0) and s[R.IMAGES_PER_S] == pytest.approx(72.0)
    assert R.summarize(history[:1])[R.STEADY_IMAGES_PER_S] is None, "no warm epoch yet"


def located(epoch, top1, top1_loc, gt_known, max_box, v2):
    return {R.EPOCH: epoch, R.VAL_TOP1: top1, R.VAL_TOP5: 5.0, R.IMAGES_PER_S: 1.0, R.VAL_TOP1_LOC: top1_loc,
            R.VAL_GT_KNOWN_LOC: gt_known, R.VAL_MAX_BOX_ACC: max_box, R.VAL_MAX_BOX_ACC_V2: v2}


def test_the_best_localization_numbers_are_those_of_the_best_classification_epoch():
    # epoch 2 has the lowest top-1 error; epoch 3 localizes best, and epoch 4 is the last
    history = [located(1, 40.0, 30.0, 40.0, 50.0, 45.0), located(2, 20.0, 41.0, 51.0, 61.0, 56.0),
               located(3, 25.0, 47.0, 57.0, 67.0, 62.0), located(4, 30.0, 44.0, 54.0, 64.0, 59.0)]
    s = R.summarize(history)
    assert s[R.BEST_EPOCH] == 2 and s[R.BEST_TOP1_LOC] == 41.0, "not the best localization (47), nor the last"
    assert (s[R.LAST_TOP1_LOC], s[R.LAST_GT_KNOWN_LOC], s[R.LAST_MAX_BOX_ACC], s[R.LAST_MAX_BOX_ACC_V2]) == (
        44.0, 54.0, 64.0, 59.0)


def test_table9s_columns_hold_last_best_epoch_gt_known_maxboxacc_and_v2_each_in_its_place(tmp_path):
    history = [located(1, 20.0, 41.0, 51.0, 61.0, 56.0), located(2, 30.0, 44.0, 54.0, 64.0, 59.0)]
    run = {**fake_result(["+experiment=cub_resnet50_wsol", "regularizer=cutmix"], 20.0, 30.0), "history": history,
           **R.summarize(history)}
    write_runs(tmp_path / "runs", [run])
    report.generate([str(tmp_path / "runs")], tmp_path / "out", figures=False)
    table9 = (tmp_path / "out" / "table9.md").read_text().splitlines()
    header = table9[2].strip("| ").split(" | ")
    row = next(line for line in table9 if line.startswith("| ResNet-50 + CutMix |")).strip("| ").split(" | ")
    cub = header.index("CUB200-2011 paper")
    assert header[cub : cub + 7] == ["CUB200-2011 paper", "ours", "ours best ep.", "Δ", "GT-known", "MaxBoxAcc",
                                     "MaxBoxAccV2"]
    assert row[cub : cub + 7] == ["54.81", "44.00 (n=1)", "41.00", f"{44.0 - 54.81:+.2f}", "54.00", "64.00", "59.00"]
    assert row[cub + 7] == "47.25" and row[cub + 8] == "not run", "ImageNet's cell has no run"
    assert "IoU ≥ 0.5" in "\n".join(table9) and "wsolevaluation" in "\n".join(table9)
