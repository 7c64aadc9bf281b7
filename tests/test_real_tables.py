"""The paper's claims on real images: Welch's test and interval, the report's verdict from constructed results (the
claim holding, reversed, and not distinguishable), ``reproduce --jobs`` (each run its own command, at most N at a
time, the CPU threads shared), and the FMix paper's protocol as configs and launches."""

from __future__ import annotations

import re
import shlex
import statistics

import pytest
from test_report import fake_result, write_runs

from cutmix_repro import reproduce
from cutmix_repro.config import compose
from cutmix_repro.paper import load_tables, row_overrides
from cutmix_repro.report import build as report_build
from cutmix_repro.report.real import welch


def test_welch_difference_interval_and_p_value_on_a_worked_example():
    """a = (1, 2, 3), b = (4, 5, 6): Δ = −3, SE = √(1/3 + 1/3) = 0.8165, t = −3.674 with 4 degrees of freedom, two-sided
    p = 0.0213, t₀.₉₇₅,₄ = 2.776: the 95% interval is −3 ± 2.267."""
    test = welch([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert test["diff"] == pytest.approx(-3.0) and test["df"] == pytest.approx(4.0)
    assert test["t"] == pytest.approx(-3.6742, abs=1e-4) and test["p"] == pytest.approx(0.02131, abs=1e-4)
    assert (test["low"], test["high"]) == (pytest.approx(-5.2670, abs=1e-3), pytest.approx(-0.7330, abs=1e-3))
    unequal = welch([10.0, 10.5, 11.0, 10.2], [9.0, 12.0, 15.0])  # Satterthwaite's degrees of freedom, not n − 2
    va, vb = statistics.variance([10.0, 10.5, 11.0, 10.2]) / 4, statistics.variance([9.0, 12.0, 15.0]) / 3
    assert unequal["df"] == pytest.approx((va + vb) ** 2 / (va**2 / 3 + vb**2 / 2))
    assert welch([1.0], [2.0, 3.0]) is None and welch([1.0, 1.0], [2.0, 2.0]) is None


EXPERIMENT = "+experiment=fashion_mnist_cpu"


def table_runs(errors: dict[str, list[float]]) -> list[dict]:
    table = load_tables()["fashion_mnist_cpu"]
    rows = {row["label"]: row for row in table["rows"]}
    return [fake_result(row_overrides(table, rows[label]), e - 0.1, e, seed=s, epochs=24)
            for label, values in errors.items() for s, e in enumerate(values)]


def reported(tmp_path, runs: list[dict], name: str, cutmix: list[float], baseline: list[float]) -> tuple[str, str]:
    """The report of ``runs`` for the table ``name``, and its CutMix row, which shows the row's mean ± std and its
    difference from the baseline with the Welch interval."""
    write_runs(tmp_path / "runs", runs)
    report_build.generate([str(tmp_path / "runs")], tmp_path / "out", figures=False)
    text = (tmp_path / "out" / f"{name}.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| + CutMix (α=1.0) |"))
    test = welch(cutmix, baseline)
    assert f"{statistics.fmean(cutmix):.2f} ± {statistics.stdev(cutmix):.2f} (n=3)" in row
    assert f"{test['diff']:+.2f} [{test['low']:+.2f}, {test['high']:+.2f}]" in row
    return text, row


@pytest.mark.parametrize("cutmix, verdict", [
    ([7.0, 7.1, 6.9], "the paper's ranking holds at this scale"),
    ([9.9, 10.0, 10.1], "the paper's ranking does not hold at this scale"),
    ([7.5, 9.5, 8.5], "the paper's ranking is not confirmed at this scale"),
])
def test_the_real_table_tests_each_row_and_says_whether_the_claim_holds(tmp_path, cutmix, verdict):
    errors = {"Baseline": [8.9, 9.0, 9.1], "+ Cutout": [8.6, 8.7, 8.8], "+ Mixup (α=1.0)": [8.4, 8.5, 8.6],
              "+ CutMix (α=1.0)": cutmix}
    text, row = reported(tmp_path, table_runs(errors), "fashion_mnist_cpu", cutmix, errors["Baseline"])
    assert verdict in text, text
    test = welch(cutmix, errors["Baseline"])
    assert f"{test['p']:.3f}" in row
    assert "| not run |" in next(line for line in text.splitlines() if line.startswith("| ResizeMix |"))
    assert "Welch" in text and "last" in text


def dry_run(args: list[str], capsys) -> tuple[str, list[list[str]]]:
    assert reproduce.main(args) == 0
    out = capsys.readouterr().out
    return out, [shlex.split(line) for line in out.splitlines() if "cutmix_repro.train" in line]


def test_jobs_gives_each_run_its_own_command_and_a_share_of_the_threads(capsys, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    out, commands = dry_run(["fashion_mnist_cpu", "--dry-run"], capsys)  # the table's own jobs: 2
    table = load_tables()["fashion_mnist_cpu"]
    assert re.search(r"18 runs in all", out) and len(commands) == len(table["rows"]) * table["seeds"] == 18
    for i, command in enumerate(commands):
        seed = i % 3
        assert f"seed={seed}" in command and f"hydra.sweep.subdir={seed}" in command
        assert "trainer.threads=4" in command and "trainer.progress=false" in command
    _, one = dry_run(["fashion_mnist_cpu", "--dry-run", "--jobs", "1"], capsys)
    assert len(one) == 6 and all("seed=0,1,2" in c for c in one) and not any("trainer.threads=4" in c for c in one)
    _, mine = dry_run(["fashion_mnist_cpu", "--dry-run", "--jobs", "4", "trainer.threads=1"], capsys)
    assert all("trainer.threads=1" in c and "trainer.threads=2" not in c for c in mine)
    assert reproduce.main(["fashion_mnist_cpu", "--jobs", "2", "--fuse", "--dry-run"]) == 2
    assert "--jobs=2 is invalid" in capsys.readouterr().err


def test_jobs_runs_at_most_n_at_a_time_and_every_one(tmp_path, monkeypatch, capsys):
    events, running = [], set()

    class FakeRun:
        def __init__(self, command):
            self.name = next(a for a in command if a.startswith("seed=")) + next(
                a for a in command if a.startswith("regularizer="))
            running.add(self.name)
            events.append(len(running))

        def wait(self):
            running.discard(self.name)
            return 0

    monkeypatch.setattr(reproduce.subprocess, "Popen", FakeRun)
    monkeypatch.setattr("cutmix_repro.report.main", lambda argv: 0)
    assert reproduce.main(["fashion_mnist_cpu", "--runs-dir", str(tmp_path), "--jobs", "2"]) == 0
    assert len(events) == 18 and max(events) == 2 and not running


def test_the_fmix_papers_protocol_composes_as_their_code_runs_it(capsys, tmp_path, monkeypatch):
    cfg = compose(["+experiment=fashion_mnist", "regularizer=fmix"])
    assert cfg.model._target_.endswith("PreActResNet") and cfg.model.depth == 18 and cfg.model.variant == "fmix"
    assert cfg.dataset.normalize == "mnist" and cfg.dataset.train_subset is None and cfg.dataset.padding == 4
    assert cfg.dataset.hflip and cfg.trainer.epochs == 200 and cfg.trainer.batch_size == 128 and cfg.trainer.lr == 0.1
    assert cfg.optimizer.momentum == 0.9 and not cfg.optimizer.nesterov and cfg.optimizer.weight_decay == 1e-4
    assert [m * cfg.trainer.epochs for m in cfg.scheduler.milestones] == [100, 150] and cfg.scheduler.gamma == 0.1
    assert cfg.regularizer.alpha == 1.0 and cfg.regularizer.decay_power == 3.0 and cfg.regularizer.prob == 1.0
    assert compose(["+experiment=fashion_mnist", "regularizer=cutmix"]).regularizer.prob == 1.0
    import json

    from cutmix_repro.bench.common import forward_flops
    from cutmix_repro.models import create_model

    measured = [{"model": "resnet110", "data": "cifar", "device": "GPU X", "date": "2026-12-06", "images_per_s": 1000.0,
                 "batch_size": 64, "mode": "eager"}]
    (tmp_path / "throughput.json").write_text(json.dumps(measured))
    monkeypatch.setenv("CUTMIX_THROUGHPUT", str(tmp_path / "throughput.json"))
    out, commands = dry_run(["fashion_mnist", "--dry-run"], capsys)
    table = load_tables()["fashion_mnist"]
    assert "20 runs in all" in out and len(commands) == 4 and all("seed=0,1,2,3,4" in c for c in commands)
    # no rate measured for PreAct-ResNet-18: ResNet-110's, scaled by the two models' forward FLOPs per image
    rate = 1000.0 * forward_flops(create_model("resnet110", 100), (3, 32, 32)) / forward_flops(
        create_model("preact_resnet18", 10, in_chans=1), (1, 28, 28))
    hours = 20 * 200 * 60_000 / rate / 3600
    assert f"estimate: {hours:.1f} GPU-hours" in out and "scaled by forward FLOPs from resnet110's 1000 img/s" in out
    assert [row["top1"] for row in table["rows"]] == [4.30, 3.72, 3.97, 3.64]  # 100 − the printed accuracies


def test_evaluated_runs_add_robustness_and_calibration_with_cutmix_tested_against_the_baseline(tmp_path):
    import json

    errors = {"Baseline": [8.9, 9.0, 9.1], "+ CutMix (α=1.0)": [8.0, 8.1, 8.2]}
    write_runs(tmp_path / "runs", table_runs(errors))
    fgsm = [20.0, 21.0, 22.0, 40.0, 41.0, 43.0]  # baseline's three runs, then CutMix's
    for i, acc in enumerate(fgsm):
        evaluation = {"fgsm": {"eps": [8 / 255], "top1_acc": [acc]},
                      "calibration": {"all": {"ece": 5.0 + 0.1 * i}},  # percent, as evaluate writes it
                      "occlusion": {"sizes": [0, 7, 14, 21, 28], "centre_top1_err": [9, 10, 30 - i, 60, 90],
                                    "boundary_top1_err": [90, 80, 70 + i % 3, 20, 9]}}
        (tmp_path / "runs" / f"run{i}" / "evaluation.json").write_text(json.dumps(evaluation))
    report_build.generate([str(tmp_path / "runs")], tmp_path / "out", figures=False)
    text = (tmp_path / "out" / "fashion_mnist_cpu.md").read_text()
    assert "ε = 8/255" in text and "centred 14×14 square" in text
    row = next(line for line in text.splitlines() if line.startswith("| + CutMix (α=1.0) | 41.33"))
    assert "41.33 ± 1.53 (n=3)" in row and "| 26.00 ± 1.00 (n=3) |" in row  # FGSM; centre occlusion at 14
    assert "| 5.40 ± 0.10 (n=3) |" in row, "ECE in percent, as evaluate writes it"
    assert "FGSM top-1 acc. (Table 11: CutMix more robust to FGSM): CutMix better than the baseline" in text
    assert "Boundary occlusion err. (Figure 5(a): CutMix more robust to occlusion): not enough" not in text


def test_a_cpu_tables_estimate_comes_from_the_rate_measured_side_by_side(tmp_path, monkeypatch, capsys):
    import json

    rate = 900.0
    entries = [{"model": "resnet20", "data": "fashion_mnist", "device": "cpu", "cpu": "this machine", "jobs": 2,
                "date": "2026-12-06", "images_per_s": rate, "mode": "eager"},
               {"model": "resnet20", "data": "fashion_mnist", "device": "cpu", "cpu": "older", "jobs": 2,
                "date": "2026-01-01", "images_per_s": 1.0, "mode": "eager"}]
    (tmp_path / "throughput.json").write_text(json.dumps(entries))
    monkeypatch.setenv("CUTMIX_THROUGHPUT", str(tmp_path / "throughput.json"))
    out, _ = dry_run(["fashion_mnist_cpu", "--dry-run"], capsys)
    minutes = 18 * 24 * (10_000 + 10_000 / 3) / rate / 60  # runs × epochs × (training + test images / 3) / rate
    assert f"estimate: about {minutes:.0f} minutes on this CPU, 2 runs side by side" in out and "2026-12-06" in out
    out, _ = dry_run(["fashion_mnist_cpu", "--dry-run", "--jobs", "1"], capsys)
    assert "minutes on this CPU" not in out, "no rate measured for one run at a time"


def localization_runs(loc: dict[str, list[float]]) -> list[dict]:
    from cutmix_repro.engine import records as R

    table = load_tables()["fashion_mnist_localization"]
    rows = {row["label"]: row for row in table["rows"]}
    runs = []
    for label, values in loc.items():
        for s, value in enumerate(values):
            run = fake_result(row_overrides(table, rows[label]), 20.0, 21.0, seed=s, epochs=15)
            run.update({R.LAST_TOP1_LOC: value, R.BEST_TOP1_LOC: value + 1.0, R.LAST_MAX_BOX_ACC_V2: value + 10.0})
            runs.append(run)
    return runs


@pytest.mark.parametrize("cutmix, verdict", [
    ([60.0, 61.0, 62.0], "the paper's ranking holds at this scale: + CutMix (α=1.0) has a significantly higher "
                         "top-1 localization accuracy than Baseline, + Mixup (α=1.0), + Cutout"),
    ([30.0, 31.0, 32.0], "the paper's ranking does not hold at this scale"),
])
def test_the_localization_table_compares_top1_localization_where_higher_is_better(tmp_path, cutmix, verdict):
    """Table 9's claim on real objects: the compared number is the last epoch's top-1 localization, higher is
    better; MaxBoxAccV2 and the top-1 error beside it; the SaliencyMix rows listed (not run here)."""
    loc = {"Baseline": [40.0, 41.0, 42.0], "+ Mixup (α=1.0)": [38.0, 39.0, 40.0], "+ Cutout": [44.0, 45.0, 46.0],
           "+ CutMix (α=1.0)": cutmix, "SaliencyMix (8-bit pixels)": [70.0, 71.0, 72.0]}
    text, row = reported(tmp_path, localization_runs(loc), "fashion_mnist_localization", cutmix, loc["Baseline"])
    assert verdict in text, text
    assert "| Method | Last top-1 loc. | Best top-1 loc. |" in text and "Last MaxBoxAccV2 | Last top-1 err." in text
    assert f"{statistics.fmean(cutmix) + 10:.2f} ± " in row and "21.00 ± 0.00 (n=3)" in row  # V2, top-1 error
    assert "| not run |" in next(line for line in text.splitlines() if line.startswith("| SaliencyMix (authors'"))
    assert "IoU ≥ 0.5" in text
    # the table's question (does SaliencyMix's guidance matter?): each pair on localization and on the error
    assert "**Does SaliencyMix's guidance matter?" in text
    assert ("- top-1 localization accuracy: SaliencyMix (8-bit pixels) has a significantly higher top-1 localization "
            "accuracy than + CutMix (α=1.0)") in text
    assert "- top-1 error: SaliencyMix (8-bit pixels) vs SaliencyMix (authors' input): not enough runs" in text
