"""The command line users type, end to end on the CPU: every data format, what a run writes, a sweep as
TensorBoard shows it, and one error line for bad input."""

import math

import pytest
from fakedata import write_cifar10, write_cifar100, write_imagefolder
from helpers import FAST, TINY_MODEL, fit_run, results, scalars, train_cli, train_main
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata

from cutmix_repro.engine import records as R


def test_cifar10_from_files_in_the_real_pickle_format(tmp_path, monkeypatch):
    write_cifar10(tmp_path / "data")
    run = tmp_path / "run"
    monkeypatch.chdir(tmp_path)  # dataset.root is relative to where the command runs
    status, err = train_main(["+experiment=cifar10_pyramidnet", *TINY_MODEL, "dataset.root=data",
                              "dataset.download=false", "trainer.epochs=2", "trainer.batch_size=16", *FAST,
                              f"hydra.run.dir={run}"], monkeypatch)
    assert status == 0, err
    res = results(run)
    assert res["status"] == "finished" and res["dataset"] == "cifar10" and res["epochs_done"] == 2
    assert res["history"][-1]["val_count"] == 31  # every test image once, odd-sized test set
    assert res["regularizer"] == "cutmix" and res["regularizer_params"]["prob"] == 0.5
    assert (run / "last.pt").exists() and (run / "best.pt").exists() and (run / ".hydra" / "config.yaml").exists()
    assert (run / "train.log").read_text().count("val top1_err") == 2


def test_results_json_and_tensorboard_hold_every_field_and_agree(finished_run):
    run, res = finished_run
    for key in ("dataset", "model", "model_target", "model_options", "regularizer", "regularizer_params", "seed",
                "epochs", "num_params", R.BEST_TOP1, R.BEST_TOP5, R.BEST_EPOCH, R.LAST_TOP1, R.LAST_TOP5,
                R.WALL_TIME, R.IMAGES_PER_S, "versions", "git_revision", "nondeterminism"):
        assert key in res, key
    assert res["seed"] == 1 and res["model"] == "resnet8" and res["num_params"] > 0
    assert res["model_options"] == {"depth": 8, "bottleneck": False, "drop_path_rate": 0.0, "dropblock": False}
    assert all(math.isfinite(res[k]) for k in (R.BEST_TOP1, R.LAST_TOP5, R.WALL_TIME, R.IMAGES_PER_S))
    assert 0 <= res[R.BEST_TOP5] <= res[R.BEST_TOP1] <= 100
    for field, tag in R.TB_TAGS.items():
        logged = scalars(run, tag)
        if field not in res["history"][0]:  # localization, on data with boxes only
            assert not logged, tag
            continue
        assert [s for s, _ in logged] == [1, 2, 3, 4], tag
        assert [v for _, v in logged] == pytest.approx([h[field] for h in res["history"]], rel=1e-6), tag
    assert not [t for t in EventAccumulator(str(run / "tb")).Reload().Tags()["scalars"] if t.startswith("hparam")]


def test_imagenet_from_a_tiny_imagefolder_of_jpegs(tmp_path, monkeypatch):
    write_imagefolder(tmp_path / "imagenet")
    run = tmp_path / "run"
    monkeypatch.chdir(tmp_path)
    status, err = train_main(["+experiment=imagenet_resnet50", "dataset.root=imagenet", "dataset.image_size=32",
                              "dataset.resize=36", "dataset.num_workers=0", "trainer.batch_size=4",
                              "trainer.epochs=1", *FAST, f"hydra.run.dir={run}"], monkeypatch)
    assert status == 0, err
    res = results(run)
    assert res["dataset"] == "imagenet" and res["model"] == "resnet50"
    assert res["history"][0]["val_count"] == 9 and res["batch_size"] == 4
    assert res["history"][0]["lr"] == 0.1, "a one-epoch run trains its epoch at the recipe's lr"


def test_cifar100_and_digits_train_through_fit(tmp_path):
    write_cifar100(tmp_path / "data")
    res = fit_run(["dataset=cifar100", *TINY_MODEL, "regularizer=mixup", f"dataset.root={tmp_path / 'data'}",
                   "dataset.download=false", "trainer.epochs=1", "trainer.batch_size=32"], tmp_path / "cifar100")
    assert res["dataset"] == "cifar100" and res["history"][0]["val_count"] == 31
    res = fit_run(["+experiment=digits_quickstart", "trainer.epochs=1"], tmp_path / "digits")
    assert res["dataset"] == "digits" and res["history"][0]["val_count"] == 359


def test_learnable_synthetic_set_error_falls_far_below_chance(tmp_path):
    res = fit_run(["dataset=synthetic", *TINY_MODEL, "regularizer=baseline", "trainer.epochs=4", "trainer.lr=0.05",
                   "trainer.batch_size=32"], tmp_path / "run")
    assert res[R.LAST_TOP1] < 30  # chance is 90%


def session_start(run):
    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    content = acc.PluginTagToContent(hparams_metadata.PLUGIN_NAME)
    assert hparams_metadata.EXPERIMENT_TAG not in content, "no experiment of its own: the plugin builds one"
    return hparams_metadata.parse_session_start_info_plugin_data(content[hparams_metadata.SESSION_START_INFO_TAG])


def session_hparams(run) -> dict:
    start = session_start(run)
    return {k: v.number_value if v.HasField("number_value") else v.string_value for k, v in start.hparams.items()}


def test_a_sweep_is_named_by_what_varies_and_compared_in_tensorboard(tmp_path):
    sweep = tmp_path / "sweep"
    proc = train_cli(["-m", "dataset=synthetic", *TINY_MODEL, "regularizer.alpha=0.5,2.0", "trainer.epochs=1",
                      "dataset.train_size=64", "dataset.test_size=32", *FAST, f"hydra.sweep.dir={sweep}"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    runs = sorted(p.parent for p in sweep.glob("*/results.json"))
    assert [r.name for r in runs] == ["regularizer.alpha=0.5", "regularizer.alpha=2.0"]
    for run in runs:
        res = results(run)
        hp = session_hparams(run)
        assert hp["regularizer.alpha"] == res["regularizer_params"]["alpha"]
        assert hp["trainer.lr"] == res["lr"] and hp["seed"] == 0 and hp["model.depth"] == 8
        assert "trainer.progress" not in hp
        assert (hp["regularizer"], hp["model"], hp["dataset"]) == ("cutmix", "cifar_resnet", "synthetic"), "choices"
        assert session_start(run).group_name == f"cutmix · resnet8 · synthetic · {run.name}", "the trial's name"
        assert scalars(run, "val/top1_err"), "the HParams metrics are the scalars the run logs"
        # the plugin orders its metric columns by tag: the best epoch's top-1 error comes first
        tags = sorted(EventAccumulator(str(run / "tb")).Reload().Tags()["scalars"])
        assert tags[:2] == ["best/val_top1_err", "best/val_top5_err"], tags
        assert scalars(run, "best/val_top1_err")[-1][1] == pytest.approx(res[R.BEST_TOP1])


BAD = [
    (["regularizer.alpha=0"], "regularizer.alpha=0 "),
    (["regularizer.alpha=-1"], "regularizer.alpha=-1 "),
    (["regularizer.prob=1.5"], "regularizer.prob=1.5 "),
    (["regularizer=mixup", "regularizer.prob=-0.1"], "regularizer.prob=-0.1 "),
    (["regularizer=feature_cutmix", "regularizer.layers=5"], "regularizer.layers=5 "),
    (["regularizer=cutout", "regularizer.size=0"], "regularizer.size=0 "),
    (["regularizer=cutout_mixup", "regularizer.first.size=0"], "regularizer.first.size=0 "),
    (["regularizer=cutout_mixup", "regularizer.then.alpha=0"], "regularizer.then.alpha=0 "),
    (["trainer.batch_size=0"], "trainer.batch_size=0 "),
    (["trainer.epochs=0"], "trainer.epochs=0 "),
    (["trainer.device=tpu"], "trainer.device='tpu' "),
    (["trainer.amp=fp8"], "trainer.amp='fp8' "),
    (["scheduler.milestones=[0.5,1.5]"], "scheduler.milestones=[0.5, 1.5] "),
    (["model=resnet110", "model.shakedrop=true"], "model.shakedrop is not a key"),
    (["model=pyramidnet", "model.depth=12", "model.alpha=48", "model.bottleneck=true"], "model.depth=12 "),
    (["model=pyramidnet"], "model.depth: has no value"),
    (["dataset=imagenet", "dataset.root=nowhere", "model=resnet50"], "dataset.root='nowhere'"),
    (["dataset=cifar10", "dataset.root=empty", "dataset.download=false"], "dataset.download=true"),
    (["model=nosuchnet"], "cifar_resnet, preact_resnet18, pyramidnet"),
    (["dataset=mnist"], "cifar10, cifar100"),
    (["regularizer=cutmixx"], "baseline"),
    (["+experiment=cifar1000_pyramidnet"], "cifar100_pyramidnet"),
    (["trainer.epoch=3"], "trainer.epoch is not a key"),
]


@pytest.mark.parametrize("args, needle", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_stops_before_training_with_one_line_naming_the_key(tmp_path, monkeypatch, args, needle):
    run = tmp_path / "run"
    small = ["dataset=synthetic", "dataset.train_size=16", "dataset.test_size=8"]
    base = [*(small if not any(a.startswith("dataset=") for a in args) else []), "trainer.epochs=1", *FAST]
    monkeypatch.chdir(tmp_path)
    status, stderr = train_main([*base, *args, f"hydra.run.dir={run}"], monkeypatch)
    assert status == 2
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error:") and needle in lines[0], lines[0]
    assert not run.exists(), "a failed start leaves no folder behind"


def test_bad_input_from_a_real_process_exits_2_with_one_line(tmp_path, monkeypatch):
    proc = train_cli(["dataset=synthetic", "regularizer.alpha=0", *FAST, f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
    assert proc.returncode == 2
    assert lines == ["error: regularizer.alpha=0 is invalid: Beta(alpha, alpha) needs alpha > 0"], "printed once"
    assert not (tmp_path / "run").exists(), "a failed start leaves no folder behind"
    # a folder that holds anything else keeps it: only what the failed start wrote goes
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("my notes")
    mine = f"hydra.run.dir={tmp_path / 'mine'}"
    status, _ = train_main(["dataset=synthetic", "regularizer.alpha=0", *FAST, mine], monkeypatch)  # the same main
    assert status == 2 and sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


def test_a_failed_start_leaves_no_folder_not_even_the_empty_ones_above_its_run(tmp_path, monkeypatch):
    """The mission's own command offline, and a transfer without its weights file: each is one line, and the
    folders its start made (runs/cifar100/pyramidnet200/cutmix/, data/, runs/transfer/voc_faster_rcnn/) are gone;
    a folder that holds another run stays."""
    import importlib
    from urllib.error import URLError

    from helpers import transfer_main

    cifar = importlib.import_module("cutmix_repro.data.cifar")  # the module (the package exports a function so named)

    def offline(url, *args, **kwargs):
        raise URLError("no network in this test")

    monkeypatch.setattr(cifar, "download_and_extract_archive", offline)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    status, err = train_main(["+experiment=cifar100_pyramidnet"], monkeypatch)
    assert status == 2 and "could not download cifar100" in err and len(err.strip().splitlines()) == 1, err
    assert list(work.iterdir()) == []
    status, err = transfer_main(["+task=voc_faster_rcnn", "init_from=torchvision"], monkeypatch)
    assert status == 2 and "not on this machine" in err, err
    assert list(work.iterdir()) == []
    other = work / "runs" / "cifar100" / "pyramidnet200" / "cutmix" / "an-earlier-run"
    other.mkdir(parents=True)
    assert train_main(["+experiment=cifar100_pyramidnet"], monkeypatch)[0] == 2
    assert [p.name for p in other.parent.iterdir()] == ["an-earlier-run"] and not (work / "data").exists()


@pytest.mark.parametrize("module", ["figure1", "evaluate", "report", "reproduce", "bench"])
def test_help_gives_the_whole_first_paragraph_of_what_a_command_does(module, capsys):
    import importlib

    mod = importlib.import_module(f"cutmix_repro.{module}")
    with pytest.raises(SystemExit):
        mod.main(["--help"])
    shown = " ".join(capsys.readouterr().out.split())
    first = " ".join(mod.__doc__.split("\n\n")[0].split())
    assert first in shown and first.endswith((".", ":")), first
