"""Starting weights for a model (``init_from`` of the localization models, paper appendix B): torchvision's
ImageNet weights from a file already on this machine (nothing is downloaded), or a checkpoint of ours
(a run directory's ``last.pt``, or any checkpoint file). The classifier is left out: a localization
model gets a new one for its data set's classes."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import ConfigError


def torchvision_file(model_name: str) -> tuple[Path, str]:
    """(where torchvision keeps the ImageNet weights of ``model_name``: torch hub's cache, their address)."""
    from torchvision.models import get_model_weights

    try:
        url = get_model_weights(model_name).IMAGENET1K_V1.url
    except (ValueError, KeyError, AttributeError):
        raise ConfigError("init_from", "torchvision", f"torchvision has no ImageNet weights for {model_name}") from None
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1], url


def starting_weights(init_from: str, model_name: str, ours_prefix: str) -> dict[str, torch.Tensor]:
    """The state dict ``init_from`` names, in torchvision's key names: ``torchvision`` (torchvision's
    ``model_name`` weights) or the path of a run directory or checkpoint of ours (keys lose ``ours_prefix``)."""
    if init_from == "torchvision":
        path, url = torchvision_file(model_name)
        if not path.is_file():
            raise ConfigError("init_from", init_from, f"torchvision's ImageNet weights are not on this machine "
                              f"(expected {path}, from {url}): place the file there, or give a run directory "
                              "or checkpoint of ours")
        return torch.load(path, map_location="cpu", weights_only=True)
    from ..engine.checkpoint import load_checkpoint

    path = Path(init_from)
    checkpoint = path / "last.pt" if path.is_dir() else path
    if not checkpoint.is_file():
        raise ConfigError("init_from", init_from, "torchvision, or a run directory (its last.pt) or checkpoint of ours")
    state = load_checkpoint(checkpoint, {})["model"]
    return {k.removeprefix(ours_prefix): v for k, v in state.items()}


def load_backbone(module: torch.nn.Module, state: dict[str, torch.Tensor], classifier_prefix: str,
                  init_from: str) -> None:
    """Load ``state`` into ``module``, all of it but the classifier (keys starting ``classifier_prefix``),
    which keeps its fresh initialisation; a key that does not fit is named."""
    state = {k: v for k, v in state.items() if not k.startswith(classifier_prefix)}
    own = module.state_dict()
    for key, value in state.items():
        if key not in own or own[key].shape != value.shape:
            raise ConfigError("init_from", init_from, f"its weight {key} does not fit this model")
    missing = [k for k in own if k not in state and not k.startswith(classifier_prefix)]
    if missing:
        raise ConfigError("init_from", init_from, f"it has no weight {missing[0]} for this model")
    module.load_state_dict(state, strict=False)
