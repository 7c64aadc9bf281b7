"""Section 14: the CPU step's options on this machine, for the models users train on a CPU.

For a CIFAR ResNet-20 on Fashion-MNIST's 1×28×28 images (the ``fashion_mnist_cpu`` protocol) and on CIFAR's
3×32×32: the trainer's step (``train_one_epoch``, CutMix, SGD) in images/s with every thread and the default layout,
with channels_last, with one thread, and two runs side by side with one thread each (their summed rate: what
``reproduce --jobs 2`` does); each as a ratio over the default, and what ``trainer.channels_last=auto`` picks here
(``engine/layout.py``). ``torch.compile`` on the CPU is section 5's (``--only compiled``).
"""

from __future__ import annotations

import multiprocessing as mp
import time

import torch

CASES = [  # (label, image shape)
    ("resnet20, Fashion-MNIST 1x28x28", (1, 28, 28)),
    ("resnet20, CIFAR 3x32x32", (3, 32, 32)),
]


def step_rate(shape: tuple[int, ...], batch: int, seconds: float, channels_last: bool, threads: int | None = None,
              start: float | None = None) -> float:
    """Images/s of the trainer's step on random batches of ``shape``, timed for ``seconds`` after two warm-up steps
    (``start``: a wall-clock time to begin timing at, so that runs side by side overlap)."""
    from ..engine.optim import sgd
    from ..engine.step import StepOptions, train_one_epoch
    from ..models import create_model
    from ..regularizers import CutMix

    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = create_model("cifar_resnet", 10, depth=20, bottleneck=False, in_chans=shape[0])
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    options = StepOptions(device=torch.device("cpu"), channels_last=channels_last, log_interval=1000)
    optimizer = sgd(model, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4, classifier_lr=None)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    batches = [(torch.randn(batch, *shape), torch.randint(10, (batch,))) for _ in range(2)]
    regularizer = CutMix(alpha=1.0, prob=1.0)
    train_one_epoch(model, batches, regularizer, optimizer, scaler, options, 0)  # warm-up
    if start is not None:
        time.sleep(max(0.0, start - time.time()))
    images, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        train_one_epoch(model, batches, regularizer, optimizer, scaler, options, 0)
        images += 2 * batch
    return images / (time.perf_counter() - began)


def _worker(args, queue) -> None:
    queue.put(step_rate(*args))


def side_by_side_rate(shape, batch: int, seconds: float, jobs: int = 2, settle: float = 8.0) -> float:
    """The summed images/s of ``jobs`` processes, one thread each, timed over the same seconds (from ``settle``
    seconds after they start: each imports and warms up first)."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    start = time.time() + settle
    workers = [context.Process(target=_worker, args=((shape, batch, seconds, False, 1, start), queue))
               for _ in range(jobs)]
    for w in workers:
        w.start()
    rates = [queue.get() for _ in workers]
    for w in workers:
        w.join()
    return sum(rates)


def bench_cpu_options(batch: int, seconds: float, quick: bool = False) -> list[dict]:
    from ..engine.layout import faster_layout
    from ..models import create_model

    threads = torch.get_num_threads()
    rows = []
    for label, shape in CASES[:1] if quick else CASES:
        default = step_rate(shape, batch, seconds, False)
        measured = {
            f"default layout, {threads} threads": default,
            f"channels_last, {threads} threads": step_rate(shape, batch, seconds, True),
            "default layout, 1 thread": step_rate(shape, batch, seconds, False, 1),
            "2 runs side by side, 1 thread each (sum)": side_by_side_rate(shape, batch, seconds,
                                                                          settle=0.0 if quick else 8.0),
        }
        torch.set_num_threads(threads)
        model = create_model("cifar_resnet", 10, depth=20, bottleneck=False, in_chans=shape[0])
        picks_channels_last, _ = faster_layout(model, shape, min(batch, 64), 10)
        auto = "channels_last" if picks_channels_last else "default layout"
        for option, rate in measured.items():
            rows.append({"case": label, "option": option, "images_per_s": rate, "over_default": rate / default,
                         "auto": auto})
    return rows


def report_lines(rows: list[dict]) -> list[str]:
    from .common import table

    auto = "; ".join(dict.fromkeys(f"{r['case']}: {r['auto']}" for r in rows))
    return ["## 14. The CPU step's options (images/s of the trainer's step, ratio over the default)", "",
            *table(rows, [("case", "case", ""), ("option", "option", ""), ("images_per_s", "img/s", ".0f"),
                          ("over_default", "× default", ".2f")]), "",
            f"`trainer.channels_last=auto` picks here: {auto} (both layouts timed, engine/layout.py). Side by side: "
            "`reproduce --jobs 2` (each run `trainer.threads=1`). torch.compile on the CPU: section 5.", ""]
