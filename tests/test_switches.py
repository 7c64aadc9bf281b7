"""Recipe switches that are not the paper's (issue: beyond the paper): cosine with linear warm-up, and how every
such switch is recorded (results.json, the TensorBoard session) and kept out of the paper's rows (the report
marks it wherever the run appears)."""

import math

import pytest
import torch
from helpers import TINY_MODEL, fit_run

from cutmix_repro.config import compose, recipe_switches
from cutmix_repro.engine.schedule import cosine_warmup
from cutmix_repro.errors import ConfigError
from cutmix_repro.paper import config_key


def test_cosine_warms_up_linearly_then_follows_the_cosine_to_min_lr():
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.2)
    epochs, warmup, start, floor = 12, 3, 0.01, 0.001
    scheduler = cosine_warmup(optimizer, epochs, warmup, start, floor)
    seen = []
    for _ in range(epochs):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    expected = [0.2 * (start + (1 - start) * e / warmup) if e < warmup else
                floor + (0.2 - floor) * (1 + math.cos(math.pi * (e - warmup) / (epochs - warmup))) / 2
                for e in range(epochs)]
    assert seen == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ConfigError, match="warmup_epochs"):
        cosine_warmup(optimizer, 5, 5, start, floor)


def test_a_switch_is_recorded_and_its_run_never_fills_a_paper_row(tmp_path):
    paper = compose(["+experiment=cifar100_pyramidnet", "regularizer=cutmix"])
    cosine = compose(["+experiment=cifar100_pyramidnet", "regularizer=cutmix", "scheduler=cosine"])
    assert recipe_switches(paper) == {}
    assert recipe_switches(cosine) == {"scheduler": "cosine_warmup(warmup_epochs=5, warmup_start=0.01, min_lr=0.0)"}
    assert config_key(("+experiment=cifar100_pyramidnet", "regularizer=cutmix")) != \
        config_key(("+experiment=cifar100_pyramidnet", "regularizer=cutmix", "scheduler=cosine"))
    result = fit_run(["dataset=synthetic", "dataset.train_size=32", "dataset.test_size=16", "dataset.image_size=16",
                      *TINY_MODEL, "trainer.epochs=3", "trainer.batch_size=16", "trainer.lr=0.1", "scheduler=cosine",
                      "scheduler.warmup_epochs=1", "scheduler.warmup_start=0.5"], tmp_path / "run")
    assert result["switches"] == {"scheduler": "cosine_warmup(warmup_epochs=1, warmup_start=0.5, min_lr=0.0)"}
    assert [h["lr"] for h in result["history"]] == pytest.approx([0.05, 0.1, 0.05])  # warm-up, then the cosine


def test_the_report_marks_a_switched_run_and_keeps_it_out_of_the_paper_row(tmp_path):
    from test_report import fake_result, write_runs

    from cutmix_repro.report import generate

    row = ["+experiment=cifar100_pyramidnet", "regularizer=cutmix"]
    paper = fake_result(row, 14.6, 14.9)
    switched = {**fake_result([*row, "scheduler=cosine"], 13.0, 13.1, seed=1),
                "switches": recipe_switches(compose([*row, "scheduler=cosine"]))}
    write_runs(tmp_path / "runs", [paper, switched])
    generate([str(tmp_path / "runs")], tmp_path / "out", figures=False)
    table5 = (tmp_path / "out" / "table5.md").read_text()
    cutmix = next(line for line in table5.splitlines() if line.startswith("| + CutMix |")).split(" | ")
    assert cutmix[2] == "14.60 (n=1)"  # the cosine run is not among the paper row's runs
    unmatched = (tmp_path / "out" / "unmatched_runs.md").read_text()
    assert "scheduler=cosine_warmup(warmup_epochs=5, warmup_start=0.01, min_lr=0.0), not the paper's" in unmatched
    assert "13.00" in unmatched


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_bce_on_mixed_targets_equals_timms(smoothing):
    from timm.data.mixup import mixup_target
    from timm.loss import BinaryCrossEntropy

    from cutmix_repro.regularizers import MixedBatch, mixed_binary_cross_entropy

    torch.manual_seed(0)
    logits, y = torch.randn(8, 10, dtype=torch.float64), torch.randint(10, (8,))
    for lam in (1.0, 0.7, 0.25):  # timm mixes each image with the batch flipped
        batch = MixedBatch(torch.zeros(8), y, y.flip(0), lam)
        theirs = BinaryCrossEntropy(smoothing=0.0)(logits, mixup_target(y, 10, lam, smoothing))
        ours = mixed_binary_cross_entropy(logits, batch, smoothing)
        assert float(ours) == pytest.approx(float(theirs), rel=1e-6)  # timm builds float32 targets
    lam = torch.rand(8, dtype=torch.float64)  # per image: each row its own weight
    rows = [mixed_binary_cross_entropy(logits[i:i + 1], MixedBatch(None, y[i:i + 1], y.flip(0)[i:i + 1],
                                                                   float(lam[i])), smoothing) for i in range(8)]
    together = mixed_binary_cross_entropy(logits, MixedBatch(None, y, y.flip(0), lam), smoothing)
    assert float(together) == pytest.approx(float(torch.stack(rows).mean()), rel=1e-12)


def test_loss_bce_trains_is_marked_and_a_bad_loss_is_one_line(tmp_path, monkeypatch):
    from helpers import train_main

    result = fit_run(["dataset=synthetic", "dataset.train_size=32", "dataset.test_size=16", "dataset.image_size=16",
                      *TINY_MODEL, "trainer.epochs=1", "trainer.batch_size=16", "loss=bce"], tmp_path / "run")
    assert result["switches"] == {"loss": "bce"} and math.isfinite(result["history"][0]["train_loss"])
    status, err = train_main(["loss=focal", "trainer.device=cpu", f"hydra.run.dir={tmp_path / 'bad'}"], monkeypatch)
    assert status == 2 and err.strip().splitlines() == [err.strip()] and "loss='focal'" in err and "bce" in err
    assert not (tmp_path / "bad").exists()
