"""Transfer an ImageNet ResNet-50 to detection or captioning (Table 10):
``python -m cutmix_repro.transfer +task=voc_faster_rcnn init_from=RUN_OR_FILE``.

Tasks (``configs/task/``): ``voc_faster_rcnn`` (Faster R-CNN, ResNet-50 C4: the paper's), ``voc_ssd`` (SSD300
on ResNet-50: the paper's), ``voc_faster_rcnn_fpn`` (torchvision's FPN design, not the paper's) and
``coco_nic`` (NIC captioning). ``init_from`` is a run directory or checkpoint of ours, ``torchvision``, or the
authors' released ImageNet checkpoint; ``recipe=paper`` (the appendix's, in iterations) or ``recipe=short``
(a quick number, not the paper's). ``-m seed=0,1,2`` runs seeds; torchrun runs DDP. Every run directory
receives the resolved config (``.hydra/``), ``transfer.log``, ``tb/``, ``results.json`` and ``last.pt``; bad
input stops before anything is written, with one line on stderr and exit status 2.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from ..config import config_dir
from ..train import (
    _join_torchrun,
    check_composes,
    check_group_overrides,
    fail,
    log_to_file,
    remove_failed_start,
    sweep_subdir,
)

GROUPS = ("task",)


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="transfer")
def _run(cfg: DictConfig) -> float | None:
    from ..engine import distributed
    from .run import INTERRUPTED, fit

    runtime = HydraConfig.get().runtime
    finished = False
    try:
        results = fit(cfg, runtime.output_dir, dict(runtime.choices))
        finished = True
    except (ValueError, RuntimeError, OSError) as err:
        if os.environ.get("CUTMIX_DEBUG"):
            raise
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        if distributed.rank() == 0:
            log_to_file(message)
            remove_failed_start(Path(runtime.output_dir), "transfer.log")
        fail(message)
    finally:
        distributed.teardown(together=finished)
    if results.get("status") == INTERRUPTED:
        sys.exit(0)
    metrics = results.get("metrics") or {}
    return metrics.get("map", metrics.get("cider"))


def main() -> None:
    argv = sys.argv[1:]
    if not any(a.lstrip("+").startswith("task=") for a in argv) and not {"--help", "-h", "--hydra-help"} & set(argv):
        from ..config import options

        fail(f"error: choose a task: +task=<one of {', '.join(options('task'))}>")
    message = check_group_overrides(argv, GROUPS) or check_composes(argv, "transfer")
    if message:
        fail(message)
    extra = sweep_subdir(argv)
    if extra:
        first = next(i for i, a in enumerate(sys.argv) if i and "=" in a and not a.startswith("-"))
        sys.argv[first:first] = extra
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        _run()
        return
    from ..train import _exit_worker

    _join_torchrun()
    try:
        _run()
    except SystemExit as stop:
        _exit_worker(stop.code if isinstance(stop.code, int) else int(stop.code is not None))
    _exit_worker(0)


if __name__ == "__main__":
    main()
