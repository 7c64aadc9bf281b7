"""The command line users type, end to end on the CPU (issue: one trainer, every experiment)."""

import json
import math

import pytest
from fakedata import write_cifar10, write_cifar100, write_imagefolder
from helpers import FAST, TINY_MODEL, results, scalars, train_cli


def test_cifar10_from_files_in_the_real_pickle_format(tmp_path):
    write_cifar10(tmp_path / "data")
    run = tmp_path / "run"
    proc = train_cli(["+experiment=cifar10_pyramidnet", *TINY_MODEL, "dataset.root=data", "dataset.download=false",
                      "trainer.epochs=2", "trainer.batch_size=16", *FAST, f"hydra.run.dir={run}"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    res = results(run)
    assert res["status"] == "finished" and res["dataset"] == "cifar10" and res["epochs_done"] == 2
    assert res["history"][-1]["val_count"] == 31  # every test image once, odd-sized test set
    assert res["regularizer"] == "cutmix" and res["regularizer_params"]["prob"] == 0.5
    # results.json agrees with the TensorBoard log
    tb = scalars(run, "val/top1_err")
    assert [s for s, _ in tb] == [1, 2]
    assert [round(v, 3) for _, v in tb] == [round(h["val_top1_err"], 3) for h in res["history"]]
    assert res["best_top1_err"] == min(h["val_top1_err"] for h in res["history"])
    assert res["last_top1_err"] == res["history"][-1]["val_top1_err"]
    for tag in ("train/loss", "train/top1_err", "val/top5_err", "lr", "train/images_per_s"):
        assert len(scalars(run, tag)) == 2, tag
    assert (run / "last.pt").exists() and (run / "best.pt").exists() and (run / ".hydra" / "config.yaml").exists()
    assert (run / "train.log").read_text().count("val top1_err") == 2


def test_cifar100_from_files_and_every_results_field(tmp_path):
    write_cifar100(tmp_path / "data")
    run = tmp_path / "run"
    proc = train_cli(["dataset=cifar100", *TINY_MODEL, "regularizer=mixup", "dataset.root=data",
                      "dataset.download=false", "trainer.epochs=1", "trainer.batch_size=32", "seed=3", *FAST,
                      f"hydra.run.dir={run}"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    res = results(run)
    for key in ("dataset", "model", "regularizer", "regularizer_params", "seed", "epochs", "num_params",
                "best_top1_err", "best_top5_err", "best_epoch", "last_top1_err", "last_top5_err", "wall_time_s",
                "images_per_s", "versions", "git_revision", "nondeterminism"):
        assert key in res, key
    assert res["seed"] == 3 and res["model"] == "cifar_resnet" and res["num_params"] > 0
    assert res["versions"]["torch"] and res["history"][0]["val_count"] == 31
    assert 0 <= res["best_top5_err"] <= res["best_top1_err"] <= 100


def test_imagenet_from_a_tiny_imagefolder_of_jpegs(tmp_path):
    write_imagefolder(tmp_path / "imagenet")
    run = tmp_path / "run"
    proc = train_cli(["+experiment=imagenet_resnet50", "dataset.root=imagenet", "dataset.image_size=32",
                      "dataset.resize=36", "dataset.num_workers=0", "trainer.batch_size=4", "trainer.epochs=1",
                      *FAST, f"hydra.run.dir={run}"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    res = results(run)
    assert res["dataset"] == "imagenet" and res["model"] == "resnet50"
    assert res["history"][0]["val_count"] == 9 and res["batch_size"] == 4 and res["lr"] == 0.1


def test_digits_quickstart_shortened_trains_on_real_images(tmp_path):
    run = tmp_path / "run"
    proc = train_cli(["+experiment=digits_quickstart", "trainer.epochs=1", *FAST, f"hydra.run.dir={run}"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    res = results(run)
    assert res["dataset"] == "digits" and res["history"][0]["val_count"] == 359
    assert scalars(run, "val/top1_err")


def test_multirun_over_two_alphas_makes_two_run_directories(tmp_path):
    sweep = tmp_path / "sweep"
    proc = train_cli(["-m", "dataset=synthetic", *TINY_MODEL, "regularizer.alpha=0.5,2.0", "trainer.epochs=1",
                      "dataset.train_size=64", "dataset.test_size=32", *FAST, f"hydra.sweep.dir={sweep}"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    runs = sorted(p.parent for p in sweep.glob("*/results.json"))
    assert len(runs) == 2
    assert sorted(results(r)["regularizer_params"]["alpha"] for r in runs) == [0.5, 2.0]
    # hyperparameters with their final and best errors are in TensorBoard's HParams view
    for r in runs:
        assert [v for _, v in scalars(r, "hparam/best_top1_err")] == [pytest.approx(results(r)["best_top1_err"])]


def test_learnable_synthetic_set_error_falls_far_below_chance(tmp_path):
    run = tmp_path / "run"
    proc = train_cli(["dataset=synthetic", *TINY_MODEL, "regularizer=baseline", "trainer.epochs=4",
                      "trainer.lr=0.05", "trainer.batch_size=32", *FAST, f"hydra.run.dir={run}"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert results(run)["last_top1_err"] < 30  # chance is 90%


BAD = [
    (["regularizer.alpha=0"], "regularizer.alpha"),
    (["regularizer.alpha=-1"], "regularizer.alpha"),
    (["regularizer.prob=1.5"], "regularizer.prob"),
    (["regularizer=mixup", "regularizer.prob=-0.1"], "regularizer.prob"),
    (["regularizer=feature_cutmix", "regularizer.layers=5"], "layers"),
    (["regularizer=cutout", "regularizer.size=0"], "regularizer.size"),
    (["trainer.batch_size=0"], "trainer.batch_size"),
    (["trainer.device=tpu"], "trainer.device"),
    (["model=resnet110", "model.shakedrop=true"], "shakedrop"),
    (["model=pyramidnet", "model.depth=12"], "depth"),
    (["dataset=imagenet", "dataset.root=nowhere", "model=resnet50"], "dataset.root"),
    (["dataset=cifar10", "dataset.root=empty", "dataset.download=false"], "dataset.download=true"),
    (["model=nosuchnet"], "cifar_resnet, pyramidnet"),
    (["dataset=mnist"], "cifar10, cifar100"),
    (["regularizer=cutmixx"], "baseline"),
    (["+experiment=cifar1000_pyramidnet"], "cifar100_pyramidnet"),
]


@pytest.mark.parametrize("args, needle", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_stops_before_training_with_one_line(tmp_path, args, needle):
    run = tmp_path / "run"
    small = ["dataset=synthetic", "dataset.train_size=16", "dataset.test_size=8"]
    base = [*(small if not any(a.startswith("dataset=") for a in args) else []), "trainer.epochs=1", *FAST]
    proc = train_cli([*base, *args, f"hydra.run.dir={run}"], tmp_path, timeout=120)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:") and needle in lines[0], lines[0]
    assert not (run / "results.json").exists() and not (run / "last.pt").exists()


def test_results_json_is_valid_json_with_finite_numbers(tmp_path):
    run = tmp_path / "run"
    proc = train_cli(["dataset=synthetic", *TINY_MODEL, "trainer.epochs=1", "dataset.train_size=32",
                      "dataset.test_size=16", *FAST, f"hydra.run.dir={run}"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    res = json.loads((run / "results.json").read_text())
    assert all(math.isfinite(res[k]) for k in ("best_top1_err", "last_top5_err", "wall_time_s", "images_per_s"))
