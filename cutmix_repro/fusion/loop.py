"""The group's loop: k runs of one CIFAR architecture (the rows × seeds of a table, an α sweep) trained in one
process as one fused model (``fusion/model.py``), each writing the run directory its solo run writes.

Each member is started exactly as its solo run (``trainer.start_run``: its seed, data, regularizer, model,
optimizer, checkpoint), then the members' models are fused and each member's model keeps views of the fused
weights. A step: each member, with its own random state swapped in, takes its next batch and mixes it (its
regularizer, its λ); the fused model runs the k batches at once (ShakeDrop and the other random layers drawing
each member's numbers from its own generator); each member's loss (its label smoothing) is computed on its own
logits, and one backward pass and one optimizer step over the fused weights update every member as its solo
step would. After each epoch every member is evaluated, recorded and checkpointed as a solo run (``last.pt``,
``best.pt``, ``results.json``, TensorBoard, its log), the group's files replaced together
(``engine.checkpoint.GroupCommit``); ``results.json`` adds ``fused_with`` and ``fused_group_size``.

A member may differ from the others only in what ``groups.MEMBER_KEYS`` names; ``groups`` groups the
runs and says why a run cannot be fused at all (the launcher, ``hydra_plugins/cutmix_repro_fused``, runs those
alone and says so).
"""

from __future__ import annotations

import logging
import shutil
import time
import warnings
from pathlib import Path

import torch
from omegaconf import DictConfig

from ..engine import distributed
from ..engine import records as R
from ..engine.captured import CapturedStep
from ..engine.checkpoint import GroupCommit
from ..engine.compiled import compiled_graphs
from ..engine.metrics import Meter
from ..engine.signals import StopRequest
from ..engine.step import evaluate
from ..engine.trainer import Started, start_run
from ..errors import ConfigError
from .groups import fusion_groups
from .members import Member, MemberFilter, check_members, group_optimizer, member_state, speaking_for
from .model import MemberRNG, fuse_models, share_with_members
from .step import captured_inputs, fused_capture_body, fused_step

log = logging.getLogger("cutmix_repro")


def fit_fused(cfgs: list[DictConfig], run_dirs: list[Path], choices: list[dict] | None = None) -> list[dict | str]:
    """Train the runs ``cfgs`` (one group: ``fusion_groups``) as one fused model; each writes ``run_dirs[i]`` as
    its solo run would. Returns each member's results, or its error line if it stopped (diverged)."""
    run_dirs = [Path(d) for d in run_dirs]
    choices = choices or [{} for _ in cfgs]
    groups, alone = fusion_groups(cfgs, len(cfgs))
    if len(groups) != 1:
        why = "; ".join(f"run {i}: {r}" for i, r in alone.items()) or "their settings differ beyond MEMBER_KEYS"
        raise ConfigError("fuse", [str(d) for d in run_dirs], f"these runs cannot train as one model ({why})")
    info, device = distributed.setup(cfgs[0].trainer.device)
    if info.enabled:
        raise ConfigError("hydra/launcher", "fused", "fused members train in one process: run it without torchrun")
    handlers, level = [], log.level
    if not log.isEnabledFor(logging.INFO):  # each member's train.log gets what a solo run's gets
        log.setLevel(logging.INFO)
    for i, run_dir in enumerate(run_dirs):  # (each member's start_run finishes or undoes a group commit a kill left)
        run_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(run_dir / "train.log")
        handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
        handler.addFilter(MemberFilter(i))
        log.addHandler(handler)
        handlers.append(handler)
    stop = StopRequest().install()  # one for the job, as a solo run's (trainer.fit)
    try:
        results = _fit_group(cfgs, run_dirs, choices, info, device, list(range(len(cfgs))), stop)
        if any(_interrupted(r) for r in results.values()):
            stop.hand_over()  # every member's checkpoint is written: e.g. submitit's requeue on SIGUSR2
        return [results[i] for i in range(len(cfgs))]
    finally:
        stop.restore()
        log.setLevel(level)
        for handler in handlers:
            log.removeHandler(handler)
            handler.close()


class GroupTooLarge(Exception):
    """The group's first step did not fit in the device's memory."""


def _out_of_memory(err: BaseException) -> bool:
    return isinstance(err, torch.cuda.OutOfMemoryError) or (
        isinstance(err, RuntimeError) and ("out of memory" in str(err) or "can't allocate memory" in str(err)))


def _interrupted(result: dict | str) -> bool:
    return isinstance(result, dict) and result.get(R.STATUS) == R.INTERRUPTED


def _fit_group(cfgs, run_dirs, choices, info, device, indices: list[int], stop: StopRequest) -> dict[int, dict | str]:
    """{job: its results or error line} for the jobs ``indices`` (started, then trained by position). After a
    stop (a signal) no further group trains: those members keep their checkpoints, as the sweep's later jobs."""
    results: dict[int, dict | str] = {}
    members: list[Member] = []
    for i in indices:
        rng = MemberRNG(device)
        with rng.active(), speaking_for(i):  # the defaults it seeds and restores become the member's own
            started = start_run(cfgs[i], run_dirs[i], choices[i], info, device)
        if isinstance(started, Started):
            members.append(Member(i, started, rng, names={id(p): n for n, p in started.parts.model.named_parameters()}))
        else:
            results[i] = started  # already finished
    by_position: dict[tuple[int, int], list[Member]] = {}
    for m in members:  # a group killed mid-commit is whole again; members resumed apart may stand elsewhere
        by_position.setdefault((m.run.position.epoch, m.run.position.step), []).append(m)
    for group in by_position.values():
        if any(_interrupted(r) for r in results.values()):  # stopped: the rest keep their checkpoints
            for m in group:
                m.run.recorder.close()
                results[m.index] = m.run.recorder.record
            continue
        try:
            results.update(_train_members(group, device, stop))
        except GroupTooLarge:  # nothing was recorded yet: start each half again, from its start
            fresh = (group[0].run.position.epoch, group[0].run.position.step) == (0, 0)
            for m in group:
                if fresh:
                    shutil.rmtree(m.run.run_dir / "tb", ignore_errors=True)
            if device.type == "cuda":
                torch.cuda.empty_cache()
            half = (len(group) + 1) // 2
            log.info("%d members do not fit in %s's memory together: split into %d and %d", len(group), device,
                     half, len(group) - half)
            for part in (group[:half], group[half:]):
                if any(_interrupted(r) for r in results.values()):
                    results.update({m.index: m.run.recorder.record for m in part})
                    continue
                results.update(_fit_group(cfgs, run_dirs, choices, info, device, [m.index for m in part], stop))
    return results


def _train_members(members: list[Member], device: torch.device, stop: StopRequest) -> dict[int, dict | str]:
    k = len(members)
    names = [str(m.run.run_dir) for m in members]
    for slot, m in enumerate(members):
        m.slot = slot
    for m in members:
        m.run.record.update({"fused_with": [n for n in names if n != str(m.run.run_dir)], "fused_group_size": k})
    fused = fuse_models([m.run.parts.model for m in members], [m.rng for m in members])
    fused_params = share_with_members(fused, [m.run.parts.model for m in members])
    optimizer = group_optimizer(members, fused_params)
    captured = None
    if members[0].run.parts.captured is not None:  # trainer.capture on CUDA: the group's step as one graph
        losses = [(m.run.parts.options.loss, m.run.parts.options.label_smoothing) for m in members]
        captured = CapturedStep(fused_capture_body(fused, members[0].run.parts.options, losses), optimizer, device,
                                generators=[m.rng.device_generator for m in members])
    commit = GroupCommit([m.run.run_dir for m in members])
    for m in members:
        m.run.recorder.files = commit
    first = members[0].run
    epochs = first.cfg.trainer.epochs
    log.info("%s | %s (%s parameters each) | %d members trained as one model: %s | %d epochs on %s",
             first.parts.data.name, first.parts.model.arch_name, f"{first.record['num_params']:,}", k,
             ", ".join(str(m.run.parts.regularizer).split("(")[0] + f" seed {m.run.cfg.seed}" for m in members),
             epochs, device)
    try:
        _train_epochs(members, fused, fused_params, optimizer, commit, stop, epochs, captured)
    except BaseException as err:
        if k > 1 and not members[0].stepped and _out_of_memory(err):
            for m in members:
                m.run.recorder.loggers = []  # they start again with the split groups
            raise GroupTooLarge() from err
        raise
    finally:
        for m in members:
            m.run.recorder.close()
    out = {}
    for m in members:
        if m.run.recorder.record[R.STATUS] == R.INTERRUPTED:
            with speaking_for(m.index):
                log.info("stopped by %s at epoch %d, step %d; checkpoint written to %s: run again with "
                         "trainer.resume=true to continue", stop.name, m.run.position.epoch + 1, m.run.position.step,
                         m.run.run_dir / "last.pt")
        out[m.index] = m.failed or m.run.recorder.record
    return out


def _train_epochs(members, fused, fused_params, optimizer, commit, stop, epochs, captured=None) -> None:
    k = len(members)
    position0 = members[0].run.position
    wall_before = position0.history[-1][R.WALL_TIME] if position0.history else 0.0
    started, cold = time.perf_counter(), True
    while position0.epoch < epochs:
        epoch, start_step = position0.epoch, position0.step
        lrs, snapshots = [], []
        for m in members:
            parts = m.run.parts
            parts.data.train.set_epoch(epoch, start_step)
            if hasattr(parts.regularizer, "set_progress"):
                parts.regularizer.set_progress(epoch / max(epochs - 1, 1))
            lrs.append(float(parts.optimizer.param_groups[0]["lr"]))
            snapshots.append(m.run.recorder.snapshot())
        member_lrs = [float(g["lr"]) for g in members[0].run.parts.optimizer.param_groups]
        if captured is not None:  # the members' schedulers (the same) set the group's lr
            captured.sync_lr(member_lrs)
        else:
            for fused_group, lr in zip(optimizer.param_groups, member_lrs):
                fused_group["lr"] = lr
        train = _train_one_epoch(members, fused, optimizer, epoch, start_step, stop, snapshots, captured)
        if all(m.failed for m in members):  # every member diverged: the group stops at once, as a solo run does
            commit.commit()  # their results.json (status diverged)
            return
        if train.get("interrupted"):
            for m in (m for m in members if not m.failed):
                m.run.position.step, m.run.position.meter = train["step"], m.meter
                with speaking_for(m.index):
                    m.run.recorder.stopped(R.INTERRUPTED, m.run.position.history,
                                           state=member_state(m, optimizer, fused_params, k))
            commit.commit()
            return
        for i, m in enumerate(members):
            if m.failed:
                continue
            parts = m.run.parts
            val = evaluate(parts.model, parts.data.val, parts.options)
            with warnings.catch_warnings():  # the member's own optimizer never steps: the fused one does
                warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)`")
                parts.scheduler.step()
            images_s = m.run.recorder.log_images(epoch, snapshots[i], parts.model, last_epoch=epoch + 1 == epochs)
            entry = {R.EPOCH: epoch + 1, R.LR: lrs[i], R.TRAIN_LOSS: train["metrics"][i]["loss"],
                     R.TRAIN_TOP1: train["metrics"][i]["top1_err"], R.VAL_LOSS: val["loss"],
                     R.VAL_TOP1: val["top1_err"], R.VAL_TOP5: val["top5_err"], R.VAL_COUNT: val["count"],
                     R.IMAGES_PER_S: train["images_per_s"], R.COLD_START: cold, R.TB_IMAGES_S: images_s,
                     R.WALL_TIME: wall_before + time.perf_counter() - started}
            entry.update({field: val[key] for key, field in R.LOCALIZATION.items() if key in val})
            if parts.compiled:
                counts = compiled_graphs()
                entry.update({R.COMPILED_GRAPHS: counts["graphs"], R.GRAPH_BREAKS: counts["graph_breaks"]})
            m.run.position.history.append(entry)
            m.run.position.epoch, m.run.position.step, m.run.position.meter = epoch + 1, 0, None
            with speaking_for(m.index):
                m.run.recorder.epoch_done(entry, m.run.position.history,
                                          member_state(m, optimizer, fused_params, k), epochs)
        for m in members:  # a failed member's position follows the group's, so the loop ends with it
            m.run.position.epoch, m.run.position.step = epoch + 1, 0
        commit.commit()
        cold = False


def _train_one_epoch(members, fused, optimizer, epoch, start_step, stop, snapshots, captured=None) -> dict:
    """``trainer.train_one_epoch`` for the group: the members' batches and mixing under their own random
    states, one fused forward and backward, one step of the fused optimizer."""
    options = members[0].run.parts.options
    fused.train()
    for m in members:
        m.meter = m.run.position.meter or Meter(options.device)
        m.first_bad = torch.full((), -1, dtype=torch.long, device=options.device)
        m.run.parts.model.train()
    counts_before = [m.meter.count for m in members]
    iterators = []
    for m in members:
        with m.rng.active():
            iterators.append(iter(m.run.parts.data.train))
    step, last_step = start_step, start_step + len(members[0].run.parts.data.train)
    step_on_device = torch.full((), start_step, dtype=torch.long, device=options.device)
    start = time.perf_counter()
    while step < last_step:
        options.step_begins()
        batches = []
        for m, it in zip(members, iterators):
            with m.rng.active():
                images, targets = next(it)
                batches.append(m.run.parts.regularizer(images, targets))
        graphed = captured_inputs(batches, options.device) if captured is not None else None
        if graphed is not None and captured.takes(*graphed):  # forward, losses, backward, step: one CUDA graph
            (outs, losses), _ = captured(*graphed)
        else:
            outs, losses = fused_step(fused, optimizer, batches, options,
                                      [(m.run.parts.options.loss, m.run.parts.options.label_smoothing)
                                       for m in members])
        for m, batch, member_out, loss, snapshot in zip(members, batches, outs, losses, snapshots):
            m.meter.update(member_out, batch.targets_a, loss)
            m.first_bad = torch.where((m.first_bad < 0) & ~torch.isfinite(loss), step_on_device, m.first_bad)
            if snapshot is not None and not snapshot.done:
                snapshot.offer(batch)
        members[0].stepped = True
        step_on_device += 1
        step += 1
        if step % options.log_interval == 0:
            check_members(members, epoch)
            if all(m.failed for m in members):
                return {"diverged": True}
        if stop.requested:
            check_members(members, epoch)
            return {"interrupted": True, "step": step}
    check_members(members, epoch)
    if all(m.failed for m in members):
        return {"diverged": True}
    if options.device.type == "cuda":
        torch.cuda.synchronize(options.device)
    seconds = time.perf_counter() - start
    metrics = [m.meter.compute(distributed=False) for m in members]
    images = members[0].meter.count - counts_before[0]
    return {"metrics": metrics, "images_per_s": images / max(seconds, 1e-9)}
