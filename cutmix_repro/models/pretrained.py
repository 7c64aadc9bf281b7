"""Starting weights: the one reader of every ``init_from`` (the localization models of appendix B, Table 10's
transfer, Figure 1's ``--weights``) and of every weights file a user brings:

- a run directory of ours (its ``best.pt``, the checkpoint the paper's tables report; else ``last.pt``) or a
  checkpoint file of ours (``model``, ``meta``, ``config``);
- ``torchvision``: torchvision's ImageNet weights for the model, from torch hub's cache (nothing is downloaded);
- the authors' released checkpoints (clovaai/CutMix-PyTorch: ``state_dict`` under DataParallel's ``module.``,
  with ``arch`` and ``best_err1``);
- a plain state dict (``torch.save(model.state_dict())``, ours or torchvision-named), with or without a
  ``module.`` prefix, or a ``.safetensors`` file (``python -m cutmix_repro.export``).

Files saved before PyTorch 0.4.1 (torchvision's first ResNet releases among them) or by other tools hold no
BatchNorm ``num_batches_tracked``: that counter is not a weight (it only matters to BatchNorm with
``momentum=None``) and is never required; a model keeps its own. Every other tensor is: the first real weight
that is missing, misshapen or has no place in the model is named in one line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from ..errors import ConfigError

NOT_WEIGHTS = ("num_batches_tracked",)  # buffers that are counters, not weights


def is_weight(key: str) -> bool:
    return not key.endswith(NOT_WEIGHTS)


@dataclass
class StartingWeights:
    state: dict[str, torch.Tensor]  # the producer's key names, less DataParallel's ``module.`` and our ``net.``
    source: str                     # what it is, in words
    form: str                       # "ours", "torchvision", "authors" or "state_dict"
    saved: dict | None = None       # a checkpoint of ours, whole (config, meta, epoch)
    path: Path | None = None        # the file read
    top1_err: float | None = None   # what the producer recorded of it (the authors' best_err1; torchvision's docs)
    details: dict = field(default_factory=dict)


def torchvision_file(model_name: str) -> tuple[Path, str]:
    """(where torchvision keeps the ImageNet weights of ``model_name``: torch hub's cache, their address)."""
    from torchvision.models import get_model_weights

    try:
        url = get_model_weights(model_name).IMAGENET1K_V1.url
    except (ValueError, KeyError, AttributeError):
        raise ConfigError("init_from", "torchvision", f"torchvision has no ImageNet weights for {model_name}") from None
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1], url


def torchvision_top1_err(model_name: str) -> float | None:
    """torchvision's documented top-1 error of its IMAGENET1K_V1 weights (ResNet-50: 100 − 76.130)."""
    from torchvision.models import get_model_weights

    try:
        acc = get_model_weights(model_name).IMAGENET1K_V1.meta["_metrics"]["ImageNet-1K"]["acc@1"]
    except (ValueError, KeyError, AttributeError):
        return None
    return round(100.0 - float(acc), 3)


def _strip(state: dict, prefix: str) -> dict:
    """``state`` less ``prefix`` on its keys when every key has it (DataParallel's ``module.``, our ``net.``)."""
    if state and all(isinstance(k, str) and k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return state


def _tensors(state, init_from: str, what: str) -> dict[str, torch.Tensor]:
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError("init_from", init_from, f"{what} holds no state dict of tensors")
    return _strip(_strip(dict(state), "module."), "net.")


def read_with_numpy_scalars(path: str | Path) -> dict:
    """The file's dict, loaded with ``weights_only=True``: tensors, plain numbers, strings, and the numpy
    scalars an older ``torch.save`` may have kept (allowed explicitly, nothing else)."""
    core = getattr(np, "_core", None) or np.core
    allowed = [core.multiarray.scalar, np.dtype, type(np.dtype(np.float64)), type(np.dtype(np.int64))]
    try:
        with torch.serialization.safe_globals(allowed):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConfigError("checkpoint", str(path), "no such file") from None
    except Exception as err:
        raise ConfigError("checkpoint", str(path),
                          f"not a checkpoint torch can read safely ({type(err).__name__})") from None
    if not isinstance(state, dict) or "state_dict" not in state:
        raise ConfigError("checkpoint", str(path), "not an authors' checkpoint (a dict with state_dict)")
    return state


def _load_file(path: Path, init_from: str):
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as err:
            raise ConfigError("init_from", init_from, f"not a readable safetensors file ({type(err).__name__})") \
                from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        try:  # the authors' files may hold numpy scalars; this reader allows exactly those
            return read_with_numpy_scalars(path)
        except ConfigError:
            raise ConfigError("init_from", init_from, "not a weights file torch can read safely (a checkpoint or "
                              "state dict saved with torch.save, or a .safetensors file)") from None


def read_starting_weights(init_from: str, model_name: str) -> StartingWeights:
    """The weights ``init_from`` names (module docstring); ``model_name`` is torchvision's name of the model
    (``resnet50``, ``vgg16``), for ``init_from=torchvision``."""
    if init_from in (None, "", "none", "None"):
        raise ConfigError("init_from", init_from, "give the weights to start from: a run directory or checkpoint "
                          "of ours, torchvision, the authors' released checkpoint, or a state dict file")
    if init_from == "torchvision":
        path, url = torchvision_file(model_name)
        if not path.is_file():
            raise ConfigError("init_from", init_from, f"torchvision's ImageNet weights are not on this machine "
                              f"(expected {path}, from {url}): place the file there, or give a run directory "
                              "or checkpoint of ours, the authors' checkpoint or a state dict file")
        state = _tensors(_load_file(path, init_from), init_from, "torchvision's file")
        return StartingWeights(state, f"torchvision {model_name} IMAGENET1K_V1", "torchvision", path=path,
                               top1_err=torchvision_top1_err(model_name))
    path = Path(init_from)
    if path.is_dir():
        found = [path / name for name in ("best.pt", "last.pt") if (path / name).is_file()]
        if not found:
            raise ConfigError("init_from", init_from, "a folder without best.pt or last.pt: give a training run "
                              "directory or a weights file")
        path = found[0]
    elif not path.is_file():
        raise ConfigError("init_from", init_from, "no such folder or file: give a run directory or checkpoint of "
                          "ours, torchvision, the authors' released checkpoint, or a state dict file")
    raw = _load_file(path, init_from)
    if isinstance(raw, dict) and "model" in raw and "meta" in raw:  # a training checkpoint of ours
        return StartingWeights(_tensors(raw["model"], init_from, "the checkpoint"), f"our run {path}", "ours",
                               saved=raw, path=path)
    if isinstance(raw, dict) and isinstance(raw.get("state_dict"), dict):  # the authors' release
        error = raw.get("best_err1")
        return StartingWeights(_tensors(raw["state_dict"], init_from, "the authors' checkpoint"),
                               f"authors' {path.name} (arch {raw.get('arch', '?')})", "authors", path=path,
                               top1_err=float(error) if error is not None else None)
    return StartingWeights(_tensors(raw, init_from, "the file"), f"state dict {path.name}", "state_dict", path=path)


class WeightProblem(NamedTuple):
    kind: str  # "missing", "shape" or "extra"
    key: str
    text: str  # in words, about "this model"


def weight_problem(own: dict[str, tuple[int, ...]], state: dict[str, torch.Tensor],
                   may_lack=()) -> WeightProblem | None:
    """What keeps ``state`` from being ``own``'s weights (key → shape), or None: the first real weight of ``own``
    that ``state`` lacks or holds in another shape (keys starting with ``may_lack`` may be absent), else the first
    of ``state`` with no place in ``own``. ``num_batches_tracked`` counts on neither side."""
    for key, shape in own.items():
        if not is_weight(key):
            continue
        if key not in state:
            if not key.startswith(tuple(may_lack)):
                return WeightProblem("missing", key, f"it has no weight {key}")
        elif tuple(state[key].shape) != tuple(shape):
            return WeightProblem("shape", key, f"its weight {key} is {tuple(state[key].shape)}, where this "
                                 f"model's is {tuple(shape)}")
    for key, value in state.items():
        if is_weight(key) and key not in own:
            return WeightProblem("extra", key, f"its weight {key} {tuple(value.shape)} has no place in this model")
    return None


def fit_starting_weights(module: torch.nn.Module, weights: StartingWeights, init_from: str, *,
                         classifier: str | None, rename: Callable[[str], str | None] | None = None,
                         new: tuple[str, ...] = ()) -> None:
    """Load ``weights`` into ``module``: all of it but the classifier (keys starting ``classifier``, which keep
    their fresh initialisation; ``None``: the classifier too). ``rename`` maps torchvision's key names to the
    module's (``None``: not one of its weights) where they differ; the module's keys starting with ``new`` are
    layers torchvision's model does not have, kept fresh when the weights are torchvision-named. A weight that is
    missing, misshapen or out of place is one ``ConfigError`` naming it."""
    skip = (classifier,) if classifier else ()
    own = {k: tuple(v.shape) for k, v in module.state_dict().items() if not k.startswith(skip)}
    state = {k: v for k, v in weights.state.items() if is_weight(k) and not (skip and k.startswith(skip))}
    may_lack: tuple[str, ...] = ()
    if rename is not None:
        renamed = {}
        for key, value in state.items():
            if (ours := rename(key)) is not None and not (skip and ours.startswith(skip)):
                renamed[ours] = value
        if sum(k in own for k in renamed) > sum(k in own for k in state):  # torchvision's names, not ours
            state, may_lack = renamed, new
    problem = weight_problem(own, state, may_lack)
    if problem is not None:
        raise ConfigError("init_from", init_from, f"{problem.text} ({weights.source})")
    module.load_state_dict(state, strict=False)


def load_starting_weights(module: torch.nn.Module, init_from: str, model_name: str, *, classifier: str | None,
                          rename: Callable[[str], str | None] | None = None,
                          new: tuple[str, ...] = ()) -> StartingWeights:
    """``read_starting_weights`` then ``fit_starting_weights``: the weights read, for the caller's record."""
    weights = read_starting_weights(init_from, model_name)
    fit_starting_weights(module, weights, init_from, classifier=classifier, rename=rename, new=new)
    return weights
