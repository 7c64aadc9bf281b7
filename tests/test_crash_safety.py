"""Never lose a run: kills, signals, corrupted checkpoints, divergence, hostile folders."""

import json
import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
from fakedata import write_imagefolder
from helpers import FAST, TINY_MODEL, fit_run, history_without_timing, results, scalars, train_main

import cutmix_repro.engine.step as step_module
from cutmix_repro.engine.checkpoint import save_checkpoint
from cutmix_repro.engine.step import TrainingDiverged

ARGS = ["dataset=synthetic", "dataset.train_size=384", "dataset.test_size=64", "model=cifar_resnet",
        "model.depth=14", "model.bottleneck=false", "model.drop_path_rate=0.1", "regularizer=cutmix",
        "cutmix_prob=0.5", "trainer.epochs=5", "trainer.batch_size=32", "trainer.lr=0.05", *FAST]


def start(run, extra=()):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": os.environ.get("CUTMIX_TEST_THREADS", "2")}
    return subprocess.Popen([sys.executable, "-m", "cutmix_repro.train", *ARGS, *extra, f"hydra.run.dir={run}"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_training(proc, run, timeout=600):
    """Until the run logged its first line (the model is built and the loop starts)."""
    deadline = time.time() + timeout
    log = run / "train.log"
    while time.time() < deadline:
        if log.exists() and "parameters" in log.read_text():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def weights(run):
    return torch.load(run / "last.pt", weights_only=True)["model"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run = tmp_path_factory.mktemp("reference") / "run"
    proc = start(run)
    assert proc.wait(timeout=300) == 0, proc.stdout.read()
    return run


def assert_same_run(run, reference):
    a, b = weights(run), weights(reference)
    assert all(torch.equal(a[k], b[k]) for k in a), "weights differ from the uninterrupted run"
    assert history_without_timing(results(run)["history"]) == history_without_timing(results(reference)["history"])
    assert [s for s, _ in scalars(run, "val/top1_err")] == [1, 2, 3, 4, 5], "TensorBoard steps once each"


def test_sigkill_at_random_moments_then_resume_ends_like_an_uninterrupted_run(tmp_path, reference):
    rng = random.Random(1234)
    run = tmp_path / "run"
    kills = 0
    for _ in range(3):  # kills after 2.42 s, 1.10 s and 0.02 s of training (the seeded draws)
        proc = start(run, ["trainer.resume=true"])
        if wait_for_training(proc, run):
            time.sleep(rng.uniform(0.0, 2.5))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
        proc.wait(timeout=600)
    assert kills >= 2, "the test must actually kill the run mid-training"
    final = start(run, ["trainer.resume=true"])
    assert final.wait(timeout=300) == 0, final.stdout.read()
    assert results(run)["status"] == "finished"
    assert not list(run.glob(".*.tmp")), "no half-written checkpoint is left behind"
    assert_same_run(run, reference)


def test_sigterm_checkpoints_mid_epoch_and_exits_cleanly(tmp_path, reference):
    run = tmp_path / "run"
    proc = start(run)
    assert wait_for_training(proc, run)
    time.sleep(0.3)  # a few steps into epoch 1 of a ~3.5 s run: margin for a machine several times faster
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, output
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["step"] > 0, "the checkpoint is taken where the signal arrived, mid-epoch"
    assert results(run)["status"] == "interrupted" and "stopped by SIGTERM" in (run / "train.log").read_text()
    resumed = start(run, ["trainer.resume=true"])
    assert resumed.wait(timeout=300) == 0, resumed.stdout.read()
    assert_same_run(run, reference)


def test_a_crash_during_a_checkpoint_write_leaves_the_previous_one_intact(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"epoch": 1})

    def half_then_die(obj, f):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt  # killed mid-write

    monkeypatch.setattr(torch, "save", half_then_die)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"epoch": 2})
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"epoch": 1}
    assert list(tmp_path.iterdir()) == [path]


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def test_corrupted_checkpoint_is_one_clear_error_and_is_kept(tmp_path, monkeypatch):
    run = tmp_path / "run"
    args = ["dataset=synthetic", "dataset.train_size=32", "dataset.test_size=16", *TINY_MODEL, "trainer.epochs=2",
            *FAST, f"hydra.run.dir={run}"]
    run.mkdir()
    (run / "last.pt").write_bytes(b"\x00 not a checkpoint")
    status, stderr = train_main([*args, "trainer.resume=true"], monkeypatch)
    line = one_error_line(stderr)
    assert status == 2 and "corrupted" in line and "last.pt" in line
    assert (run / "last.pt").read_bytes() == b"\x00 not a checkpoint"


def test_checkpoint_from_another_model_or_dataset_names_the_mismatch(tmp_path, monkeypatch):
    run = tmp_path / "run"
    base = ["dataset=synthetic", "dataset.train_size=32", "dataset.test_size=16", "model=cifar_resnet",
            "model.bottleneck=false", "trainer.epochs=2", *FAST, f"hydra.run.dir={run}"]
    assert train_main([*base, "model.depth=8", "trainer.epochs=1"], monkeypatch)[0] == 0
    before = (run / "last.pt").read_bytes()
    status, stderr = train_main([*base, "model.depth=14", "trainer.resume=true"], monkeypatch)
    line = one_error_line(stderr)
    assert status == 2 and "another run" in line and "model='resnet8'" in line and "model='resnet14'" in line
    other_data = [a for a in base if not a.startswith("dataset")] + ["dataset=digits", "model.depth=8"]
    status, stderr = train_main([*other_data, "trainer.resume=true"], monkeypatch)
    line = one_error_line(stderr)
    assert status == 2 and "dataset='synthetic'" in line and "dataset='digits'" in line
    assert (run / "last.pt").read_bytes() == before


def test_nan_loss_stops_naming_epoch_and_step_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real_loss = step_module.mixed_cross_entropy
    calls = {"n": 0}

    def poisoned(logits, batch, smoothing):
        calls["n"] += 1
        loss = real_loss(logits, batch, smoothing)
        return loss * float("nan") if calls["n"] == 4 + 3 else loss  # epoch 2, step 3 (4 steps an epoch)

    monkeypatch.setattr(step_module, "mixed_cross_entropy", poisoned)
    with pytest.raises(TrainingDiverged, match=r"epoch 2, step 3.*last good checkpoint.*after epoch 1"):
        fit_run(["dataset=synthetic", "dataset.train_size=64", "dataset.test_size=16", *TINY_MODEL,
                 "trainer.epochs=3", "trainer.batch_size=16"], tmp_path)
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 1
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["status"] == "diverged" and len(res["history"]) == 1


def test_exploding_learning_rate_is_one_clear_line_from_the_command_line(tmp_path, monkeypatch):
    status, stderr = train_main(["dataset=synthetic", "dataset.train_size=64", "dataset.test_size=16", *TINY_MODEL,
                                 "trainer.epochs=2", "trainer.lr=1e30", *FAST, f"hydra.run.dir={tmp_path / 'run'}"],
                                monkeypatch)
    line = one_error_line(stderr)
    assert status == 2 and re.search(r"NaN or infinite at epoch \d+, step \d+; training stopped", line), line


def test_imagenet_folder_with_stray_and_broken_files(tmp_path, monkeypatch):
    write_imagefolder(tmp_path / "imagenet", classes=2, train_per_class=3, val_per_class=2)
    (tmp_path / "imagenet" / "train" / "n00000000" / "README.txt").write_text("not an image")
    args = ["+experiment=imagenet_resnet50", f"dataset.root={tmp_path / 'imagenet'}", "dataset.image_size=32",
            "dataset.resize=36", "dataset.num_workers=0", "trainer.batch_size=2", "trainer.epochs=1", *FAST]
    status, stderr = train_main([*args, f"hydra.run.dir={tmp_path / 'ok'}"], monkeypatch)
    assert status == 0, stderr  # files that are not images by name are skipped, with a warning
    (tmp_path / "imagenet" / "train" / "n00000001" / "broken.JPEG").write_text("not a jpeg")
    status, stderr = train_main([*args, "dataset.num_workers=2", f"hydra.run.dir={tmp_path / 'bad'}"], monkeypatch)
    assert status == 2 and "broken.JPEG is not a readable image" in one_error_line(stderr)


def test_empty_imagenet_class_is_one_clear_line(tmp_path, monkeypatch):
    write_imagefolder(tmp_path / "imagenet", classes=2)
    (tmp_path / "imagenet" / "train" / "n_empty").mkdir()
    status, stderr = train_main(["+experiment=imagenet_resnet50", f"dataset.root={tmp_path / 'imagenet'}",
                                 "dataset.num_workers=0", *FAST, f"hydra.run.dir={tmp_path / 'run'}"], monkeypatch)
    assert status == 2 and "n_empty" in one_error_line(stderr)


def test_batch_size_that_does_not_divide_the_data_keeps_the_partial_batch(tmp_path):
    res = fit_run(["dataset=synthetic", "dataset.train_size=50", "dataset.test_size=33", *TINY_MODEL,
                   "trainer.epochs=1", "trainer.batch_size=16"], tmp_path / "run")
    assert res["history"][0]["val_count"] == 33
