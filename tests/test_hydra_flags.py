"""Hydra's own flags, as the Hydra documentation writes them (``--cfg job``, ``-cn NAME``) and with ``=``
(``--cfg=job``), through both Hydra applications (``cutmix_repro.train``, ``cutmix_repro.transfer``): every flag
that ``--hydra-help`` lists reaches Hydra and does what it says. The task's ``fit`` is replaced by one that
records what it was given, so a flag that runs the job costs nothing; training itself is tested elsewhere."""

from __future__ import annotations

import pickle
import sys

import pytest
from helpers import train_main, transfer_main

from cutmix_repro.config import config_dir

APPS = {"train": (train_main, "cutmix_repro.engine.trainer", ["trainer.epochs=7"], "epochs: 7"),
        "transfer": (transfer_main, "cutmix_repro.transfer.run", ["+task=voc_faster_rcnn", "seed=7"], "seed: 7")}


def spellings(flag: str, value: str) -> list[list[str]]:
    return [[flag, value], [f"{flag}={value}"]]


@pytest.fixture
def app(request, monkeypatch, tmp_path, capsys):
    """(run the app with ARGS: (exit status, stdout, stderr), the configs its fake ``fit`` received)."""
    main, module, overrides, shown = APPS[request.param]
    received = []

    def fake_fit(cfg, run_dir, choices=None):
        received.append((cfg, run_dir))
        return {"status": "finished", "best_top1_err": 1.0, "metrics": {}}

    monkeypatch.setattr(sys.modules[__import__(module, fromlist=["fit"]).__name__], "fit", fake_fit)
    monkeypatch.chdir(tmp_path)

    def run(args):
        capsys.readouterr()
        with monkeypatch.context() as m:
            status, err = main(args, m)
        return status, capsys.readouterr().out, err

    return run, received, overrides, shown, request.param


@pytest.mark.parametrize("app", list(APPS), indirect=True)
def test_every_hydra_flag_in_both_spellings(app, tmp_path):
    run, received, overrides, shown, name = app
    extra = tmp_path / "extra" / "experiment"
    extra.mkdir(parents=True)
    (extra / "flagtest.yaml").write_text("# @package _global_\nflagtest_marker: 11\n")
    cases = [(["--help"], "== Configuration groups =="), (["-h"], "== Configuration groups =="),
             (["--hydra-help"], "== Flags =="), (["--version"], "Hydra 1.")]
    for flag in ("--cfg", "-c"):
        cases += [([*spelled, *overrides], shown) for spelled in spellings(flag, "job")]
    cases += [(["--cfg", "job", "--resolve", *overrides], shown)]
    for flag in ("--package", "-p"):
        cases += [(["--cfg", "job", *spelled, *overrides], "# @package " + ("trainer" if name == "train" else "task"))
                  for spelled in spellings(flag, "trainer" if name == "train" else "task")]
    for flag in ("--config-path", "-cp"):
        cases += [(["--cfg", "job", *spelled, *overrides], shown) for spelled in spellings(flag, str(config_dir()))]
    for flag in ("--config-name", "-cn"):
        cases += [(["--cfg", "job", *spelled, *overrides], shown) for spelled in spellings(flag, name)]
    for flag in ("--config-dir", "-cd"):
        cases += [(["--cfg", "job", *spelled, *overrides, "+experiment=flagtest"], "flagtest_marker: 11")
                  for spelled in spellings(flag, str(tmp_path / "extra"))]
    cases += [(["--info"], "Defaults List"), (["-i"], "Defaults List")]
    for flag in ("--info", "-i"):
        cases += [([*spelled, *overrides], "Defaults List") for spelled in spellings(flag, "defaults")]
    cases += [(["--shell-completion", "install=bash"], "hydra_bash_completion"),
              (["-sc", "install=bash"], "hydra_bash_completion")]
    for args, needle in cases:
        status, out, err = run(args)
        assert status == 0 and needle in out, (args, err[-500:])
    assert received == [], "showing the config runs nothing"

    # the flags that run the job: each reaches the task with the overrides
    runs = 0
    for flag in ("--run", "-r"):
        status, _, err = run([flag, *overrides, f"hydra.run.dir={tmp_path / flag.strip('-')}"])
        runs += 1
        assert status == 0 and len(received) == runs, (flag, err)
        assert str(received[-1][1]).endswith(flag.strip("-"))
    for flag in ("--multirun", "-m"):
        status, _, err = run([flag, *overrides, "seed=1,2", f"hydra.sweep.dir={tmp_path / flag.strip('-')}"])
        runs += 2
        assert status == 0 and len(received) == runs, (flag, err)
        assert [int(cfg.seed) for cfg, _ in received[-2:]] == [1, 2]
    # --experimental-rerun: a job's pickled config (Hydra's PickleJobInfoCallback), run again as it was
    first = tmp_path / "pickled"
    status, _, err = run([*overrides, f"hydra.run.dir={first}",
                          "+hydra.callbacks.save_job_info._target_=hydra.experimental.callbacks.PickleJobInfoCallback"])
    assert status == 0, err
    runs += 1
    saved, pickled = first / ".hydra" / "config.pickle", received[-1]
    assert saved.is_file()
    for spelled in spellings("--experimental-rerun", str(saved)):
        status, _, err = run(spelled)
        runs += 1
        assert status == 0 and len(received) == runs, (spelled, err)
        assert received[-1][0] == pickled[0] and str(received[-1][1]) == str(pickled[1])
        assert pickle.loads(saved.read_bytes()).hydra.runtime.output_dir == str(received[-1][1])


@pytest.mark.parametrize("app", list(APPS), indirect=True)
def test_a_bad_override_beside_a_spaced_flag_is_still_one_line(app, tmp_path):
    run, received, overrides, _, name = app
    bad = "model=nonesuch" if name == "train" else "task=nonesuch"
    for flag in (["--cfg", "job"], ["--cfg=job"], ["-cn", name], ["--info", "defaults"]):
        status, out, err = run([*flag, *[o for o in overrides if "task=" not in o], "+" + bad if name == "transfer"
                                else bad])
        assert status == 2 and len(err.strip().splitlines()) == 1 and "nonesuch" in err, (flag, err)
    assert not list(tmp_path.iterdir()) and received == []
