"""What every section uses: timing (``torch.utils.benchmark`` with every thread torch may use), the report's
tables, a model's forward FLOPs."""

from __future__ import annotations

import torch
import torch.utils.benchmark as benchmark


def timer(fn) -> benchmark.Timer:
    """A ``torch.utils.benchmark.Timer`` of ``fn()`` with every thread torch may use (Timer's default is one)."""
    return benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())


def median_time(fn, min_run_time: float) -> float:
    """Median seconds per call of ``fn`` (warm-up, blocks of calls until ``min_run_time`` seconds have
    passed, CUDA synchronised)."""
    return timer(fn).blocked_autorange(min_run_time=min_run_time).median


def forward_flops(model, shape) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, *shape, device=next(model.parameters()).device))
    model.train(was_training)
    return float(counter.get_total_flops())


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> list[str]:
    lines = ["| " + " | ".join(c[1] for c in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(format(row[c[0]], c[2]) for c in columns) + " |")
    return lines
