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

import sys

import hydra
from omegaconf import DictConfig

from ..config import config_dir
from ..jobs import fail
from ..train import checked_here, hydra_command_line, launch, run_job

GROUPS = ("task",)


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="transfer")
def _run(cfg: DictConfig) -> float | None:
    from .run import fit

    metrics = run_job(fit, cfg, "transfer.log").get("metrics") or {}
    return metrics.get("map", metrics.get("cider"))


def main() -> None:
    args = hydra_command_line(sys.argv[1:])
    runs = checked_here(args, "transfer") and not (args.help or args.hydra_help or args.cfg or args.info)
    if runs and not any(o.lstrip("+").startswith("task=") for o in args.overrides):
        from ..config import options

        fail(f"error: choose a task: +task=<one of {', '.join(options('task'))}>")
    launch(_run, GROUPS, "transfer")


if __name__ == "__main__":
    main()
