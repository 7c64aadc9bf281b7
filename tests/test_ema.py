"""trainer.ema_decay (issue: beyond the paper): timm's weight EMA, moved after every optimizer step, evaluated
beside the raw model each epoch, kept in checkpoints, scored by ``evaluate --weights ema`` and exported."""

import json

import pytest
import torch
from helpers import TINY_MODEL, fit_run

from cutmix_repro.config import compose, recipe_switches
from cutmix_repro.engine import records as R
from cutmix_repro.engine.ema import WeightEMA
from cutmix_repro.engine.step import StepOptions, evaluate, train_one_epoch
from cutmix_repro.errors import ConfigError
from cutmix_repro.models import create_model
from cutmix_repro.regularizers import Baseline

DECAY = 0.75  # far from 1, so that every update moves the average visibly


def test_the_average_follows_every_step_parameters_and_batchnorm_statistics_alike():
    model = create_model("cifar_resnet", num_classes=4, depth=8, bottleneck=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    ema = WeightEMA(model, DECAY)
    after_steps = []  # the model's full state (weights and BatchNorm buffers) after each optimizer step
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(8, 3, 16, 16, generator=g), torch.randint(4, (8,), generator=g)) for _ in range(5)]

    def record(*_):
        after_steps.append({k: v.detach().clone().float() for k, v in model.state_dict().items()})

    optimizer.register_step_post_hook(record)
    train_one_epoch(model, batches, Baseline(), optimizer, torch.amp.GradScaler("cpu", enabled=False),
                    StepOptions(torch.device("cpu")), epoch=0, ema=ema)
    assert len(after_steps) == 5 and ema.updates == 5
    expected = dict(after_steps[0])  # the first update copies the weights (timm's train.py: step 1 has decay 0)
    for state in after_steps[1:]:
        expected = {k: DECAY * expected[k] + (1 - DECAY) * state[k] for k in expected}
    got = ema.module.state_dict()
    for key, value in expected.items():
        if got[key].is_floating_point():
            torch.testing.assert_close(got[key], value, rtol=1e-5, atol=1e-6, msg=key)
    assert any("running_mean" in k for k in expected), "BatchNorm statistics are averaged too"
    last = model.state_dict()
    assert any(not torch.equal(got[k], last[k]) for k in got if got[k].is_floating_point()), "not the model itself"


RUN = ["dataset=synthetic", "dataset.train_size=48", "dataset.test_size=24", "dataset.image_size=16", *TINY_MODEL,
       "trainer.epochs=2", "trainer.batch_size=16", "trainer.lr=0.1", f"trainer.ema_decay={DECAY}"]


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("ema") / "run"
    return run, fit_run(RUN, run)


def test_each_epoch_records_the_averages_error_beside_the_models_and_marks_the_switch(ema_run):
    run, result = ema_run
    assert result["switches"] == {"ema_decay": str(DECAY)}
    for entry in result["history"]:
        assert {R.VAL_TOP1_EMA, R.VAL_TOP5_EMA, R.VAL_LOSS_EMA} <= entry.keys()
    assert result[R.LAST_TOP1_EMA] == result["history"][-1][R.VAL_TOP1_EMA]
    assert result[R.BEST_TOP1_EMA] == min(h[R.VAL_TOP1_EMA] for h in result["history"])
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["ema"]["updates"] == 2 * 3  # 48 images / 16 per batch, 2 epochs
    # the recorded number is the average's, not the model's: scoring the saved average gives it again
    cfg = compose([*RUN, "trainer.device=cpu"])
    from cutmix_repro.config import build

    data = build(cfg.dataset, "dataset", batch_size=16, device="cpu", seed=cfg.seed)
    model = build(cfg.model, "model", num_classes=data.num_classes)
    options = StepOptions(torch.device("cpu"))
    model.load_state_dict(state["ema"]["weights"])
    assert evaluate(model, data.val, options)["loss"] == pytest.approx(result["history"][-1][R.VAL_LOSS_EMA])
    model.load_state_dict(state["model"])
    assert evaluate(model, data.val, options)["loss"] == pytest.approx(result["history"][-1][R.VAL_LOSS])


def test_evaluate_and_export_take_either_weights(ema_run, tmp_path, capsys):
    from cutmix_repro import evaluate as evaluate_cli
    from cutmix_repro.export import export
    from cutmix_repro.saved import load_run

    run, result = ema_run
    saved = torch.load(run / "last.pt", weights_only=True)
    for weights, key, flags in (("model", R.VAL_TOP1, []), ("ema", R.VAL_TOP1_EMA, ["--use-ema"])):  # default: model
        loaded = load_run(run, "last.pt", weights).model.state_dict()
        source = saved["ema"]["weights"] if weights == "ema" else saved["model"]
        assert all(torch.equal(v, source[k]) for k, v in loaded.items())
        out = tmp_path / weights
        assert evaluate_cli.main([str(run), "clean", "--checkpoint", "last.pt", *flags, "--out", str(out),
                                  "--device", "cpu"]) == 0
        clean = json.loads((out / "evaluation.json").read_text())["clean"]
        assert clean["top1_err"] == pytest.approx(result["history"][-1][key])
    path = export(run, "safetensors", checkpoint="last.pt", weights="ema")
    from safetensors.torch import load_file

    assert path.name.endswith("_ema.safetensors")
    assert all(torch.equal(v, saved["ema"]["weights"][k]) for k, v in load_file(path).items())


def test_bad_decay_and_a_checkpoint_without_the_average_are_one_clear_error(ema_run, finished_run, tmp_path):
    from cutmix_repro.saved import load_run

    for bad in (1.0, 0, -0.5, "fast"):
        with pytest.raises(ConfigError, match="trainer.ema_decay"):
            fit_run([*RUN, f"trainer.ema_decay={bad}"], tmp_path / f"bad{bad}")
        assert not (tmp_path / f"bad{bad}").exists()
    with pytest.raises(ConfigError, match="holds no weight EMA.*--weights model"):
        load_run(finished_run[0], weights="ema")
    assert recipe_switches(compose([])) == {}
