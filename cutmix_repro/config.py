"""The Hydra configs: where they live, composing them outside a Hydra app, and building a component
from its config group with errors that name the key.

``configs/`` of a source checkout is used when present, else the copy that ships inside the
installed package (``cutmix_repro/configs``).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig
from omegaconf.errors import MissingMandatoryValue

from .errors import ConfigError

GROUPS = ("dataset", "model", "regularizer", "optimizer", "scheduler", "augment", "logger", "trainer", "experiment")


def config_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "configs", here / "configs"):
        if (candidate / "train.yaml").exists():
            return candidate
    raise FileNotFoundError("cutmix_repro: no configs/ directory found beside the package")


def options(group: str) -> list[str]:
    """The choices of a config group (``model`` → ``cifar_resnet``, ``pyramidnet``, …)."""
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


def compose(overrides: list[str] | tuple[str, ...] = (), config_name: str = "train") -> DictConfig:
    """``train.yaml`` (or ``transfer.yaml``) composed with Hydra overrides, as ``python -m cutmix_repro.train``
    (``.transfer``) would."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return hydra_compose(config_name, overrides=list(overrides))


def build(node: DictConfig, group: str, **kwargs):
    """``hydra.utils.instantiate(node, **kwargs)``; a ``ConfigError`` raised while building gets the
    group prefixed to its key, any other failure becomes one ``ConfigError`` about the group."""
    from hydra.utils import instantiate

    try:
        return instantiate(node, **kwargs)
    except Exception as err:
        cause = err
        while cause.__cause__ is not None and not isinstance(cause, ConfigError):
            cause = cause.__cause__
        if isinstance(cause, ConfigError):
            raise cause.within(group) from None
        if isinstance(cause, MissingMandatoryValue):  # a '???' in the config: OmegaConf names the key
            key = str(cause.key)
            raise ConfigError(f"{group}.{key}", problem=f"has no value: set it, e.g. {group}.{key}=...") from None
        first_line = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        raise ConfigError(group, problem=f"{type(cause).__name__}: {first_line}") from None


HYDRA_KEYS = ("_target_", "_partial_", "_recursive_")


def params(node: DictConfig) -> dict:
    """A component's resolved options, without Hydra's own keys (``_target_``, …)."""
    from omegaconf import OmegaConf

    return {k: v for k, v in OmegaConf.to_container(node, resolve=True).items() if k not in HYDRA_KEYS}


PAPER_SCHEDULER = "cutmix_repro.engine.schedule.step_decay"


def recipe_switches(cfg: DictConfig) -> dict[str, str]:
    """The switches of ``cfg`` that are not the paper's recipe, by name (``{"scheduler": "cosine_warmup(...)"}``;
    empty for the paper's). Recorded in results.json, shown in TensorBoard, and part of the key that matches a
    run to a table row, so a run with a switch never fills a paper row and is marked wherever it appears."""
    switches = {}
    if cfg.get("loss", "ce") != "ce":
        switches["loss"] = str(cfg.loss)
    trainer = cfg.get("trainer") or {}
    if trainer.get("accumulate", 1) != 1:
        switches["accumulate"] = str(trainer.accumulate)
    if trainer.get("ema_decay") is not None:
        switches["ema_decay"] = str(trainer.ema_decay)
    if trainer.get("clip_grad_norm") is not None:
        switches["clip_grad_norm"] = str(trainer.clip_grad_norm)
    augment = cfg.get("augment")
    if augment is not None:
        from .data.augment import Augment

        extra = Augment(**params(augment))
        if extra.active:
            switches["augment"] = extra.describe()
    scheduler = cfg.get("scheduler")
    if scheduler is not None and scheduler.get("_target_") != PAPER_SCHEDULER:
        options = ", ".join(f"{k}={v}" for k, v in params(scheduler).items())
        switches["scheduler"] = f"{scheduler._target_.rsplit('.', 1)[-1]}({options})"
    return switches

