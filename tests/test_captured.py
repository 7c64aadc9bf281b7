"""trainer.capture (engine/captured.py): the whole step as one CUDA graph. What can be checked without a GPU is
checked here: the step the graph holds (static buffers, the lr as a device tensor the schedule writes into, the
metrics read from the graph's outputs) trains exactly as the eager step does, run without a graph on the CPU;
the switch refuses in one line where one graph per step cannot hold; on the CPU nothing changes. The capture
itself runs on CUDA only: scripts/gpu_check.sh fused measures and checks it."""

from __future__ import annotations

import copy

import pytest
import torch
from helpers import FAST, TINY_MODEL, fit_run, train_main

from cutmix_repro.config import compose
from cutmix_repro.engine.captured import CapturedStep, capture_body, check_capture
from cutmix_repro.engine.step import StepOptions, train_one_epoch
from cutmix_repro.errors import ConfigError
from cutmix_repro.models import create_model
from cutmix_repro.regularizers import CutMix, Mixup


@pytest.mark.parametrize("mixer", ["cutmix", "mixup"])
def test_the_captured_body_trains_as_the_eager_step_across_an_lr_milestone(mixer):
    torch.manual_seed(0)
    base = create_model("cifar_resnet", 10, depth=8, bottleneck=False)
    data = [(torch.randn(16, 3, 16, 16), torch.randint(10, (16,))) for _ in range(3)]
    data.append((torch.randn(5, 3, 16, 16), torch.randint(10, (5,))))  # a last, smaller batch: eager
    options = StepOptions(device=torch.device("cpu"), label_smoothing=0.1)
    trained = {}
    for captured in (False, True):
        model = copy.deepcopy(base)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
        schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, [1], 0.1)
        make = CutMix if mixer == "cutmix" else Mixup
        regularizer = make(alpha=1.0, capturable=captured)  # p = 1: the same draws, made on the device
        step = CapturedStep(capture_body(model, regularizer, options), optimizer, torch.device("cpu"), graph=False) \
            if captured else None
        torch.manual_seed(1)
        history = []
        for epoch in range(2):
            batches = [(x.clone(), y) for x, y in data]
            result = train_one_epoch(model, batches, regularizer, optimizer, torch.amp.GradScaler("cpu", enabled=False),
                                     options, epoch, captured=step)
            history.append((result["loss"], result["top1_err"]))
            schedule.step()
            if step is not None:  # the schedule's value, in the very tensor the graph reads
                step.sync_lr()
                assert optimizer.param_groups[0]["lr"] is step.lr[0]
                assert float(step.lr[0]) == pytest.approx(schedule.get_last_lr()[0])
        assert float(optimizer.param_groups[0]["lr"]) == pytest.approx(0.01)
        trained[captured] = (model, history)
    for (name, a), b in zip(trained[False][0].named_parameters(), trained[True][0].parameters()):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5), name
    for (loss_a, err_a), (loss_b, err_b) in zip(trained[False][1], trained[True][1]):
        assert loss_a == pytest.approx(loss_b, rel=1e-5) and err_a == err_b


@pytest.mark.parametrize("overrides, needle", [
    (["regularizer=feature_cutmix"], "feature-level mixing"),
    (["regularizer=cutmix"], "use regularizer.capturable=true"),
    (["regularizer=cutout"], "the regularizer Cutout decides on the host"),
    (["regularizer=cutmix", "regularizer.capturable=true", "trainer.accumulate=2"], "trainer.accumulate"),
    (["regularizer=mixup", "regularizer.capturable=true", "trainer.compile=true"], "trainer.compile"),
])
def test_capture_refuses_in_one_line_where_one_graph_cannot_hold(overrides, needle, tmp_path, monkeypatch):
    from cutmix_repro.config import build

    cfg = compose([*TINY_MODEL, "dataset=synthetic", *overrides, "trainer.capture=true"])
    with pytest.raises(ConfigError, match=f"trainer.capture=True is invalid: .*{needle}"):
        check_capture(cfg, build(cfg.regularizer, "regularizer"), 1)
    run = tmp_path / "run"
    status, err = train_main(["dataset=synthetic", "dataset.train_size=32", "dataset.test_size=16", *TINY_MODEL,
                              *FAST, *overrides, "trainer.capture=true", f"hydra.run.dir={run}"], monkeypatch)
    assert status == 2 and len(err.strip().splitlines()) == 1 and needle in err, err
    assert not run.exists()


def test_on_the_cpu_nothing_changes_and_capture_runs_alone_under_the_fused_launcher(tmp_path):
    from cutmix_repro.engine.fused_groups import why_alone

    args = ["dataset=synthetic", "dataset.train_size=32", "dataset.test_size=16", *TINY_MODEL, "trainer.epochs=1",
            "trainer.batch_size=16", "regularizer=cutmix", "regularizer.capturable=true"]
    result = fit_run([*args, "trainer.capture=true"], tmp_path / "captured")
    plain = fit_run(args, tmp_path / "plain")
    assert result["captured"] is False and result["history"][0]["val_loss"] == plain["history"][0]["val_loss"]
    assert "trainer.capture" in why_alone(compose([*args, "trainer.capture=true"]))
    assert isinstance(torch.load(tmp_path / "captured" / "last.pt", weights_only=True)["optimizer"]["param_groups"][0]
                      ["lr"], float)
