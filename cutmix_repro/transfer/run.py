"""One transfer run (Table 10), counted in iterations: the backbone loaded, the task's data checked, then
training with the task's recipe, evaluation on its test set, and the run directory contract of ``train``:
resolved config (``.hydra/``), ``transfer.log``, ``tb/`` (TensorBoard), ``results.json``, ``last.pt`` written
atomically every ``checkpoint_every`` iterations, on SIGTERM/SIGUSR1 and at the end, ``resume=true``.

Data order and augmentation are functions of (seed, epoch, image): the sampler draws each epoch's
permutation from the seed, and every image is augmented under its own seed (``Seeded``), so a resumed run
sees the same batches, augmented the same way, as one that was never stopped (tested on the CPU).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, Dataset, Sampler

from ..engine import distributed
from ..engine.checkpoint import (
    load_checkpoint,
    remove_stale_temporaries,
    rng_state,
    save_checkpoint,
    set_rng_state,
    write_json,
)
from ..engine.records import DIVERGED, FINISHED, INTERRUPTED, STATUS, git_revision, machine, package_versions
from ..engine.signals import StopRequest
from ..errors import ConfigError
from .backbone import load_backbone
from .tasks import TASKS

log = logging.getLogger("cutmix_repro")


class IterationBatches(Sampler):
    """Batches of (epoch, index) for iterations ``start`` … ``stop - 1``: epoch e is a permutation drawn from
    (seed, e), cut into full batches of ``batch_size`` (the global batch; each rank takes every world-th)."""

    def __init__(self, size: int, batch_size: int, seed: int, start: int, stop: int, rank: int = 0, world: int = 1):
        if size < batch_size:
            raise ConfigError("batch_size", batch_size, f"more than the {size} training images")
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.start, self.stop, self.rank, self.world = start, stop, rank, world
        self.per_epoch = size // batch_size

    def _permutation(self, epoch: int) -> torch.Tensor:
        return torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))

    def __iter__(self):
        epoch, permutation = -1, None
        for k in range(self.start, self.stop):
            e, position = divmod(k, self.per_epoch)
            if e != epoch:
                epoch, permutation = e, self._permutation(e)
            chosen = permutation[position * self.batch_size:(position + 1) * self.batch_size][self.rank::self.world]
            yield [(epoch, int(i)) for i in chosen]

    def __len__(self) -> int:
        return self.stop - self.start


class Seeded(Dataset):
    """``dataset[index]`` under torch's RNG seeded from (seed, epoch, index), the caller's RNG untouched."""

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        epoch, index = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(((self.seed * 1_000_003 + epoch) * 10_000_019 + index) % (2**63))
            return self.dataset[index]


def recipe_of(cfg: DictConfig) -> DictConfig:
    recipes = cfg.task.recipes
    if cfg.recipe not in recipes:
        raise ConfigError("recipe", cfg.recipe, f"one of {', '.join(recipes)} (task {cfg.task.name})")
    return recipes[cfg.recipe]


def check_run_dir(run_dir: Path, cfg: DictConfig) -> dict | None:
    """Refuse to overwrite a run unless told; the recorded results when resuming a finished run."""
    results, last = run_dir / "results.json", run_dir / "last.pt"
    try:
        recorded = json.loads(results.read_text()) if results.exists() else {}
    except (OSError, json.JSONDecodeError):
        recorded = {}
    if cfg.resume:
        return recorded if recorded.get(STATUS) == FINISHED else None
    if recorded or last.exists():
        if not cfg.overwrite:
            what = "a finished run" if recorded.get(STATUS) == FINISHED else "an unfinished run"
            raise ConfigError("hydra.run.dir", str(run_dir), f"it already holds {what}: pass resume=true to "
                              "continue it or overwrite=true to replace it")
        results.unlink(missing_ok=True)
        last.unlink(missing_ok=True)
        shutil.rmtree(run_dir / "tb", ignore_errors=True)
    return None


def _autocast(cfg: DictConfig, device: torch.device):
    setting = str(cfg.amp)
    if setting not in ("auto", "off", "bf16"):
        raise ConfigError("amp", setting, "auto, off or bf16")
    on = setting == "bf16" or (setting == "auto" and device.type == "cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=on)


def build_task(cfg: DictConfig):
    if "task" not in cfg:
        raise ConfigError("task", problem="choose a task: +task=voc_faster_rcnn, voc_faster_rcnn_fpn, voc_ssd or "
                          "coco_nic")
    kind = cfg.task.get("kind")
    if kind not in TASKS:
        raise ConfigError("task.kind", kind, f"one of {', '.join(TASKS)}")
    return TASKS[kind](cfg)


def fit(cfg: DictConfig, run_dir: str | Path, choices: dict[str, str] | None = None) -> dict[str, Any]:
    run_dir = Path(run_dir)
    info, device = distributed.setup(str(cfg.device))
    task = build_task(cfg)
    recipe = recipe_of(cfg)
    if OmegaConf.is_missing(cfg, "init_from"):
        raise ConfigError("init_from", problem="has no value: give the ImageNet ResNet-50 to start from, "
                          "init_from=RUN_DIR, a checkpoint file, or torchvision")
    backbone = load_backbone(str(cfg.init_from))  # bad input stops here, before anything is written
    task.load_data()
    finished = check_run_dir(run_dir, cfg)
    if finished is not None:
        log.info("already finished: %s", run_dir / "results.json")
        return finished
    remove_stale_temporaries(run_dir)
    torch.manual_seed(int(cfg.seed))
    model = task.build_model(backbone).to(device)
    iterations = task.iterations(recipe)
    params = [p for p in model.parameters() if p.requires_grad]
    if task.cfg.optimizer == "adam":
        optimizer = torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    else:
        optimizer = torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    scheduler = lr_schedule(optimizer, list(task.milestones(recipe)), float(recipe.gamma), cfg)
    start, history, images_seen, train_seconds = 0, [], 0, 0.0
    last = run_dir / "last.pt"
    if cfg.resume and last.exists():
        state = load_checkpoint(last, {"task": cfg.task.name})
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"], device)
        start, history = state["iteration"], state["history"]
        images_seen, train_seconds = state["images_seen"], state["train_seconds"]
        log.info("resumed at iteration %d of %d from %s", start, iterations, last)
    net = model
    if info.enabled:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                        else None, find_unused_parameters=task.unused_parameters)
    writer = None
    if info.is_main:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir / "tb"))
    record = describe(cfg, task, backbone, recipe, iterations, info, device, choices or {})
    log.info("%s | %s | from %s | %d iterations, batch %d, on %s x%d", cfg.task.name, task.model_name,
             backbone.source, iterations, recipe.batch_size, device, info.world_size)
    stop = StopRequest().install()
    batches = IterationBatches(len(task.train), int(recipe.batch_size), int(cfg.seed), start, iterations,
                               info.rank, info.world_size)
    # the loader's own generator: its workers' base seed is not drawn from torch's global RNG, which a resumed
    # run restores to the checkpoint's state (the detectors' proposal sampling draws from it)
    loader = DataLoader(Seeded(task.train, int(cfg.seed)), batch_sampler=batches, num_workers=int(cfg.workers),
                        collate_fn=task.collate, pin_memory=device.type == "cuda",
                        generator=torch.Generator().manual_seed(int(cfg.seed)))

    def save(iteration: int) -> None:
        if info.is_main:
            save_checkpoint(last, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                   "scheduler": scheduler.state_dict(), "iteration": iteration, "history": history,
                                   "rng": rng_state(device), "images_seen": images_seen,
                                   "train_seconds": train_seconds, "config": OmegaConf.to_container(cfg, resolve=True),
                                   "meta": {"task": cfg.task.name, "iterations": iterations}})

    def evaluate(iteration: int) -> None:
        """Every rank predicts its share of the test set; rank 0 gathers them, scores, records and logs."""
        started = time.perf_counter()
        found, samples = task.predict(model, device, (info.rank, info.world_size), int(cfg.tb_samples))
        found = [item for share in distributed.gather_objects(found) for item in share]
        if info.is_main:
            metrics, files = task.score(found)
            for name, content in files.items():  # what the evaluation produced (the captions), beside its scores
                write_json(run_dir / name, {"iteration": iteration, **content})
            entry = {"iteration": iteration, **metrics, "eval_seconds": time.perf_counter() - started}
            history.append(entry)
            task.log_metrics(writer, metrics, samples, iteration)
            log.info("iteration %d | %s", iteration, task.describe_metrics(metrics))

    iteration, status, error = start, FINISHED, None
    saved_at = start if start else None  # the iteration of the last good checkpoint, if any
    started = time.perf_counter()
    try:
        for iteration, batch in enumerate(loader, start=start + 1):
            net.train()
            with _autocast(cfg, device):
                losses = task.losses(net, batch, device)
            loss = sum(losses.values())
            if not torch.isfinite(loss):
                good = f"{last} (iteration {saved_at})" if saved_at else "none (no checkpoint written yet)"
                status, error = DIVERGED, (f"training diverged at iteration {iteration}: loss {loss.item()}; training "
                                           f"stopped, the last good checkpoint is {good}; a smaller lr or warmup=N "
                                           "(not the paper's) may help")
                break
            lr = optimizer.param_groups[0]["lr"]  # this iteration's
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            images_seen += int(recipe.batch_size)
            if writer is not None and (iteration % int(cfg.log_every) == 0 or iteration == iterations):
                for name, value in losses.items():
                    writer.add_scalar(f"train/{name}", value.item(), iteration)
                writer.add_scalar("train/loss", loss.item(), iteration)
                writer.add_scalar("train/lr", lr, iteration)
            stopping = _stop_agreed(stop, info.enabled)
            if stopping or iteration % int(cfg.checkpoint_every) == 0 or iteration == iterations:
                train_seconds += time.perf_counter() - started
                save(iteration)
                saved_at = iteration
                started = time.perf_counter()
            if stopping:
                status = INTERRUPTED
                log.info("stopped by %s at iteration %d; checkpoint written to %s: run again with resume=true to "
                         "continue", stop.name, iteration, last)
                break
            if int(cfg.eval_every) and iteration % int(cfg.eval_every) == 0 and iteration < iterations:
                train_seconds += time.perf_counter() - started
                evaluate(iteration)
                started = time.perf_counter()
        else:
            train_seconds += time.perf_counter() - started
            if not history or history[-1]["iteration"] != iterations:
                evaluate(iterations)
            save(iterations)
    finally:
        stop.restore()
    results = {**record, STATUS: status, "iterations_done": iteration if status != DIVERGED else iteration - 1,
               "history": history, "images_per_s": images_seen / train_seconds if train_seconds else None,
               "train_seconds": train_seconds}
    if error is not None:
        results["error"] = error
    if status == FINISHED and history:
        results["metrics"] = {k: v for k, v in history[-1].items() if k not in ("iteration", "eval_seconds")}
    if info.is_main:
        write_json(run_dir / "results.json", results)  # a diverged run keeps its folder, log and TensorBoard too
        if writer is not None:
            writer.close()
    if status == DIVERGED:
        raise RuntimeError(error)
    return results


def lr_schedule(optimizer, milestones: list[int], gamma: float, cfg: DictConfig):
    """The recipe's steps (×gamma at each milestone, per iteration); with ``warmup=N`` (not the paper's: its
    detectors' code has none) a linear warm-up first, from ``warmup_factor``×lr to lr over N iterations, as
    torchvision's detection references, Detectron2 and MMDetection do (the two multiply)."""
    steps = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma)
    warmup = int(cfg.get("warmup", 0))
    if warmup < 0:
        raise ConfigError("warmup", warmup, "a number of iterations >= 0 (0: none, the paper's recipe)")
    if warmup == 0:
        return steps
    factor = float(cfg.get("warmup_factor", 0.001))
    if not 0 < factor <= 1:
        raise ConfigError("warmup_factor", factor, "the warm-up's first lr as a fraction of the lr, in (0, 1]")
    ramp = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=factor, total_iters=warmup)
    return torch.optim.lr_scheduler.ChainedScheduler([steps, ramp])


def _stop_agreed(stop: StopRequest, distributed_run: bool) -> bool:
    if not distributed_run:
        return stop.requested
    flag = torch.tensor([float(stop.requested)], device=distributed.collective_device())
    return bool(distributed.all_reduce_sum(flag).item() > 0)


def describe(cfg, task, backbone, recipe, iterations, info, device, choices) -> dict[str, Any]:
    """What results.json records about the run before any number: the task, model, backbone and recipe."""
    return {"task": cfg.task.name, "kind": cfg.task.kind, "model": task.model_name, "init_from": str(cfg.init_from),
            "backbone": {"source": backbone.source, "regularizer": backbone.regularizer,
                         "imagenet_top1_err": backbone.imagenet_top1_err, **backbone.details},
            "recipe": cfg.recipe, "paper_recipe": cfg.recipe == "paper" and not int(cfg.get("warmup", 0)),
            "switches": ({"warmup": f"{int(cfg.warmup)} iterations from {float(cfg.warmup_factor)}×lr (not the "
                                    "paper's)"} if int(cfg.get("warmup", 0)) else {}),
            "recipe_values": OmegaConf.to_container(recipe, resolve=True), "iterations": iterations,
            "seed": int(cfg.seed), "world_size": info.world_size, "device": str(device), "choices": choices,
            "versions": package_versions(), "git_revision": git_revision(), "machine": machine()}
