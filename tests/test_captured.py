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


def test_on_the_cpu_nothing_changes_and_captured_runs_still_fuse(tmp_path):
    from cutmix_repro.fusion.groups import why_alone

    args = ["dataset=synthetic", "dataset.train_size=32", "dataset.test_size=16", *TINY_MODEL, "trainer.epochs=1",
            "trainer.batch_size=16", "regularizer=cutmix", "regularizer.capturable=true"]
    result = fit_run([*args, "trainer.capture=true"], tmp_path / "captured")
    plain = fit_run(args, tmp_path / "plain")
    assert result["captured"] is False and result["history"][0]["val_loss"] == plain["history"][0]["val_loss"]
    assert why_alone(compose([*args, "trainer.capture=true"])) is None
    assert isinstance(torch.load(tmp_path / "captured" / "last.pt", weights_only=True)["optimizer"]["param_groups"][0]
                      ["lr"], float)


def test_a_fused_groups_captured_step_trains_as_its_eager_fused_step(tmp_path, monkeypatch):
    """Fused members under trainer.capture: they mix outside the graph (each under its own random state) and the
    fused forward, their losses, backward and step go through CapturedStep; run without a graph on the CPU, the
    group ends where the eager fused group ends."""
    import cutmix_repro.engine.trainer as trainer_module
    from cutmix_repro.engine import captured as captured_module
    from cutmix_repro.fusion.loop import fit_fused

    members = [["regularizer=cutmix", "seed=0"], ["regularizer=mixup", "seed=1", "label_smoothing=0.1"]]
    base = ["dataset=synthetic", "dataset.train_size=48", "dataset.test_size=16", "dataset.image_size=16",
            "model=pyramidnet", "model.depth=14", "model.alpha=12", "model.bottleneck=false", "model.shakedrop=true",
            "trainer.epochs=2", "trainer.batch_size=16", "trainer.lr=0.01", *FAST, "regularizer.capturable=true"]
    cfgs = [compose([*base[:-1], *m, base[-1]]) for m in members]
    fit_fused(cfgs, [tmp_path / "eager0", tmp_path / "eager1"])

    def on_the_cpu_too(cfg, regularizer, model, optimizer, options, world_size):
        if not captured_module.check_capture(cfg, regularizer, world_size):
            return None
        return CapturedStep(capture_body(model, regularizer, options), optimizer, options.device, graph=False)

    monkeypatch.setattr(trainer_module, "make_captured", on_the_cpu_too)
    calls = {"n": 0}
    real_call = CapturedStep.__call__

    def counting(self, *inputs):
        calls["n"] += 1
        return real_call(self, *inputs)

    monkeypatch.setattr(CapturedStep, "__call__", counting)
    fit_fused([compose([*base[:-1], *m, base[-1], "trainer.capture=true"]) for m in members],
              [tmp_path / "captured0", tmp_path / "captured1"])
    assert calls["n"] == 2 * 3  # every batch of both epochs through the captured step (48 = 3 full batches)
    for i in range(2):
        a = torch.load(tmp_path / f"eager{i}" / "last.pt", weights_only=True)["model"]
        b = torch.load(tmp_path / f"captured{i}" / "last.pt", weights_only=True)["model"]
        for key in a:
            assert torch.allclose(a[key].double(), b[key].double(), atol=1e-6, rtol=1e-5), key
