"""Paper tables as data, the report written from runs, and the reproduce scripts."""

import json
import re
import statistics
import subprocess
from pathlib import Path

import pytest
from fakedata import write_cifar100
from helpers import FAST, train_cli
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate
from omegaconf import OmegaConf

from cutmix_repro import report
from cutmix_repro.paper import TABLES, compose, config_key, dataset_name, load_tables, row_overrides

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "paper" / "REFERENCE.md"
SCRIPTS = sorted((ROOT / "scripts").glob("reproduce_*.sh"))


def reference_tables() -> dict[str, list[list[float]]]:
    """The numbers of each '### Table N' block of REFERENCE.md, row by row (params dropped)."""
    text = REFERENCE.read_text()
    tables = {}
    for match in re.finditer(r"### Table (\d)(.*?)(?=\n### |\n## )", text, re.S):
        rows = []
        for line in match.group(2).splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) < 2 or set(cells[0]) <= {"-"} or cells[0] in ("Method", "Model", "Variant"):
                continue
            rows.append([float(c) for c in cells[1:] if re.fullmatch(r"\d+\.\d+", c)])
        tables[f"table{match.group(1)}"] = rows
    return tables


@pytest.mark.skipif(not REFERENCE.exists(), reason="REFERENCE.md is not beside this checkout")
def test_every_paper_number_equals_reference_md():
    ref = reference_tables()
    ours = load_tables()
    assert set(ref) == set(TABLES)
    for name in TABLES:
        expected = ref[name]
        got = [[row["top1"]] + ([row["top5"]] if "top5" in row else []) for row in ours[name]["rows"]]
        assert got == expected, name


def test_paper_numbers_spot_checks_and_figure3_settings():
    t = load_tables()
    assert t["table5"]["rows"][13] == {**t["table5"]["rows"][13], "label": "+ CutMix", "top1": 14.47, "top5": 2.97}
    assert t["table3"]["rows"][-1]["top1"] == 21.40 and t["table7"]["rows"][-1]["top1"] == 2.88
    assert t["figure3_alpha"]["values"] == [0.1, 0.25, 0.5, 1.0, 2.0, 4.0]
    assert t["figure3_alpha"]["paper"] == {1.0: 14.47} and t["figure3_alpha"]["baseline"] == 16.45
    assert t["figure3_layers"]["values"] == [0, 1, 2, 3, 4]


def test_every_row_composes_to_a_distinct_buildable_setting():
    t = load_tables()
    for name in TABLES:
        keys = [config_key(tuple(row_overrides(t[name], row))) for row in t[name]["rows"]]
        assert len(set(keys)) == len(keys), f"two rows of {name} share one config"
    cfg = compose(row_overrides(t["table5"], t["table5"]["rows"][-1]))
    assert cfg.model.name == "pyramidnet200" and cfg.model.shakedrop and cfg.regularizer.prob == 0.5
    assert dataset_name(cfg) == "cifar100" and cfg.trainer.lr == 0.25 and cfg.trainer.epochs == 300


def fake_result(overrides, best1, last1, best5=3.0, last5=3.5, seed=0, epochs=300, status="finished"):
    """A results.json as the trainer writes it, for the config the overrides compose to."""
    cfg = compose(overrides)
    reg = OmegaConf.to_container(cfg.regularizer, resolve=True)
    model = OmegaConf.to_container(cfg.model, resolve=True)
    history = [{"epoch": e, "val_top1_err": last1 + (epochs - e), "val_top5_err": last5} for e in range(1, 4)]
    return {"status": status, "dataset": dataset_name(cfg), "model": model.pop("name"),
            "model_options": {k: v for k, v in model.items() if k != "_target_"},
            "regularizer": "x", "regularizer_target": reg.pop("_target_"), "regularizer_params": reg,
            "label_smoothing": cfg.label_smoothing, "seed": seed, "epochs": epochs, "num_params": 26_844_952,
            "best_top1_err": best1, "last_top1_err": last1, "best_top5_err": best5, "last_top5_err": last5,
            "history": history}


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
    assert "picked on the test set" in table5


def test_unmatched_runs_land_in_the_extra_table(tmp_path):
    odd = fake_result(["+experiment=cifar100_pyramidnet", "regularizer=cutmix", "regularizer.prob=0.9"], 15.0, 15.5)
    write_runs(tmp_path / "runs", [odd])
    summary = report.generate([str(tmp_path / "runs")], tmp_path / "out", figures=False)
    extra = (tmp_path / "out" / "unmatched_runs.md").read_text()
    assert "prob=0.9" in extra and "15.00 (n=1)" in extra and len(summary["unmatched"]) == 1
    assert "15.00" not in (tmp_path / "out" / "table5.md").read_text()


def test_figures_are_written_and_non_empty(tmp_path):
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


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_reproduce_script_is_valid_bash_and_its_command_lines_compose(script, tmp_path):
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    dry = tmp_path / "commands"
    proc = subprocess.run(["bash", str(script), "trainer.epochs=2"], env={"CUTMIX_DRY_RUN": str(dry),
                          "PATH": "/usr/bin:/bin", "PY": __import__("sys").executable},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = dry.read_text().splitlines()
    announced = int(re.search(r"(\d+) runs in all", proc.stdout).group(1))
    launched = 0
    keys = set()
    for line in lines:
        overrides = OverridesParser.create().parse_overrides(line.split())
        combos = 1
        first = []
        for o in overrides:
            values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [None]
            combos *= len(values)
            first.append(o.input_line if values[0] is None else f"{o.get_key_element()}={values[0]}")
        launched += combos
        cfg = compose(first)  # composes, like --cfg job
        assert cfg.trainer.epochs == 2
        instantiate(cfg.regularizer)
        keys.add(config_key(tuple(a for a in first if not a.startswith(("seed=", "hydra.", "trainer.epochs")))))
    assert launched == announced
    name = script.stem.removeprefix("reproduce_")
    table = load_tables()[name]
    if name in TABLES:  # the script runs exactly the table's rows
        assert keys == {config_key(tuple(row_overrides(table, row))) for row in table["rows"]}
        assert all("seed=" + ",".join(map(str, range(table["seeds"]))) in line for line in lines)


def test_end_to_end_two_tiny_runs_render_their_table(tmp_path):
    write_cifar100(tmp_path / "data", train=4, test=3)
    for reg in ("baseline", "cutmix"):
        proc = train_cli(["+experiment=cifar100_pyramidnet", f"regularizer={reg}", "dataset.root=data",
                          "dataset.download=false", "trainer.epochs=1", "trainer.batch_size=2", *FAST,
                          f"hydra.run.dir=runs/{reg}"], tmp_path, timeout=600)
        assert proc.returncode == 0, proc.stderr
    out = subprocess.run([__import__("sys").executable, "-m", "cutmix_repro.report", "runs", "--out", "tables"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    table5 = (tmp_path / "tables" / "table5.md").read_text()
    for label in ("Baseline", "+ CutMix"):
        row = next(line for line in table5.splitlines() if line.startswith(f"| {label} |"))
        assert "(n=1)" in row and "| 1 |" in row, row
    assert "table5: 2/15 rows with runs" in out.stdout
