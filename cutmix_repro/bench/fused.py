"""Bench section "fused" (``python -m cutmix_repro.bench --only fused``): what training k runs as one fused model
(``fusion/model.py``, ``hydra/launcher=fused``) buys against the same k runs trained one after another.

For each model and k = 1, 2, 4, 8: the steady-state aggregate training images/s of the fused step (each member
mixing its own batch with CutMix under its own random state, one forward and backward pass, one SGD step over the
fused weights) beside the solo step's images/s (the trainer's ``train_one_epoch`` on the same batches), their
ratio, and each member's memory: weights, gradients and momentum, plus the activations the backward pass keeps
(counted through autograd's saved-tensor hooks on the CPU, ``torch.cuda.max_memory_allocated`` on CUDA).
"""

from __future__ import annotations

import torch

CPU_CASES = [("resnet20", "cifar_resnet", {"depth": 20, "bottleneck": False}),
             ("pyramidnet110", "pyramidnet110", {})]
CUDA_CASES = [("pyramidnet200", "pyramidnet200", {})]


class _SavedBytes:
    """The bytes of the tensors autograd keeps for the backward pass (each storage once)."""

    def __init__(self):
        self.storages: dict[int, int] = {}

    def pack(self, tensor):
        storage = tensor.untyped_storage()
        self.storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    @property
    def total(self) -> int:
        return sum(self.storages.values())


def _batches(k: int, batch_size: int, steps: int, device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [[(torch.randn(batch_size, 3, 32, 32, generator=g).to(device), torch.randint(100, (batch_size,),
                                                                                        generator=g).to(device))
             for _ in range(k)] for _ in range(steps)]


def bench_fused(cases, ks=(1, 2, 4, 8), batch_size: int = 64, steps: int = 4, device: str = "cpu",
                min_run_time: float = 2.0) -> list[dict]:
    from ..engine.optim import sgd
    from ..engine.step import StepOptions, train_one_epoch
    from ..fusion.model import MemberRNG, fuse_models, share_with_members
    from ..fusion.step import fused_step
    from ..models import count_parameters, create_model
    from ..regularizers import CutMix
    from .common import median_time

    device = torch.device(device)
    cuda = device.type == "cuda"
    options = StepOptions(device=device, amp_dtype=torch.bfloat16 if cuda else None, channels_last=cuda,
                          log_interval=10 * steps)
    rows = []
    for label, name, kwargs in cases:
        torch.manual_seed(0)
        solo = create_model(name, num_classes=100, **kwargs).to(device)
        params = count_parameters(solo)
        if cuda:
            solo.to(memory_format=torch.channels_last)
        optimizer = sgd(solo, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4, classifier_lr=None)
        batches = [b[0] for b in _batches(1, batch_size, steps, device)]
        scaler = torch.amp.GradScaler(device.type, enabled=False)
        mixer = CutMix(alpha=1.0)

        def solo_step(m=solo, o=optimizer, b=batches, r=mixer, s=scaler):
            train_one_epoch(m, [(x.clone(), y) for x, y in b], r, o, s, options, 0)

        solo_step()
        solo_ips = batch_size * steps / median_time(solo_step, min_run_time)
        if cuda:  # trainer.capture: the same solo step as one CUDA graph (capturable CutMix: draws on the device)
            rows.append(_captured_row(label, params, solo, optimizer, batches, options, batch_size, steps, solo_ips,
                                      min_run_time))
        del solo, optimizer
        for k in ks:
            if cuda:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
                base = torch.cuda.memory_allocated(device)
            models = []
            for member in range(k):
                torch.manual_seed(member)
                models.append(create_model(name, num_classes=100, **kwargs).to(device))
            rngs = [MemberRNG(device) for _ in range(k)]
            for member, rng in enumerate(rngs):
                torch.manual_seed(100 + member)
                rng.capture()
            try:
                fused = fuse_models(models, rngs).to(device)
                if cuda:
                    fused.to(memory_format=torch.channels_last)
                fused_params = share_with_members(fused, models)
                fused_opt = torch.optim.SGD(list(fused_params.values()), lr=0.1, momentum=0.9, nesterov=True,
                                            weight_decay=1e-4)
                data = _batches(k, batch_size, steps, device)
                mixers = [CutMix(alpha=1.0) for _ in range(k)]
                losses = [("ce", 0.0)] * k

                def step(f=fused, o=fused_opt, d=data, r=rngs, mix=mixers, losses=losses):
                    f.train()
                    for per_member in d:
                        fused_step(f, o, _mixed(per_member, r, mix), options, losses)

                saved = _SavedBytes()
                with torch.autograd.graph.saved_tensors_hooks(saved.pack, lambda t: t):
                    step()
                if cuda:  # everything the group holds at its peak: weights, gradients, momentum, activations
                    torch.cuda.synchronize(device)
                    per_member = (torch.cuda.max_memory_allocated(device) - base) / k
                else:
                    per_member = 3 * 4 * params + saved.total / steps / k
                seconds = median_time(step, min_run_time)
            except torch.cuda.OutOfMemoryError:
                rows.append({"model": label, "members": k, "device": str(device), "out_of_memory": True})
                break
            ips = k * batch_size * steps / seconds
            rows.append({"model": label, "params": params, "members": k, "device": str(device),
                         "mode": "fused", "batch_size": batch_size, "aggregate_images_per_s": ips,
                         "solo_images_per_s": solo_ips, "over_solo": ips / solo_ips,
                         "mb_per_member": per_member / 2**20})
            if cuda and k > 1:  # the same group with its step captured as one CUDA graph (trainer.capture)
                rows.append(_fused_captured_row(label, params, fused, fused_opt, data, rngs, mixers, options,
                                                batch_size, steps, solo_ips, min_run_time))
            del models, fused, fused_params, fused_opt
            if cuda:
                torch.cuda.empty_cache()
    return rows


def report_lines(rows: list[dict]) -> list[str]:
    from .common import table

    done = [r for r in rows if not r.get("out_of_memory") and not r.get("capture_error")]
    lines = ["## 12. Fused members: k runs as one model vs k runs one after another", "",
             *table(done, [("model", "model", ""), ("device", "device", ""), ("members", "k", "d"),
                           ("mode", "mode", ""),
                            ("aggregate_images_per_s", "fused images/s (all k)", ",.0f"),
                            ("solo_images_per_s", "solo images/s", ",.0f"), ("over_solo", "× k solo runs", ".2f"),
                            ("mb_per_member", "MB per member", ",.1f")]), "",
             "Batches of 64 CIFAR-sized images per member; each member mixes its own batch with CutMix; SGD with "
             "Nesterov momentum; `captured` (CUDA only): the solo step as one CUDA graph (`trainer.capture`). "
             "\"× k solo runs\": the fused aggregate rate over the solo rate, i.e. how much "
             "sooner k runs finish fused than one after another. Memory per member: weights, gradients and "
             "momentum, plus the activations kept for the backward pass (autograd's saved tensors on the CPU, the "
             "peak allocation on CUDA) divided by k.", ""]
    for r in rows:
        if r.get("out_of_memory"):
            lines += [f"{r['model']}: {r['members']} members did not fit in {r['device']}'s memory.", ""]
        if r.get("capture_error"):
            lines += [f"{r['model']}: the captured step failed on {r['device']}: {r['capture_error']}", ""]
    return lines


def _captured_row(label, params, model, optimizer, batches, options, batch_size, steps, solo_ips, min_run_time):
    """The solo step under ``trainer.capture`` (``engine/captured.py``): warm-up, capture, then replays."""
    from ..engine.captured import CapturedStep, capture_body
    from ..engine.step import train_one_epoch
    from ..regularizers import CutMix

    mixer = CutMix(alpha=1.0, capturable=True)
    captured = CapturedStep(capture_body(model, mixer, options), optimizer, options.device)
    scaler = torch.amp.GradScaler(options.device.type, enabled=False)

    def step(b=batches):
        train_one_epoch(model, [(x.clone(), y) for x, y in b], mixer, optimizer, scaler, options, 0, captured=captured)

    row = {"model": label, "params": params, "members": 1, "device": str(options.device), "mode": "captured",
           "batch_size": batch_size, "solo_images_per_s": solo_ips}
    return _timed_capture(step, row, batch_size * steps, min_run_time)


def _fused_captured_row(label, params, fused, optimizer, data, rngs, mixers, options, batch_size, steps, solo_ips,
                        min_run_time):
    """A fused group under ``trainer.capture``: the members mix outside the graph, the rest is one CUDA graph."""
    from ..engine.captured import CapturedStep
    from ..fusion.step import captured_inputs, fused_capture_body

    k = len(rngs)
    captured = CapturedStep(fused_capture_body(fused, options, [("ce", 0.0)] * k), optimizer, options.device,
                            generators=[r.device_generator for r in rngs])

    def step(d=data):
        fused.train()
        for per_member in d:
            captured(*captured_inputs(_mixed(per_member, rngs, mixers), options.device))

    row = {"model": label, "params": params, "members": k, "device": str(options.device), "mode": "fused+captured",
           "batch_size": batch_size, "solo_images_per_s": solo_ips}
    return _timed_capture(step, row, k * batch_size * steps, min_run_time)


def _mixed(per_member, rngs, mixers) -> list:
    """Each member's batch mixed by its own mixer under its own random state."""
    mixed = []
    for (x, y), rng, mixer in zip(per_member, rngs, mixers):
        with rng.active(python=False):
            mixed.append(mixer(x.clone(), y))
    return mixed


def _timed_capture(step, row: dict, images: int, min_run_time: float) -> dict:
    """``row`` with the captured ``step``'s images/s (after its warm-up steps and capture), or the error it met: a
    capture that fails is a finding of the bench, not a crash of it."""
    from .common import median_time

    try:
        for _ in range(2):
            step()
        ips = images / median_time(step, min_run_time)
    except Exception as err:
        return {**row, "capture_error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"}
    return {**row, "aggregate_images_per_s": ips, "over_solo": ips / row["solo_images_per_s"],
            "mb_per_member": float("nan")}
