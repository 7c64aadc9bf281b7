"""DDP through torchrun on the CPU (gloo): two ranks, one answer, every test image once."""

import os
import subprocess
import sys

import torch
from helpers import FAST, results, train_main

from cutmix_repro.config import build, compose
from cutmix_repro.engine.step import StepOptions, evaluate
from cutmix_repro.models import create_model

DATA = ["dataset=synthetic", "dataset.train_size=64", "dataset.test_size=33", "model=cifar_resnet",
        "model.depth=8", "model.bottleneck=false", "trainer.progress=false"]


def torchrun(args, cwd, nproc=2, timeout=300):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc_per_node={nproc}", "-m", "cutmix_repro.train", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_two_ranks_agree_count_each_test_image_once_and_match_single_process_eval(tmp_path):
    run = tmp_path / "run"
    proc = torchrun([*DATA, "trainer.epochs=2", "trainer.batch_size=16", "trainer.ema_decay=0.5",
                     f"hydra.run.dir={run}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = results(run)
    assert res["status"] == "finished" and res["world_size"] == 2
    for entry in res["history"]:
        assert entry["val_count"] == 33, "every image of an odd-sized test set exactly once"
        assert entry["rank_val_top1_err"][0] == entry["rank_val_top1_err"][1] == entry["val_top1_err"]
    assert res["rank_weight_checksums"][0] == res["rank_weight_checksums"][1]
    # the errors equal a single-process evaluation of the checkpoint rank 0 wrote
    state = torch.load(run / "last.pt", weights_only=True)
    model = create_model("cifar_resnet", num_classes=10, depth=8, bottleneck=False)
    model.load_state_dict(state["model"])
    data = build(compose(DATA).dataset, "dataset", batch_size=16)
    val = evaluate(model, data.val, StepOptions(device=torch.device("cpu")))
    assert val["count"] == 33
    assert abs(val["top1_err"] - res["last_top1_err"]) < 1e-9
    assert abs(val["top5_err"] - res["last_top5_err"]) < 1e-9
    # and so do the weight average's (trainer.ema_decay), kept alike on both ranks
    model.load_state_dict(state["ema"]["weights"])
    val = evaluate(model, data.val, StepOptions(device=torch.device("cpu")))
    assert abs(val["top1_err"] - res["history"][-1]["val_top1_err_ema"]) < 1e-9
    assert abs(val["loss"] - res["history"][-1]["val_loss_ema"]) < 1e-6
    # only rank 0 wrote: one log, one Hydra folder, one TensorBoard writer
    assert len(list((run / "tb").glob("events*"))) >= 1 and (run / ".hydra").is_dir()


def test_world_size_larger_than_the_data_is_one_clear_error(tmp_path):
    proc = torchrun(["dataset=synthetic", "dataset.train_size=1", "dataset.test_size=4", "trainer.epochs=1",
                     "trainer.batch_size=2", "trainer.progress=false", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "world_size=2" in errors[0] and "the 1 training images" in errors[0]


def test_global_batch_not_divisible_by_world_size_is_refused():
    # checked before anything is built; that two torchrun ranks print such an error once is the test above
    import pytest

    from cutmix_repro.engine.trainer import check_trainer
    from cutmix_repro.errors import ConfigError

    with pytest.raises(ConfigError, match="trainer.batch_size=15 .*multiple of the world size"):
        check_trainer(compose([*DATA, "trainer.batch_size=15"]).trainer, world_size=2)
    check_trainer(compose([*DATA, "trainer.batch_size=16"]).trainer, world_size=2)


def test_slurm_launcher_config_composes_with_requeue_settings(tmp_path):
    from helpers import needs, train_cli

    needs("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher")
    proc = train_cli(["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "--cfg", "hydra"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    for needle in ("SlurmLauncher", "partition: gpu", "max_num_timeout: 20", "signal_delay_s: 300",
                   "gpus_per_node: 1", "timeout_min: 4320"):
        assert needle in proc.stdout, needle


def test_a_requeued_slurm_job_resumes_by_itself(tmp_path, monkeypatch):
    run = tmp_path / "run"
    args = [*DATA, *FAST, "trainer.batch_size=16", f"hydra.run.dir={run}"]
    assert train_main([*args, "trainer.epochs=1"], monkeypatch)[0] == 0
    assert train_main([*args, "trainer.epochs=2"], monkeypatch)[0] == 2  # a plain rerun never overwrites
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    status, stderr = train_main([*args, "trainer.epochs=2"], monkeypatch)
    assert status == 0, stderr
    res = results(run)
    assert res["epochs_done"] == 2 and [h["epoch"] for h in res["history"]] == [1, 2]
    assert "resumed from" in (run / "train.log").read_text()


def test_sigterm_under_torchrun_stops_all_ranks_at_one_step_and_resumes_exactly(tmp_path):
    import signal
    import time

    # SIGTERM once epoch 2 is logged: 4 epochs (32 steps) remain for the ranks to agree to stop at one step
    args = ["dataset=synthetic", "dataset.train_size=256", "dataset.test_size=33", "model=cifar_resnet",
            "model.depth=8", "model.bottleneck=false", "trainer.epochs=6", "trainer.batch_size=32",
            "trainer.progress=false"]
    reference = tmp_path / "reference"
    assert torchrun([*args, f"hydra.run.dir={reference}"], tmp_path).returncode == 0
    run = tmp_path / "run"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    agent = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                              "-m", "cutmix_repro.train", *args, f"hydra.run.dir={run}"], cwd=tmp_path, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log, deadline = run / "train.log", time.time() + 900  # a loaded machine may take minutes to get there
    while time.time() < deadline and not (log.exists() and "epoch 2 |" in log.read_text()):
        time.sleep(0.05)
    agent.send_signal(signal.SIGTERM)  # torchrun forwards it to both ranks
    agent.wait(timeout=120)
    assert results(run)["status"] == "interrupted", "the ranks agreed to stop and checkpointed"
    resumed = torchrun([*args, "trainer.resume=true", f"hydra.run.dir={run}"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = torch.load(run / "last.pt", weights_only=True)["model"]
    b = torch.load(reference / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    errors = [[h["val_top1_err"] for h in results(r)["history"]] for r in (run, reference)]
    assert errors[0] == errors[1]
