"""The benchmark runs at tiny sizes and writes its report (targets are read from its output,
never asserted by timing here)."""

import subprocess
from pathlib import Path

import torch

from cutmix_repro.bench import forward_flops
from cutmix_repro.models import create_model
from cutmix_repro.paper import load_tables

ROOT = Path(__file__).resolve().parents[1]


def test_bench_quick_writes_a_report_with_every_section(tmp_path, capsys):
    from cutmix_repro.bench import main

    assert main(["--quick", "--out", str(tmp_path)]) == 0
    reports = list(tmp_path.glob("*.md"))
    assert len(reports) == 1
    text = reports[0].read_text()
    for heading in ("Mixing op", "CIFAR input pipeline", "Trainer overhead", "CUDA training throughput",
                    "Eager vs compiled training step", "ImageNet decoding and augmentation",
                    "Table 10's transfer: detector training steps", "with and without the devkit's +1 pixel",
                    "Extra augmentation (`augment=`)", "Weight EMA (`trainer.ema_decay`)",
                    "FMix's masks: the authors' spectrum vs the isotropic one",
                    "Fused members: k runs as one model vs k runs one after another",
                    "SaliencyMix: how often the saliency peak lands on the object",
                    "The CPU step's options"):
        assert heading in text
    assert "torch" in text and "Machine" in text and text.startswith("# Benchmarks, 20")
    assert "ours / timm" in text and "speed-up" in text
    assert "| resnet8 | 8 | default |" in text and "| resnet8 feature-cutmix | 8 | default |" in text
    assert "| resnet20, Fashion-MNIST 1x28x28 | 2 runs side by side, 1 thread each (sum) |" in text
    assert "`trainer.channels_last=auto` picks here: resnet20, Fashion-MNIST 1x28x28:" in text


def test_pyramidnet200_costs_nine_gflop_per_image_forward():
    flops = forward_flops(create_model("pyramidnet200", 100), (3, 32, 32))
    assert abs(flops / 1e9 - load_tables()["models"]["pyramidnet200_forward_gflop"]) < 0.2


def test_gpu_check_script_is_valid_bash():
    assert subprocess.run(["bash", "-n", str(ROOT / "scripts" / "gpu_check.sh")]).returncode == 0


def test_gpu_hour_estimates_use_the_fastest_gpu_measurement_of_the_model(tmp_path):
    import json

    from cutmix_repro.throughput import measured_throughput

    path = tmp_path / "throughput.json"
    rows = [{"model": "pyramidnet200", "data": "cifar", "device": "NVIDIA H100", "images_per_s": 2000.0,
             "mode": "eager"},
            {"model": "pyramidnet200", "data": "cifar", "device": "NVIDIA H100", "images_per_s": 4000.0,
             "mode": "reduce-overhead"},
            {"model": "pyramidnet200", "data": "cifar", "device": "cpu", "images_per_s": 9e9, "mode": "default"},
            {"model": "resnet50", "data": "imagenet", "device": "NVIDIA H100", "images_per_s": 3000.0, "mode": "eager"}]
    path.write_text(json.dumps(rows))
    assert measured_throughput("pyramidnet200", "cifar100", path)["mode"] == "reduce-overhead"
    assert measured_throughput("resnet50", "imagenet", path)["images_per_s"] == 3000.0
    assert measured_throughput("resnet50", "cifar10", path) is None


def test_the_estimate_does_not_depend_on_where_the_command_is_typed(tmp_path, monkeypatch, capsys):
    """``reproduce NAME --dry-run`` reads the measured rates of the checkout it runs from (or CUTMIX_THROUGHPUT),
    not ``results/`` of the working directory: the same estimate from the repository's root and from elsewhere."""
    import json

    from cutmix_repro import reproduce, throughput

    monkeypatch.delenv("CUTMIX_THROUGHPUT", raising=False)
    assert throughput.THROUGHPUT_FILE == ROOT / "results" / "bench" / "throughput.json"
    estimates = []
    for folder in (ROOT, tmp_path):
        monkeypatch.chdir(folder)
        assert reproduce.main(["table7", "--dry-run"]) == 0
        estimates.append([line for line in capsys.readouterr().out.splitlines() if line.startswith("estimate:")])
    assert estimates[0] == estimates[1] and "GPU-hours" in estimates[0][0], estimates
    mine = tmp_path / "mine.json"  # another file, named
    mine.write_text(json.dumps([{"model": "pyramidnet200", "data": "cifar", "device": "NVIDIA H100",
                                 "images_per_s": 1000.0, "mode": "eager", "date": "2026-12-06"}]))
    monkeypatch.setenv("CUTMIX_THROUGHPUT", str(mine))
    assert reproduce.main(["table7", "--dry-run"]) == 0
    assert "1000 img/s on NVIDIA H100" in capsys.readouterr().out


def test_gpu_check_training_overrides_are_valid_config_keys():
    """The GPU check's training run composes (its keys exist) before any GPU is needed for it."""
    import shlex

    from cutmix_repro.config import compose, recipe_switches
    from cutmix_repro.fusion.groups import fusion_groups

    script = (ROOT / "scripts" / "gpu_check.sh").read_text().replace("\\\n", " ")
    runs = {}  # part name -> its training run's config
    for part in script.split("\npart_")[1:]:
        name = part.split("(")[0]
        for line in (ln for ln in part.splitlines() if "-m cutmix_repro.train" in ln):
            args = shlex.split(line.split("-m cutmix_repro.train", 1)[1])
            overrides = [a for a in args if "=" in a and not a.startswith("hydra")]
            if name == "fused":  # a multirun through the fused launcher: its jobs must form one group
                assert "hydra/launcher=fused" in args and "trainer.amp=bf16" in overrides
                from cutmix_repro.train import _first_of_each_sweep

                sweep = [a for a in overrides if a.startswith("regularizer=")][0]
                single = _first_of_each_sweep(overrides)[1]  # every other sweep at its first value
                jobs = [compose([o if not o.startswith("regularizer=") else f"regularizer={r}" for o in single])
                        for r in sweep.split("=")[1].split(",")]
                assert fusion_groups(jobs, 8) == ([list(range(len(jobs)))], {})
                continue
            assert {"trainer.compile=true", "trainer.amp=bf16"} <= set(overrides), name
            runs[name] = compose(overrides)
    assert set(runs) == {"train", "switches"}
    assert runs["train"].trainer.compile and runs["train"].trainer.epochs >= 3  # steady state: epochs after the first
    assert recipe_switches(runs["train"]) == {}
    assert set(recipe_switches(runs["switches"])) == {"scheduler", "ema_decay", "augment"}


def test_the_captured_rows_of_the_fused_section_run_where_there_is_no_graph():
    """On CUDA section 12 adds the captured solo step and each fused group captured; their code runs here too
    (CapturedStep without a graph on the CPU), so a GPU session does not meet a slip of ours first."""
    from cutmix_repro.bench.fused import _captured_row, _fused_captured_row
    from cutmix_repro.engine.optim import sgd
    from cutmix_repro.engine.step import StepOptions
    from cutmix_repro.fusion.model import MemberRNG, fuse_models, share_with_members
    from cutmix_repro.regularizers import CutMix

    device, options = torch.device("cpu"), StepOptions(device=torch.device("cpu"), log_interval=100)
    model = create_model("cifar_resnet", 100, depth=8, bottleneck=False)
    batches = [(torch.randn(4, 3, 32, 32), torch.randint(100, (4,))) for _ in range(2)]
    optimizer = sgd(model, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4, classifier_lr=None)
    row = _captured_row("resnet8", 78_000, model, optimizer, batches, options, 4, 2, 100.0, 0.01)
    assert "capture_error" not in row and row["aggregate_images_per_s"] > 0 and row["mode"] == "captured"
    models = [create_model("cifar_resnet", 100, depth=8, bottleneck=False) for _ in range(2)]
    rngs = [MemberRNG(device) for _ in range(2)]
    fused = fuse_models(models, rngs)
    fused_opt = torch.optim.SGD(list(share_with_members(fused, models).values()), lr=0.1, momentum=0.9)
    data = [[(torch.randn(4, 3, 32, 32), torch.randint(100, (4,))) for _ in range(2)] for _ in range(2)]
    row = _fused_captured_row("resnet8", 78_000, fused, fused_opt, data, rngs, [CutMix(), CutMix()], options, 4, 2,
                              100.0, 0.01)
    assert "capture_error" not in row and row["aggregate_images_per_s"] > 0 and row["members"] == 2
