"""``hydra/launcher=fused``: a multirun's jobs that can share a training step train together as one fused
model (``cutmix_repro.fusion``), in groups of at most ``fuse.max_members``; the others run alone, each with
one line saying why. Every job gets the run directory a solo job gets (``.hydra/``, ``train.log``, ``tb/``,
``results.json``, ``last.pt``, ``best.pt``).

Installed as the Hydra plugin package ``hydra_plugins.cutmix_repro_fused`` (``pyproject.toml`` maps it here) and
registered by ``cutmix_repro.train`` as well, which an editable install's plugin scan does not reach.
"""

from __future__ import annotations

import copy
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, _save_config, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

log = logging.getLogger("cutmix_repro")


class FusedLauncher(Launcher):
    def __init__(self) -> None:
        super().__init__()
        self.config = self.task_function = self.hydra_context = None

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def _job(self, overrides: Sequence[str], idx: int) -> DictConfig:
        config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(config):
            config.hydra.job.id = idx
            config.hydra.job.num = idx
        return config

    def _prepare(self, config: DictConfig) -> tuple[DictConfig, Path, JobReturn]:
        """What ``hydra.core.utils.run_job`` does before it calls the task: the job's directory and ``.hydra/``
        files; the task's config, resolved under this job's Hydra config."""
        HydraConfig.instance().set_config(config)
        output_dir = Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir)
        with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
            config.hydra.runtime.output_dir = str(output_dir.absolute())
        HydraConfig.instance().set_config(config)
        task_cfg = copy.deepcopy(config)
        with read_write(task_cfg), open_dict(task_cfg):
            del task_cfg["hydra"]
        OmegaConf.resolve(task_cfg)
        output_dir.mkdir(parents=True, exist_ok=True)
        if config.hydra.output_subdir is not None:
            hydra_output = output_dir / str(config.hydra.output_subdir)
            _save_config(task_cfg, "config.yaml", hydra_output)
            _save_config(copy.deepcopy(HydraConfig.instance().cfg), "hydra.yaml", hydra_output)
            _save_config(config.hydra.overrides.task, "overrides.yaml", hydra_output)
        ret = JobReturn(overrides=OmegaConf.to_container(config.hydra.overrides.task), cfg=task_cfg,
                        hydra_cfg=copy.deepcopy(HydraConfig.instance().cfg), working_dir=str(Path.cwd()),
                        task_name="train")
        return task_cfg, output_dir, ret

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from cutmix_repro.engine.records import INTERRUPTED
        from cutmix_repro.fusion.groups import fusion_groups
        from cutmix_repro.jobs import fail

        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        configs = [self._job(o, initial_job_idx + i) for i, o in enumerate(job_overrides)]
        tasks = []
        for config in configs:
            task = copy.deepcopy(config)
            with read_write(task), open_dict(task):
                del task["hydra"]
            tasks.append(task)
        try:
            groups, alone = fusion_groups(tasks, tasks[0].fuse.max_members)
        except ValueError as err:
            fail(str(err))
        log.info("Launching %d jobs as %d fused groups and %d alone", len(configs),
                 sum(len(g) > 1 for g in groups), sum(len(g) == 1 for g in groups))
        runs: dict[int, JobReturn] = {}
        for group in groups:
            if len(group) == 1:
                i = group[0]
                why = alone.get(i, "no other job shares its setting")
                log.info("\t#%d alone (%s): %s", initial_job_idx + i, why,
                         " ".join(filter_overrides(job_overrides[i])))
                runs[i] = run_job(hydra_context=self.hydra_context, task_function=self.task_function,
                                  config=configs[i], job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
                configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
                continue
            for i in group:
                log.info("\t#%d fused: %s", initial_job_idx + i, " ".join(filter_overrides(job_overrides[i])))
            runs.update(self._run_group(group, configs))
            if any(r.return_value == INTERRUPTED for r in runs.values() if r.status == JobStatus.COMPLETED):
                sys.exit(0)  # stopped by a signal, its checkpoints written: no further job starts (as run_job)
        failed = [r for r in runs.values() if r.status == JobStatus.FAILED]
        if failed:
            fail(str(failed[0]._return_value).splitlines()[0])
        return [runs[i] for i in range(len(configs))]

    def _run_group(self, group: list[int], configs: list[DictConfig]) -> dict[int, JobReturn]:
        from cutmix_repro.engine.records import BEST_TOP1, INTERRUPTED, STATUS
        from cutmix_repro.fusion.loop import fit_fused

        prepared = [self._prepare(configs[i]) for i in group]
        choices = [dict(configs[i].hydra.runtime.choices) for i in group]
        try:
            outcomes = fit_fused([p[0] for p in prepared], [p[1] for p in prepared], choices)
        except (ValueError, RuntimeError, OSError) as err:
            from cutmix_repro.jobs import remove_failed_start

            outcomes = [err] * len(group)
            for _, output_dir, _ in prepared:  # a start that wrote nothing to keep leaves no folder
                remove_failed_start(output_dir)
        runs = {}
        for i, (_, _, ret), outcome in zip(group, prepared, outcomes):
            if isinstance(outcome, dict):
                ret.status = JobStatus.COMPLETED
                ret._return_value = INTERRUPTED if outcome.get(STATUS) == INTERRUPTED else outcome.get(BEST_TOP1)
            else:
                ret.status = JobStatus.FAILED
                ret._return_value = outcome if isinstance(outcome, Exception) else RuntimeError(outcome)
            runs[i] = ret
        sys.stdout.flush()
        return runs
