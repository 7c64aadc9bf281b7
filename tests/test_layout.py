"""``trainer.channels_last=auto`` on the CPU: both layouts timed on a copy of the model, the faster one trained,
the choice kept per machine and setting (no run flips on timing noise), and a resumed run in its checkpoint's
layout."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import FAST, TINY_MODEL

from cutmix_repro.config import compose
from cutmix_repro.engine import layout
from cutmix_repro.engine.distributed import DistInfo
from cutmix_repro.engine.trainer import fit, start_run
from cutmix_repro.models import create_model

SMALL = ["dataset=synthetic", "dataset.train_size=32", "dataset.test_size=16", "trainer.batch_size=16", *TINY_MODEL]


def test_the_probe_times_both_layouts_and_leaves_the_model_and_the_random_streams_alone():
    model = create_model("cifar_resnet", 10, depth=8, bottleneck=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    faster, times = layout.faster_layout(model, (3, 32, 32), 8, 10, steps=1)
    assert torch.equal(torch.rand(3), expected), "the global random stream is where it was"
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items()) and model.stem[0].weight.grad is None
    assert model.stem[0].weight.is_contiguous()
    assert times["contiguous_s"] > 0 and times["channels_last_s"] > 0
    assert faster == (times["channels_last_s"] < times["contiguous_s"])


def test_a_choice_is_measured_once_per_setting_and_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("CUTMIX_CACHE_DIR", str(tmp_path))
    calls = []

    def fake(model, shape, batch, num_classes, steps=2):
        calls.append(shape)
        return len(calls) % 2 == 1, {"contiguous_s": 2.0, "channels_last_s": 1.0}  # flips at every measurement

    monkeypatch.setattr(layout, "faster_layout", fake)
    model = create_model("cifar_resnet", 10, depth=8, bottleneck=False)
    first = layout.cpu_layout(model, (3, 32, 32), 16, 10)
    again = layout.cpu_layout(model, (3, 32, 32), 16, 10)
    assert first["measured"] and not again["measured"] and first["chosen"] == again["chosen"] == "channels_last"
    other = layout.cpu_layout(model, (1, 28, 28), 16, 10)  # another setting: measured on its own
    assert other["measured"] and other["chosen"] == "contiguous" and len(calls) == 2
    assert len(json.loads(layout.cache_file().read_text())) == 2


@pytest.mark.parametrize("chosen", [True, False])
def test_a_run_trains_in_the_chosen_layout_and_records_it(tmp_path, monkeypatch, chosen):
    monkeypatch.setenv("CUTMIX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(layout, "faster_layout",
                        lambda *a, **k: (chosen, {"contiguous_s": 1.0, "channels_last_s": 0.5 if chosen else 2.0}))
    cfg = compose([*SMALL, *FAST, "trainer.epochs=1"])
    run = start_run(cfg, tmp_path / "run", None, DistInfo(), torch.device("cpu"))
    weight = run.parts.model.stem[0].weight
    assert run.parts.options.channels_last == chosen
    assert weight.is_contiguous(memory_format=torch.channels_last if chosen else torch.contiguous_format)
    assert run.record["layout_probe"]["chosen"] == ("channels_last" if chosen else "contiguous")
    run.recorder.close()
    fixed = compose([*SMALL, *FAST, "trainer.epochs=1", "trainer.channels_last=false"])
    assert fit(fixed, tmp_path / "fixed")["layout_probe"] is None, "only auto measures"


def test_a_resumed_run_keeps_its_checkpoints_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("CUTMIX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(layout, "faster_layout", lambda *a, **k: (True, {"contiguous_s": 1.0, "channels_last_s": 0.5}))
    fit(compose([*SMALL, *FAST, "trainer.epochs=1"]), tmp_path / "run")
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["channels_last"] is True
    monkeypatch.setenv("CUTMIX_CACHE_DIR", str(tmp_path / "another-machine"))  # measured anew: the other way
    monkeypatch.setattr(layout, "faster_layout", lambda *a, **k: (False, {"contiguous_s": 0.5, "channels_last_s": 1.0}))
    run = start_run(compose([*SMALL, *FAST, "trainer.epochs=2", "trainer.resume=true"]), tmp_path / "run", None,
                    DistInfo(), torch.device("cpu"))
    assert run.position.epoch == 1 and run.parts.options.channels_last
    assert run.parts.model.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    run.recorder.close()
