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


class NoNorm(torch.nn.Module):
    """A small convolutional net without BatchNorm: gradient accumulation must then equal the large batch."""

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 5))

    def forward(self, x, mix_layer=None, mix_fn=None):
        return self.body(x)


@pytest.mark.parametrize("regularizer", ["cutmix", "mixup-elem"])
def test_accumulating_four_chunks_equals_the_large_batch_and_clipping_bounds_the_step(regularizer):
    import copy

    from cutmix_repro.engine.step import StepOptions, train_one_epoch
    from cutmix_repro.regularizers import CutMix, Mixup

    torch.manual_seed(0)
    # the last batch of an epoch is smaller (drop_last is off) and its chunks unequal: 30 → 7, 8, 7, 8 images
    data = [(torch.randn(n, 3, 8, 8), torch.randint(5, (n,))) for n in (32, 32, 30)]
    base = NoNorm()
    trained = {}
    for chunks in (1, 4):
        model = copy.deepcopy(base)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        mixer = CutMix(alpha=1.0) if regularizer == "cutmix" else Mixup(alpha=1.0, mode="elem")
        torch.manual_seed(1)  # the same mixing draws: the whole batch is mixed before it is cut into chunks
        batches = [(x.clone(), y) for x, y in data]  # CutMix pastes in place, as the authors' code
        result = train_one_epoch(model, batches, mixer, optimizer, torch.amp.GradScaler("cpu", enabled=False),
                                 StepOptions(device=torch.device("cpu"), accumulate=chunks, label_smoothing=0.1), 0)
        trained[chunks] = (model, result["loss"])
    for (name, a), b in zip(trained[1][0].named_parameters(), trained[4][0].parameters()):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5), name
    assert trained[1][1] == pytest.approx(trained[4][1], rel=1e-5)
    # a last batch smaller than the number of chunks (drop_last is off, as the authors'): no empty chunk's NaN
    small = [(torch.randn(3, 3, 8, 8), torch.randint(5, (3,)))]
    model = copy.deepcopy(base)
    result = train_one_epoch(model, small, CutMix(alpha=1.0), torch.optim.SGD(model.parameters(), lr=0.1),
                             torch.amp.GradScaler("cpu", enabled=False),
                             StepOptions(device=torch.device("cpu"), accumulate=4), 0)
    assert math.isfinite(result["loss"])
    # clipping: with plain SGD of lr 1, one step moves the weights by the clipped gradient, of norm <= 0.01
    model = copy.deepcopy(base)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    train_one_epoch(model, data[:1], CutMix(alpha=1.0), optimizer, torch.amp.GradScaler("cpu", enabled=False),
                    StepOptions(device=torch.device("cpu"), clip_grad_norm=0.01), 0)
    moved = torch.cat([p.detach().flatten() for p in model.parameters()]) - before
    assert float(moved.norm()) == pytest.approx(0.01, rel=1e-4)


def test_accumulation_and_clipping_are_marked_and_checked():
    cfg = compose(["trainer.accumulate=4", "trainer.clip_grad_norm=1.0"])
    assert recipe_switches(cfg) == {"accumulate": "4", "clip_grad_norm": "1.0"}
    from cutmix_repro.engine.trainer import check_trainer

    with pytest.raises(ConfigError, match="trainer.accumulate=3"):
        check_trainer(compose(["trainer.batch_size=64", "trainer.accumulate=3"]).trainer, 1)
    with pytest.raises(ConfigError, match="trainer.clip_grad_norm=0"):
        check_trainer(compose(["trainer.clip_grad_norm=0"]).trainer, 1)
