"""Export a trained model for others' code: ``python -m cutmix_repro.export RUN --to safetensors|torchvision``.

``RUN`` is a run directory of ours (its ``best.pt``, or ``--checkpoint last.pt``) or a checkpoint file of ours.
- ``safetensors``: the model's weights (our key names) in a ``.safetensors`` file whose metadata holds the
  resolved config (``config``, JSON), the model's name by its real shape (``model``), the checkpoint's epoch
  and its data set: ``cutmix_repro.config.build(config.model, "model", num_classes=...)`` rebuilds the model.
- ``torchvision``: a plain state dict in torchvision's ResNet key names (``conv1.weight``, ``layer1.0.bn1.…``,
  ``fc.weight``), loadable with ``torchvision.models.resnet50().load_state_dict(...)`` (or resnet101, or the
  ResNeXt layout): the backbone a transfer user loads (``python -m cutmix_repro.transfer init_from=FILE``).
  Only the ImageNet ResNets have torchvision names; a CIFAR model is one error line.
The file goes to ``--out`` (default: ``RUN/export/<model>.safetensors`` or ``.pth``), written atomically; an
existing file is never replaced unless ``--force``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from .errors import ConfigError

FORMATS = ("safetensors", "torchvision")


def export(run: str | Path, to: str, out: str | Path | None = None, checkpoint: str = "best.pt",
           force: bool = False, weights: str = "model") -> Path:
    from omegaconf import OmegaConf

    from .engine.checkpoint import atomic_write, load_checkpoint
    from .models import TimmResNet
    from .saved import load_run

    if to not in FORMATS:
        raise ConfigError("--to", to, f"one of {', '.join(FORMATS)}")
    saved = load_run(run, checkpoint, weights)
    model, name = saved.model, saved.model.arch_name
    suffix = ".safetensors" if to == "safetensors" else ".pth"
    path = Path(out) if out else saved.run_dir / "export" / f"{name}{'_ema' if weights == 'ema' else ''}{suffix}"
    if path.exists() and not force:
        raise ConfigError("--out", str(path), "exists already: give another --out, or --force to replace it")
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if to == "torchvision":
        if not isinstance(model, TimmResNet):
            raise ConfigError("--to", to, f"torchvision has no {name}: only the ImageNet ResNets (resnet50, "
                              "resnet101, resnext101_32x4d) export to torchvision names; use --to safetensors")
        state = {k.removeprefix("net."): v for k, v in state.items()}  # timm's ResNets use torchvision's names
        atomic_write(path, lambda f: torch.save(state, f))
        return path
    from safetensors.torch import save

    meta = load_checkpoint(saved.checkpoint, {})
    metadata = {"format": "pt", "model": name, "config": json.dumps(OmegaConf.to_container(saved.cfg, resolve=True)),
                "epoch": str(meta.get("epoch", "")), "dataset": str(meta["meta"].get("dataset", "")),
                "num_classes": str(meta["meta"].get("num_classes", "")), "source": str(saved.checkpoint),
                "weights": weights}
    payload = save(state, metadata=metadata)
    atomic_write(path, lambda f: f.write(payload))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cutmix_repro.export",
                                     description=" ".join(__doc__.split("\n\n")[0].split()))  # the first paragraph
    parser.add_argument("run", help="a run directory of ours, or a checkpoint of ours")
    parser.add_argument("--to", required=True, help=f"one of {', '.join(FORMATS)}")
    parser.add_argument("--out", help="the file to write (default: RUN/export/<model>.safetensors or .pth)")
    parser.add_argument("--checkpoint", default="best.pt", help="which checkpoint of a run directory (default best.pt)")
    parser.add_argument("--use-ema", dest="weights", action="store_const", const="ema", default="model",
                        help="the same as --weights ema (timm's validate.py flag)")
    parser.add_argument("--weights", default="model", help="model (the trained weights, default) or ema (their "
                        "moving average, runs with trainer.ema_decay)")
    parser.add_argument("--force", action="store_true", help="replace an existing file")
    args = parser.parse_args(argv)
    try:
        path = export(args.run, args.to, args.out, args.checkpoint, args.force, args.weights)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.to} export written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
