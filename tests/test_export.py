"""python -m cutmix_repro.export: safetensors with the resolved config as metadata (the model rebuilt from it gives
the same logits), torchvision's ResNet names (loaded strictly by torchvision, same logits), and bad requests
refused in one line without touching an existing file."""

import json

import torch
import torchvision
from omegaconf import OmegaConf

from cutmix_repro.config import build, compose
from cutmix_repro.engine.checkpoint import save_checkpoint
from cutmix_repro.export import main


def test_safetensors_carry_the_weights_and_the_config_that_rebuilds_the_model(finished_run, tmp_path, capsys):
    from safetensors import safe_open
    from safetensors.torch import load_file

    run, _ = finished_run
    out = tmp_path / "model.safetensors"
    assert main([str(run), "--to", "safetensors", "--out", str(out)]) == 0
    saved = torch.load(run / "best.pt", weights_only=True)
    weights = load_file(out)
    assert weights.keys() == saved["model"].keys()
    assert all(torch.equal(weights[k], v) for k, v in saved["model"].items())
    with safe_open(out, "pt") as f:
        meta = f.metadata()
    cfg = OmegaConf.create(json.loads(meta["config"]))
    assert meta["epoch"] == str(saved["epoch"]) and int(meta["num_classes"]) == saved["meta"]["num_classes"]
    rebuilt = build(cfg.model, "model", num_classes=int(meta["num_classes"]))
    rebuilt.load_state_dict(weights)
    original = build(OmegaConf.create(saved["config"]).model, "model", num_classes=int(meta["num_classes"]))
    original.load_state_dict(saved["model"])
    x = torch.rand(4, 3, 16, 16)
    assert torch.equal(rebuilt.eval()(x), original.eval()(x))
    # a CIFAR model has no torchvision names: one line, nothing written
    assert main([str(run), "--to", "torchvision", "--out", str(tmp_path / "tv.pth")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "torchvision has no resnet8" in err[0] and not (tmp_path / "tv.pth").exists()


def test_torchvision_export_loads_strictly_into_torchvision_and_gives_the_same_logits(tmp_path, capsys):
    cfg = compose(["+experiment=imagenet_resnet50", "model.variant=resnet18"])
    torch.manual_seed(0)
    model = build(cfg.model, "model", num_classes=10).eval()
    for m in model.modules():  # non-trivial BatchNorm statistics, so a misplaced buffer shows in the logits
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    run = tmp_path / "run"
    save_checkpoint(run / "best.pt", {"model": model.state_dict(), "epoch": 7,
                                      "meta": {"model": "resnet18", "dataset": "imagenet", "num_classes": 10},
                                      "config": OmegaConf.to_container(cfg, resolve=True)})
    assert main([str(run), "--to", "torchvision"]) == 0
    path = run / "export" / "resnet18.pth"
    reference = torchvision.models.resnet18(num_classes=10)
    reference.load_state_dict(torch.load(path, weights_only=True), strict=True)
    x = torch.rand(2, 3, 64, 64)
    assert torch.allclose(reference.eval()(x), model(x), atol=1e-5)
    # an existing file is kept unless --force
    before = path.read_bytes()
    assert main([str(run), "--to", "torchvision"]) == 2
    assert "exists already" in capsys.readouterr().err and path.read_bytes() == before
    assert main([str(run), "--to", "torchvision", "--force"]) == 0
    assert main([str(run), "--to", "onnx"]) == 2 and "one of safetensors, torchvision" in capsys.readouterr().err
