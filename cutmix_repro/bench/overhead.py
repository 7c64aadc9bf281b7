"""Section 3: the trainer's overhead: our full training step against a bare hand-written loop, on the CPU."""

from __future__ import annotations

import copy
import statistics

import torch
import torch.nn.functional as F

from .common import timer


def bench_trainer_overhead(model_name: str, model_kwargs: dict, batch_size: int, steps: int, rounds: int) -> dict:
    from ..engine.step import StepOptions, train_one_epoch
    from ..models import create_model
    from ..regularizers import CutMix

    options = StepOptions(device=torch.device("cpu"), log_interval=10 * steps)
    torch.manual_seed(0)
    batches = [(torch.randn(batch_size, 3, 32, 32), torch.randint(10, (batch_size,))) for _ in range(steps)]
    base = create_model(model_name, num_classes=10, **model_kwargs)
    ours_model, bare_model = copy.deepcopy(base), copy.deepcopy(base)

    def sgd(model):
        return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)

    ours_opt, bare_opt = sgd(ours_model), sgd(bare_model)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    regularizer = CutMix(alpha=1.0, prob=1.0)

    def ours():
        train_one_epoch(ours_model, batches, regularizer, ours_opt, scaler, options, 0)

    def bare():
        bare_model.train()
        for x, y in batches:
            loss = F.cross_entropy(bare_model(x), y)
            bare_opt.zero_grad(set_to_none=True)
            loss.backward()
            bare_opt.step()

    ours(), bare()  # warm up both
    t_ours, t_bare = [], []
    timers = [(timer(fn), out) for fn, out in ((ours, t_ours), (bare, t_bare))]
    for _ in range(rounds):  # interleaved, so drift in the machine's speed hits both alike
        for each, out in timers:
            out.append(each.timeit(number=1).mean)
    ratio = statistics.median(a / b for a, b in zip(t_ours, t_bare))
    return {"model": model_name, "batch_size": batch_size, "steps": steps, "rounds": rounds,
            "ours_step_ms": 1e3 * statistics.median(t_ours) / steps,
            "bare_step_ms": 1e3 * statistics.median(t_bare) / steps, "ratio": ratio}
