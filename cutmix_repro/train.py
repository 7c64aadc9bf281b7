"""Train one paper setting: ``python -m cutmix_repro.train +experiment=cifar100_pyramidnet``.

Hydra composes ``configs/train.yaml`` with the command line; ``-m`` sweeps (e.g.
``regularizer.alpha=0.1,0.25,0.5,1.0,2.0,4.0``), one run directory per combination, named by the
swept values (``regularizer.alpha=0.5``). Every run directory receives the resolved config
(``.hydra/``), ``train.log``, ``tb/`` (TensorBoard), ``results.json``, ``last.pt`` and ``best.pt``.
Bad input stops before training with one line on stderr and exit status 2.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import os
import re
import sys
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from .config import GROUPS, compose, config_dir, options
from .engine.records import BEST_TOP1, INTERRUPTED, STATUS
from .jobs import fail, log_to_file, remove_failed_start

log = logging.getLogger("cutmix_repro")


def register_fused_launcher() -> None:
    """``hydra/launcher=fused``: Hydra finds installed plugins by scanning ``hydra_plugins``, which misses an
    editable install's mapped package; registering it by hand finds it either way."""
    from hydra.core.plugins import Plugins
    from hydra_plugins.cutmix_repro_fused import FusedLauncher

    Plugins.instance().register(FusedLauncher)


def _group_arg(groups: tuple[str, ...]) -> re.Pattern:
    return re.compile(r"^[+~]{0,2}(" + "|".join(groups) + r")=(.*)$")


def check_group_overrides(argv: list[str], groups: tuple[str, ...] = GROUPS) -> str | None:
    """One error line for an unknown config choice (model=…, +experiment=…), else None.

    With ``hydra.searchpath`` (configs of your own beside ours) the choices are Hydra's to check."""
    if any(arg.lstrip("+").startswith("hydra.searchpath") for arg in argv):
        return None
    pattern = _group_arg(groups)
    for arg in argv:
        match = pattern.match(arg)
        if not match or "(" in match.group(2):  # leave sweep functions such as choice(...) to Hydra
            continue
        group, values = match.groups()
        valid = options(group)
        for value in filter(None, values.strip("[]").split(",")):
            if value not in valid:
                return f"error: {group}={value!r} is unknown: choose one of {', '.join(valid)}"
    return None


def _first_of_each_sweep(argv: list[str]):
    """The parsed command-line overrides (Hydra's own keys left out, but for the search path), and
    the same overrides with each sweep replaced by its first value."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    args = [a for a in argv if not a.startswith("-")
            and (not a.lstrip("+~").startswith("hydra") or a.lstrip("+").startswith("hydra.searchpath"))]
    overrides = OverridesParser.create().parse_overrides(args)
    single = [f"{o.get_key_element()}={next(iter(o.sweep_string_iterator()))}" if o.is_sweep_override()
              else o.input_line for o in overrides]
    return overrides, single


def check_composes(argv: list[str], config_name: str = "train") -> str | None:
    """One error line if the overrides do not compose (unknown key, bad syntax), else None.

    Sweeps (``a=1,2``) are checked with their first value; Hydra's own keys are left to it."""
    try:
        overrides, single = _first_of_each_sweep(argv)
        compose(single, config_name)
    except Exception as err:
        cause = err.__cause__
        unknown = getattr(cause, "full_key", None)
        if type(cause).__name__ in ("ConfigAttributeError", "ConfigKeyError") and unknown:
            return _unknown_key(unknown, [s for o, s in zip(overrides, single) if o.key_or_group != unknown],
                                config_name)
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        lines = [line for line in lines if not line.startswith(("full_key", "object_type", "Set the environment"))]
        return "error: " + "; ".join(lines)
    return None


def _unknown_key(key: str, others: list[str], config_name: str = "train") -> str:
    """``model.shakedrop`` on a model without that option: name the keys that node does have."""
    parent, _, _ = key.rpartition(".")
    try:
        node = OmegaConf.select(compose(others, config_name), parent) if parent else compose(others, config_name)
        have = ", ".join(k for k in node.keys() if not str(k).startswith("_"))
    except Exception:
        have = "see --cfg job"
    where = f"{parent} has" if parent else "the top level has"
    return f"error: {key} is not a key of this config ({where}: {have}); add a new key with +{key}=..."


def check_fused_launch(argv: list[str]) -> str | None:
    """``hydra/launcher=fused``: one error line, before anything is written, for what it cannot do."""
    from .fusion.groups import check_max_members

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return "error: hydra/launcher=fused trains its groups in one process: run it without torchrun"
    _, single = _first_of_each_sweep(argv)
    try:
        check_max_members(compose(single).fuse.max_members)
    except ValueError as err:
        return f"error: {err}"
    return None


def _run_time(fmt: str) -> str:
    """``${cutmix_now:FORMAT}``: the launch time, the same on every DDP rank (rank 0's)."""
    return dt.datetime.fromtimestamp(float(os.environ.get("CUTMIX_RUN_TIME", time.time()))).strftime(fmt)


OmegaConf.register_new_resolver("cutmix_now", _run_time, replace=True)


def sweep_subdir(argv: list[str]) -> list[str]:
    """Overrides that name each run of a multirun (``argv``: its overrides) by the values it sweeps
    (``regularizer.alpha=0.5``, joined with commas when several keys are swept), so TensorBoard lists
    ``regularizer.alpha=0.5/tb``. Nothing when the user set ``hydra.sweep.subdir`` or nothing is swept (then runs
    are 0, 1, …)."""
    if any(a.startswith("hydra.sweep.subdir") for a in argv):
        return []
    overrides, _ = _first_of_each_sweep(argv)
    if not any(o.is_sweep_override() for o in overrides):
        return []
    fixed = sorted({o.key_or_group for o in overrides if not o.is_sweep_override()})
    return [f"hydra.job.config.override_dirname.exclude_keys=[{','.join(fixed)}]",
            "hydra.sweep.subdir=${hydra.job.override_dirname}"]


@contextlib.contextmanager
def _launch_time():
    """``CUTMIX_RUN_TIME``, the launch time, for this command: a sweep's later jobs would otherwise resolve the
    sweep folder's ``${cutmix_now:...}`` to their own start and land in folders of their own."""
    if "CUTMIX_RUN_TIME" in os.environ:
        yield
        return
    os.environ["CUTMIX_RUN_TIME"] = str(time.time())
    try:
        yield
    finally:
        os.environ.pop("CUTMIX_RUN_TIME", None)


def _join_torchrun() -> None:
    """Under torchrun, agree on one run directory before Hydra makes it: rank 0's launch time
    is broadcast, and the other ranks write neither ``.hydra/`` nor a log file."""
    from .engine import distributed

    distributed.join()
    os.environ["CUTMIX_RUN_TIME"] = distributed.broadcast_object(os.environ.get("CUTMIX_RUN_TIME", str(time.time())))
    if distributed.rank() != 0:
        sys.argv += ["hydra.output_subdir=null", "hydra/job_logging=stdout"]


def run_job(fit, cfg: DictConfig, log_name: str = "train.log") -> dict:
    """``fit(cfg, run directory, choices)`` inside a Hydra job: a bad value, a data error or a failed run is one
    error line (the log file keeps it; a start that wrote nothing to keep leaves no folder) and exit status 2;
    a run stopped by a signal exits 0 (its checkpoint written) so that no further job of a sweep starts."""
    from .engine import distributed  # after Hydra has parsed the command line: --help stays fast

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
            remove_failed_start(Path(runtime.output_dir), log_name)
        fail(message)
    finally:
        distributed.teardown(together=finished)
    if results.get(STATUS) == INTERRUPTED:
        sys.exit(0)
    return results


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def _run(cfg: DictConfig) -> float | None:
    from .engine.trainer import fit

    return run_job(fit, cfg).get(BEST_TOP1)


def _exit_worker(code: int) -> None:
    """End a torchrun worker without the interpreter's shutdown: gloo's C++ threads can abort a
    process that already finished and left its process group (``terminate called without an
    active exception``, about once in 500 CPU runs here even after ``destroy_process_group``).
    Everything is written and flushed first; the exit status is the run's own."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def hydra_command_line(argv: list[str]):
    """The command line as Hydra reads it (its own parser: every flag of ``--hydra-help`` in either spelling,
    ``--cfg job`` or ``--cfg=job``, and the overrides), or None where Hydra will refuse it with its own message."""
    try:
        from hydra._internal.utils import get_args_parser  # what @hydra.main parses with (Hydra-internal)
    except ImportError:  # a Hydra that moved it: no pre-check, Hydra checks the command line itself
        return None
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            return get_args_parser().parse_args(argv)
    except SystemExit:  # an argparse error, or --version (printed by Hydra)
        return None


def checked_here(args, config_name: str) -> bool:
    """Whether the overrides are this application's config overrides, composed against its own config: not with
    ``-sc`` (their words are completion commands), ``--experimental-rerun`` (Hydra ignores them), or another
    config (``-cp``, ``-cd``, ``-cn`` of another name), whose overrides Hydra checks itself."""
    return args is not None and not (args.shell_completion or args.experimental_rerun or args.config_path
                                     or args.config_dir or args.config_name not in (None, config_name))


def launch(app, groups: tuple[str, ...] = GROUPS, config_name: str = "train") -> None:
    """Check the command line (one error line for an unknown choice or key), name a sweep's runs by what they
    vary, then run the Hydra ``app``: in this process, or as this torchrun worker's rank."""
    argv = sys.argv[1:]
    args = hydra_command_line(argv)
    if checked_here(args, config_name):
        overrides = args.overrides
        message = check_group_overrides(overrides, groups) or check_composes(overrides, config_name)
        if not message and config_name == "train" and "hydra/launcher=fused" in (o.lstrip("+") for o in overrides):
            message = check_fused_launch(overrides)
        if message:
            fail(message)
        extra = sweep_subdir(overrides) if args.multirun else []
        if extra:  # just before the user's overrides: argparse takes them only as one block
            first = next(i for i in range(1, len(sys.argv)) if sys.argv[i:i + len(overrides)] == overrides)
            sys.argv[first:first] = extra
    register_fused_launcher()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        with _launch_time():  # every job of a sweep resolves ${cutmix_now:...} to the same moment
            app()
        return
    _join_torchrun()
    try:
        app()
    except SystemExit as stop:
        _exit_worker(stop.code if isinstance(stop.code, int) else int(stop.code is not None))
    _exit_worker(0)


def main() -> None:
    launch(_run)


if __name__ == "__main__":
    main()
