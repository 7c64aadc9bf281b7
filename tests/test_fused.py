"""Fused members (``hydra/launcher=fused``, ``cutmix_repro/fusion/``): runs that differ in seed, regularizer and label
smoothing train as one model and each ends where its solo run ends; each writes a solo run's directory; a fused
job killed and resumed ends bit-identical to one never stopped; a member resumed alone goes on as a solo run; the
launcher groups what can share a step and says why the rest runs alone.

The tolerance of "equal to its solo run": after two epochs (four steps at lr 0.01) every weight and BatchNorm
statistic within 1e-4 + 1e-3 × its size of the solo run's, every momentum buffer within 25% of its norm, every
recorded loss within a relative 1e-4, every error within one test image. Measured here (2026-12-02): the fused
kernels add in another order, 1e-7 after one step, which these tiny-batch networks grow to at most 9e-6 in the
weights after four (at lr 0.1 and six steps: 1.6e-3, which is why the test trains at 0.01) and to 6% in the
momentum buffers (sums of gradients; another member's slice would be off by more than 100%)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from helpers import FAST, history_without_timing, results, train_main
from omegaconf import OmegaConf

from cutmix_repro.config import compose
from cutmix_repro.engine.trainer import fit
from cutmix_repro.errors import ConfigError
from cutmix_repro.fusion import model as fusion
from cutmix_repro.fusion.groups import fusion_groups
from cutmix_repro.fusion.loop import fit_fused

DATA = ["dataset=synthetic", "dataset.train_size=32", "dataset.test_size=32", "dataset.image_size=16",
        "trainer.epochs=2", "trainer.batch_size=16", "trainer.lr=0.01", *FAST,
        "trainer.channels_last=false"]  # solo and fused in one layout (auto may pick channels_last for the solo run)
MODELS = {"pyramidnet-shakedrop": ["model=pyramidnet", "model.depth=14", "model.alpha=12", "model.bottleneck=false",
                                   "model.shakedrop=true"],
          "resnet": ["model=cifar_resnet", "model.depth=8", "model.bottleneck=false"],
          # the paper's PyramidNet-110/200 and ResNet-110 have bottleneck blocks: the same, small
          "pyramidnet-bottleneck": ["model=pyramidnet", "model.depth=11", "model.alpha=12", "model.bottleneck=true"],
          "resnet-bottleneck": ["model=cifar_resnet", "model.depth=11", "model.bottleneck=true"],
          # the FMix paper's Fashion-MNIST model (pre-activation blocks, four stages), narrow
          "preact-resnet18": ["model=preact_resnet18", "model.width=8"],
          # stochastic depth and DropBlock (timm's, drawing from the default generator: each member's swapped in)
          "resnet-drop-path-dropblock": ["model=cifar_resnet", "model.depth=8", "model.bottleneck=false",
                                         "model.drop_path_rate=0.5", "model.dropblock=true"]}
MEMBERS = [["regularizer=baseline", "seed=0"], ["regularizer=cutmix", "seed=1", "label_smoothing=0.1"],
           ["regularizer=mixup", "seed=2"]]


def configs(model: str, members=MEMBERS, extra=()):
    return [compose([*DATA, *MODELS[model], *m, *extra]) for m in members]


def assert_equal_to_solo(fused_dir, solo_dir):
    a = torch.load(fused_dir / "last.pt", weights_only=True)
    b = torch.load(solo_dir / "last.pt", weights_only=True)
    assert a["model"].keys() == b["model"].keys()
    for key, value in a["model"].items():  # weights and BatchNorm statistics (num_batches_tracked exactly)
        assert torch.allclose(value.double(), b["model"][key].double(), rtol=1e-3, atol=1e-4), key
    assert a["optimizer"]["param_groups"] == b["optimizer"]["param_groups"]
    for index, state in b["optimizer"]["state"].items():  # sums of gradients, more sensitive: up to 6% measured
        mine, theirs = a["optimizer"]["state"][index]["momentum_buffer"], state["momentum_buffer"]  # (another
        assert float((mine - theirs).norm()) <= 0.25 * float(theirs.norm()) + 1e-6, index  # member's: > 100%)
    ra, rb = results(fused_dir), results(solo_dir)
    for ea, eb in zip(ra["history"], rb["history"], strict=True):
        for field in ("train_loss", "val_loss"):
            assert ea[field] == pytest.approx(eb[field], rel=1e-4), field
        for field in ("train_top1_err", "val_top1_err", "val_top5_err"):
            assert abs(ea[field] - eb[field]) <= 100 / 32 + 1e-9, field  # one test image at most
    assert ra["best_epoch"] == rb["best_epoch"] or abs(ra["best_top1_err"] - rb["best_top1_err"]) <= 100 / 32
    assert torch.load(fused_dir / "best.pt", weights_only=True)["epoch"] == ra["best_epoch"]


@pytest.mark.parametrize("model", list(MODELS))
def test_three_fused_members_end_where_their_solo_runs_end(model, tmp_path):
    cfgs = configs(model)
    solo = [tmp_path / f"solo{i}" for i in range(3)]
    for cfg, run in zip(cfgs, solo):
        fit(cfg, run)
    fused = [tmp_path / f"fused{i}" for i in range(3)]
    outcomes = fit_fused(cfgs, fused)
    for i, (f, s) in enumerate(zip(fused, solo)):
        assert outcomes[i]["status"] == "finished"
        assert_equal_to_solo(f, s)
        record = results(f)
        assert record["fused_group_size"] == 3 and sorted(record["fused_with"]) == sorted(str(d) for d in fused
                                                                                          if d != f)
        # the layout of a solo run: the same files, the same keys in results.json and in the checkpoints
        assert {p.name for p in f.iterdir()} == {p.name for p in s.iterdir()} | {"train.log"}  # (Hydra's, solo)
        assert set(record) - {"fused_with", "fused_group_size"} == set(results(s))
        keys = [torch.load(d / "last.pt", weights_only=True).keys() for d in (f, s)]
        assert keys[0] == keys[1]
        assert "epoch 2 |" in (f / "train.log").read_text()


def test_a_member_with_another_members_random_stream_or_shared_batchnorm_statistics_is_caught(tmp_path,
                                                                                                monkeypatch):
    """The premise of the test above holds only if the members are kept apart: one member drawing ShakeDrop's
    numbers from another's generator, or BatchNorm pooling the members' statistics, must not pass."""
    cfgs = configs("pyramidnet-shakedrop", MEMBERS[:2])
    solo = tmp_path / "solo1"
    fit(cfgs[1], solo)
    real = fusion.FusedShakeDrop.forward

    def first_members_stream(self, x):  # member 1 draws from member 0's generator
        if not self.training:
            return real(self, x)
        gens = [r.device_generator for r in self.rngs]
        return fusion._FusedShakeDropFunction.apply(x, self.survival, [gens[0]] * len(gens))

    monkeypatch.setattr(fusion.FusedShakeDrop, "forward", first_members_stream)
    fit_fused(cfgs, [tmp_path / "a0", tmp_path / "a1"])
    with pytest.raises(AssertionError):
        assert_equal_to_solo(tmp_path / "a1", solo)
    monkeypatch.undo()

    def pooled(self, x):  # each channel's statistics over both members' batches at once
        if not self.training:
            return torch.nn.BatchNorm2d.forward(self, x)
        n, kc, h, w = x.shape
        v = x.view(n, 2, kc // 2, h, w)
        mean, var = v.mean((0, 1, 3, 4), keepdim=True), v.var((0, 1, 3, 4), unbiased=False, keepdim=True)
        out = ((v - mean) / torch.sqrt(var + self.eps)).view(n, kc, h, w)
        return out * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    monkeypatch.setattr(fusion.FusedBatchNorm2d, "forward", pooled)
    fit_fused(cfgs, [tmp_path / "b0", tmp_path / "b1"])
    with pytest.raises(AssertionError):
        assert_equal_to_solo(tmp_path / "b1", solo)


# through the launcher ----------------------------------------------------------------------------------------
SWEEP = [*DATA, *MODELS["resnet"], "regularizer=baseline,cutmix,feature_cutmix", "seed=0,1", "hydra/launcher=fused",
         "fuse.max_members=3"]


def test_the_fused_launcher_groups_what_can_share_a_step_and_runs_the_rest_alone(tmp_path, monkeypatch, capfd):
    import cutmix_repro.train as train_module

    clock = {"t": 1.8e9}

    def ticking():  # every call five seconds later: a sweep's jobs still land in one folder
        clock["t"] += 5.0
        return clock["t"]

    monkeypatch.setattr(train_module.time, "time", ticking)
    monkeypatch.chdir(tmp_path)
    status, err = train_main(["-m", *SWEEP], monkeypatch)
    assert status == 0, err
    out = capfd.readouterr().out
    (sweep,) = (tmp_path / "runs" / "multirun").iterdir()
    runs = {p.name: p for p in sweep.iterdir() if p.is_dir()}
    assert set(runs) == {f"regularizer={r},seed={s}" for r in ("baseline", "cutmix", "feature_cutmix") for s in (0, 1)}
    sizes = {name: results(run).get("fused_group_size") for name, run in runs.items()}
    assert sorted(v for v in sizes.values() if v) == [1, 3, 3, 3] or sorted(filter(None, sizes.values())) == [3, 3, 3]
    assert sizes["regularizer=feature_cutmix,seed=0"] is None and sizes["regularizer=feature_cutmix,seed=1"] is None
    assert out.count("alone (feature-level mixing mixes inside the network") == 2
    for name, run in runs.items():  # a solo job's directory, whichever way it trained
        assert {".hydra", "train.log", "tb", "results.json", "last.pt", "best.pt"} <= {p.name for p in run.iterdir()}
        own = name.split(",")[0].split("=")[1]  # its own config choices, not another member's
        hydra_yaml = OmegaConf.load(run / ".hydra" / "hydra.yaml")
        assert hydra_yaml.hydra.runtime.choices.regularizer == own and results(run)["regularizer"] == own, name
        assert (run / ".hydra" / "config.yaml").is_file() and "epoch 2 |" in (run / "train.log").read_text()
        assert results(run)["status"] == "finished" and results(run)["epochs_done"] == 2
    cfg = compose([*DATA, *MODELS["resnet"], "regularizer=cutmix", "seed=1"])
    fit(cfg, tmp_path / "solo")
    assert_equal_to_solo(runs["regularizer=cutmix,seed=1"], tmp_path / "solo")


# what a member may have of its own: one sample each (a key added to MEMBER_KEYS needs one here, and must pass)
MEMBER_SAMPLES = {"seed": ["seed=3"], "regularizer": ["regularizer=mixup"], "label_smoothing": ["label_smoothing=0.1"],
                  "cutmix_prob": ["cutmix_prob=0.5"], "cutout_size": ["regularizer=cutout", "cutout_size=8"],
                  "logger": ["logger=[]"], "fuse": ["fuse.max_members=4"], "trainer.resume": ["trainer.resume=true"],
                  "trainer.overwrite": ["trainer.overwrite=true"], "trainer.progress": ["trainer.progress=true"]}


def test_every_key_a_member_may_have_of_its_own_fuses_and_trains_as_its_solo_run(tmp_path):
    """``MEMBER_KEYS`` is a promise: runs that differ in one of them share a group, and each member then trains as
    its solo run. A key the fused step does not keep per member (the learning rate: the group steps at one
    schedule) breaks it, and so does an lr sweep that fuses."""
    from cutmix_repro.fusion.groups import MEMBER_KEYS

    assert set(MEMBER_KEYS) == set(MEMBER_SAMPLES), "every member key needs a sample here"
    base = [*DATA, *MODELS["resnet"]]
    cfgs = [compose(base)] + [compose([*base, *MEMBER_SAMPLES[key]]) for key in MEMBER_KEYS]
    for key, cfg in zip(MEMBER_KEYS, cfgs[1:]):
        assert fusion_groups([cfgs[0], cfg], 8) == ([[0, 1]], {}), key
    for lr_sweep in (["trainer.lr=0.02"], ["optimizer.lr=0.02"]):  # another lr: another group
        assert fusion_groups([cfgs[0], compose([*base, *lr_sweep])], 8) == ([[0], [1]], {}), lr_sweep
    outcomes = fit_fused(cfgs, [tmp_path / f"fused{i}" for i in range(len(cfgs))])
    assert [o["status"] for o in outcomes] == ["finished"] * len(cfgs)
    for i, cfg in enumerate(cfgs):
        fit(cfg, tmp_path / f"solo{i}")
        assert_equal_to_solo(tmp_path / f"fused{i}", tmp_path / f"solo{i}")


@pytest.mark.parametrize("bad, needle", [("fuse.max_members=0", "fuse.max_members=0 is invalid"),
                                         ("fuse.max_members=1.5", "fuse.max_members=1.5 is invalid")])
def test_bad_fuse_input_is_one_line_and_writes_nothing(bad, needle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, err = train_main(["-m", *SWEEP, bad], monkeypatch)
    assert status == 2 and len(err.strip().splitlines()) == 1 and needle in err, err
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match="cannot train as one model"):
        fit_fused([compose([*DATA, *MODELS["resnet"]]), compose([*DATA, *MODELS["resnet"], "trainer.lr=0.5"])],
                  [tmp_path / "a", tmp_path / "b"])
    assert list(tmp_path.iterdir()) == []


def test_grouping_by_what_the_members_share():
    base = [*DATA, *MODELS["resnet"]]
    cfgs = [compose([*base, "regularizer=cutmix", "seed=0"]),                    # 0
            compose([*base, "regularizer=mixup", "label_smoothing=0.1"]),        # 1: fuses with 0
            compose([*base, "regularizer=cutmix", "regularizer.alpha=0.5"]),     # 2: fuses with 0 (α)
            compose([*base, "trainer.lr=0.05"]),                                 # 3: another lr
            compose([*base, "regularizer=feature_cutmix"]),                      # 4: alone
            compose([*DATA, "model=resnet50", "dataset.image_size=32"]),         # 5: alone (timm)
            compose([*base, "trainer.ema_decay=0.99"]),                          # 6: alone (EMA)
            compose([*base, "seed=5"])]                                          # 7: fuses with 0
    groups, alone = fusion_groups(cfgs, 3)
    assert sorted(alone) == [4, 5, 6]
    assert "feature-level" in alone[4] and "TimmResNet" in alone[5] and "trainer.ema_decay" in alone[6]
    assert [0, 1, 2] in groups and [7] in groups and [3] in groups  # at most 3 together, in order
    with pytest.raises(ConfigError, match="fuse.max_members=0 is invalid"):
        fusion_groups(cfgs, 0)


def test_a_group_too_large_for_the_memory_is_split_not_crashed(tmp_path, monkeypatch):
    """Three members whose fused step "does not fit" (a memory error for more than two members at once) train
    as a group of two and one, each as its solo run."""
    real = fusion.FusedConv2d.forward

    def tight_memory(self, x):
        if self.members > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(self, x)

    monkeypatch.setattr(fusion.FusedConv2d, "forward", tight_memory)
    cfgs = configs("resnet")
    outcomes = fit_fused(cfgs, [tmp_path / f"fused{i}" for i in range(3)])
    assert [o["status"] for o in outcomes] == ["finished"] * 3
    assert [results(tmp_path / f"fused{i}")["fused_group_size"] for i in range(3)] == [2, 2, 1]
    assert "do not fit in cpu's memory together: split into 2 and 1" in (tmp_path / "fused0" / "train.log").read_text()
    fit(cfgs[2], tmp_path / "solo2")
    assert_equal_to_solo(tmp_path / "fused2", tmp_path / "solo2")
    assert [s for s, _ in __import__("helpers").scalars(tmp_path / "fused0", "val/top1_err")] == [1, 2]


# stops, kills and resumes --------------------------------------------------------------------------------------
class StopAfter:
    """A StopRequest asked to stop after ``n`` checks (one per step)."""

    def __init__(self, n: int):
        self.n, self.name = n, "SIGTERM"

    def install(self):
        return self

    def restore(self):
        pass

    def hand_over(self):  # no handler was there before (a plain SIGTERM)
        pass

    @property
    def requested(self) -> bool:
        self.n -= 1
        return self.n < 0


def weights_and_history(run):
    state = torch.load(run / "last.pt", weights_only=True)
    return state["model"], history_without_timing(results(run)["history"])


def assert_identical(run, reference):
    (wa, ha), (wb, hb) = weights_and_history(run), weights_and_history(reference)
    assert all(torch.equal(wa[k], wb[k]) for k in wb), "weights differ from the run never stopped"
    assert ha == hb


def resume_and_compare(cfgs, runs, root):
    """Resume the fused group in ``runs``; every member ends bit-identical to the reference's (``root``)."""
    resumed = [c.copy() for c in cfgs]
    for c in resumed:
        c.trainer.resume = True
    fit_fused(resumed, runs)
    for run, ref in zip(runs, (root / "m0", root / "m1")):
        assert_identical(run, ref)
    return resumed


@pytest.fixture(scope="module")
def fused_reference(tmp_path_factory):
    """Two members (ShakeDrop PyramidNet) fused, never stopped: 3 epochs of 2 steps."""
    root = tmp_path_factory.mktemp("fused_reference")
    cfgs = configs("pyramidnet-shakedrop", MEMBERS[1:], ["trainer.epochs=3"])
    fit_fused(cfgs, [root / "m0", root / "m1"])
    return root, cfgs


def test_a_stopped_fused_job_resumes_bit_identically_and_a_member_resumed_alone_goes_on_solo(
        fused_reference, tmp_path, monkeypatch):
    import cutmix_repro.fusion.loop as fused_module

    root, cfgs = fused_reference
    runs = [tmp_path / "m0", tmp_path / "m1"]
    monkeypatch.setattr(fused_module, "StopRequest", lambda: StopAfter(2))  # after step 1 of epoch 2
    outcomes = fit_fused(cfgs, runs)
    assert [o["status"] for o in outcomes] == ["interrupted"] * 2
    assert [torch.load(r / "last.pt", weights_only=True)["step"] for r in runs] == [1, 1]
    alone = tmp_path / "alone"  # member 1's run copied, resumed as a solo run
    __import__("shutil").copytree(runs[1], alone)
    monkeypatch.undo()
    resumed = resume_and_compare(cfgs, runs, root)
    for run in runs:
        assert [s for s, _ in __import__("helpers").scalars(run, "val/top1_err")] == [1, 2, 3]
    solo = fit(resumed[1], alone)
    assert solo["status"] == "finished" and solo["epochs_done"] == 3 and len(solo["history"]) == 3
    assert_equal_to_solo(alone, root / "m1")


class Killed(BaseException):
    """A kill where the test puts it (not an Exception: nothing catches it on the way out)."""


def kill_at_staged_rename(monkeypatch, n: int) -> None:
    """The ``n``-th rename of a staged file raises ``Killed``: a kill between a group commit's renames."""
    from cutmix_repro.engine import checkpoint

    calls, real = {"n": 0}, checkpoint.os.replace

    def dying(a, b):
        calls["n"] += str(a).endswith(checkpoint.STAGED)
        if str(a).endswith(checkpoint.STAGED) and calls["n"] == n:
            raise Killed()
        return real(a, b)

    monkeypatch.setattr(checkpoint.os, "replace", dying)


@pytest.mark.parametrize("moment", ["before the journal", "between the renames"])
def test_a_kill_while_the_group_writes_its_checkpoints_leaves_every_member_at_one_place(
        moment, fused_reference, tmp_path, monkeypatch):
    """Killed while the members' end-of-epoch files are replaced: before the journal the old ones stand, after it
    the next start finishes the renames; either way the group resumes whole and ends bit-identical."""
    from cutmix_repro.engine import checkpoint

    root, cfgs = fused_reference
    runs = [tmp_path / "m0", tmp_path / "m1"]
    if moment == "before the journal":
        real = checkpoint.write_json

        def dying(path, data):
            if str(path).endswith(checkpoint.COMMIT_JOURNAL) and results_epochs(runs) == 1:
                raise Killed()
            return real(path, data)

        monkeypatch.setattr(checkpoint, "write_json", dying)
    else:
        kill_at_staged_rename(monkeypatch, 9)  # epoch 2's third rename (epoch 1 has six)
    with pytest.raises(Killed):
        fit_fused(cfgs, runs)
    monkeypatch.undo()
    epochs = [torch.load(r / "last.pt", weights_only=True)["epoch"] for r in runs]
    assert len(set(epochs)) == (1 if moment == "before the journal" else 2)  # mid-rename they disagree on disk
    resume_and_compare(cfgs, runs, root)
    for run in runs:
        assert not list(run.glob("*.next")) and not (run / checkpoint.COMMIT_JOURNAL).exists()


def test_a_member_resumed_alone_after_a_kill_mid_commit_finishes_the_groups_commit(fused_reference, tmp_path,
                                                                                     monkeypatch):
    """Killed between the renames of epoch 2's commit, then member 1 alone resumed as a solo run: its start
    finishes the group's commit (member 0's files too), leaves nothing staged, and it goes on as its solo run."""
    from cutmix_repro.engine import checkpoint

    root, cfgs = fused_reference
    runs = [tmp_path / "m0", tmp_path / "m1"]
    kill_at_staged_rename(monkeypatch, 8)  # epoch 2's second rename (epoch 1 has six)
    with pytest.raises(Killed):
        fit_fused(cfgs, runs)
    monkeypatch.undo()
    assert (runs[0] / checkpoint.COMMIT_JOURNAL).exists() and list(runs[1].glob("*.next"))
    alone = cfgs[1].copy()
    alone.trainer.resume = True
    assert fit(alone, runs[1])["status"] == "finished"
    assert torch.load(runs[0] / "last.pt", weights_only=True)["epoch"] == 2, "member 0's commit finished too"
    for run in runs:
        assert not list(run.glob("*.next")) and not (run / checkpoint.COMMIT_JOURNAL).exists()
    assert_equal_to_solo(runs[1], root / "m1")


def results_epochs(runs) -> int:
    found = [results(r)["epochs_done"] for r in runs if (r / "results.json").exists()]
    return min(found) if found else 0


KILLED = ["dataset=synthetic", "dataset.train_size=512", "dataset.test_size=64", "dataset.image_size=16",
          "trainer.epochs=4", "trainer.batch_size=32", "trainer.lr=0.05", *FAST, *MODELS["pyramidnet-shakedrop"],
          "regularizer=cutmix,mixup", "hydra/launcher=fused"]


def start_fused(sweep, extra=()):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": os.environ.get("CUTMIX_TEST_THREADS", "2")}
    return subprocess.Popen([sys.executable, "-m", "cutmix_repro.train", "-m", *KILLED, *extra,
                             f"hydra.sweep.dir={sweep}"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_a_fused_job_killed_at_seeded_moments_and_resumed_ends_like_one_never_stopped(tmp_path):
    reference = tmp_path / "reference"
    proc = start_fused(reference)
    assert proc.wait(timeout=300) == 0, proc.stdout.read()
    sweep, rng, kills = tmp_path / "sweep", random.Random(77), 0
    for _ in range(2):  # the seeded draws: kills 1.96 s and 0.92 s into a job that trains for ~2.8 s here
        proc = start_fused(sweep, ["trainer.resume=true"])
        log = sweep / "regularizer=cutmix" / "train.log"
        deadline = time.time() + 300
        while proc.poll() is None and time.time() < deadline and not (log.exists() and "trained as one model"
                                                                        in log.read_text()):
            time.sleep(0.05)
        time.sleep(0.2 + rng.uniform(0.0, 2.2))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=300)
    assert kills >= 1, "the test must actually kill the job mid-training"
    final = start_fused(sweep, ["trainer.resume=true"])
    assert final.wait(timeout=300) == 0, final.stdout.read()
    for name in ("regularizer=cutmix", "regularizer=mixup"):
        assert results(sweep / name)["status"] == "finished" and results(sweep / name)["fused_group_size"] == 2
        assert_identical(sweep / name, reference / name)
        assert [s for s, _ in __import__("helpers").scalars(sweep / name, "val/top1_err")] == [1, 2, 3, 4]
        assert not list((sweep / name).glob("*.next")) and not list((sweep / name).glob(".*.tmp"))


def test_reproduce_fuse_launches_through_the_fused_launcher_and_estimates_from_a_fused_rate(tmp_path, monkeypatch,
                                                                                            capsys):
    from cutmix_repro import reproduce

    path = tmp_path / "throughput.json"
    path.write_text(json.dumps([
        {"model": "pyramidnet200", "data": "cifar", "device": "NVIDIA H200", "date": "2026-12-01",
         "images_per_s": 1000.0, "mode": "eager"},
        {"model": "pyramidnet200", "data": "cifar", "device": "NVIDIA H200", "date": "2026-12-03",
         "images_per_s": 3000.0, "mode": "fused", "members": 2},
        {"model": "pyramidnet200", "data": "cifar", "device": "NVIDIA H200", "date": "2026-12-03",
         "images_per_s": 6000.0, "mode": "fused", "members": 8}]))
    monkeypatch.setenv("CUTMIX_THROUGHPUT", str(path))
    assert reproduce.main(["table7", "--fuse", "--dry-run"]) == 0  # CIFAR-10, PyramidNet-200: 5 rows × 3 seeds
    out = capsys.readouterr().out
    commands = [line for line in out.splitlines() if "cutmix_repro.train" in line]
    assert len(commands) == 5 and all("hydra/launcher=fused" in c for c in commands)
    # a row's three seeds fuse as a group of 3: the measured group of 2 (not 8) is the rate that applies
    assert "fused, 2 members, aggregate 3000 img/s" in out
    assert f"estimate: {15 * 300 * 50_000 / 3000 / 3600:.1f} GPU-hours" in out
    assert reproduce.main(["table7", "--dry-run"]) == 0
    solo = capsys.readouterr().out
    assert "hydra/launcher=fused" not in solo and f"estimate: {15 * 300 * 50_000 / 1000 / 3600:.1f} GPU-hours" in solo


# the group's commit journal -------------------------------------------------------------------------------------
def _epoch(path):
    return json.loads(path.read_text())["epoch"] if path.exists() else None


def test_a_commit_leaves_no_journal_behind_and_an_old_journal_never_moves_a_later_commits_files(tmp_path,
                                                                                                monkeypatch):
    """Member a diverged and stages nothing from epoch 2 on: the journal still leaves its folder. A journal that
    outlived its commit (an older version's) and a later commit killed before its journals: the replay moves
    nothing of the later commit, so both members stay at the last committed epoch."""
    from cutmix_repro.engine import checkpoint
    from cutmix_repro.engine.checkpoint import COMMIT_JOURNAL, GroupCommit, recover_group_commit

    a, b = tmp_path / "a", tmp_path / "b"
    journals = []
    real = checkpoint.write_json
    monkeypatch.setattr(checkpoint, "write_json",
                        lambda path, data: (journals.append(data) if str(path).endswith(COMMIT_JOURNAL) else None,
                                            real(path, data))[1])
    commit = GroupCommit([a, b])
    for epoch in (1, 2):
        for member in ((a, b) if epoch == 1 else (b,)):
            commit.write_json(member / "last.json", {"epoch": epoch})
        commit.commit()
        assert not (a / COMMIT_JOURNAL).exists() and not (b / COMMIT_JOURNAL).exists(), epoch
    real(a / COMMIT_JOURNAL, journals[-1])  # epoch 2's journal, outliving its commit in a
    for member in (a, b):  # epoch 3 staged in both, killed before its journal
        commit.write_json(member / "last.json", {"epoch": 3})
    recover_group_commit(a)
    recover_group_commit(b)
    assert (_epoch(a / "last.json"), _epoch(b / "last.json")) == (1, 2)
    assert not list(tmp_path.rglob("*.next")) and not list(tmp_path.rglob(COMMIT_JOURNAL))


@pytest.mark.parametrize("killed", ["between the journals", "between the renames"])
@pytest.mark.parametrize("first", ["a", "b"])
def test_whichever_member_starts_first_after_a_kill_mid_commit_the_members_agree(killed, first, tmp_path,
                                                                               monkeypatch):
    """A kill after the first member's journal but before the last leaves the commit undone, after the last
    journal it is finished: whichever member's start (the group's, or one resumed alone) comes first."""
    from cutmix_repro.engine import checkpoint
    from cutmix_repro.engine.checkpoint import COMMIT_JOURNAL, GroupCommit, recover_group_commit

    a, b = tmp_path / "a", tmp_path / "b"
    commit = GroupCommit([a, b])
    for member in (a, b):
        commit.write_json(member / "last.json", {"epoch": 1})
    commit.commit()
    counts = {"journal": 0, "rename": 0}
    real_write, real_replace = checkpoint.write_json, checkpoint.os.replace

    def write(path, data):
        if str(path).endswith(COMMIT_JOURNAL):
            counts["journal"] += 1
            if killed == "between the journals" and counts["journal"] == 2:
                raise Killed()
        return real_write(path, data)

    def replace(src, dst):
        if str(src).endswith(checkpoint.STAGED):
            counts["rename"] += 1
            if killed == "between the renames" and counts["rename"] == 2:
                raise Killed()
        return real_replace(src, dst)

    monkeypatch.setattr(checkpoint, "write_json", write)
    monkeypatch.setattr(checkpoint.os, "replace", replace)
    for member in (a, b):
        commit.write_json(member / "last.json", {"epoch": 2})
    with pytest.raises(Killed):
        commit.commit()
    monkeypatch.undo()
    for member in ((a, b) if first == "a" else (b, a)):
        recover_group_commit(member)
    expected = 1 if killed == "between the journals" else 2
    assert (_epoch(a / "last.json"), _epoch(b / "last.json")) == (expected, expected)
    assert not list(tmp_path.rglob("*.next")) and not list(tmp_path.rglob(COMMIT_JOURNAL))


# preemption and divergence: a group as a solo run ----------------------------------------------------------------
REQUEUED = [*DATA, *MODELS["resnet"], "dataset.train_size=64", "trainer.epochs=2"]


@pytest.mark.parametrize("how", ["solo", "fused"])
def test_a_preempted_job_checkpoints_then_hands_the_signal_to_the_requeue_handler_and_resumes(
        how, tmp_path, monkeypatch):
    """SIGUSR2 mid-epoch with a handler already installed (submitit's requeue): the run checkpoints where it is,
    then calls that handler; the launcher starts no further job; the requeued job resumes to the end."""
    from cutmix_repro.regularizers import base

    calls, seen = [], {"n": 0}
    sweep = tmp_path / "sweep"
    if how == "solo":
        args, runs = [*REQUEUED, "regularizer=baseline", f"hydra.run.dir={sweep / 'solo'}"], [sweep / "solo"]
    else:  # a fused group of two, then a job that runs alone (feature-level mixing): it must not start
        args = ["-m", *REQUEUED, "regularizer=baseline,cutmix,feature_cutmix", "hydra/launcher=fused",
                f"hydra.sweep.dir={sweep}", "hydra.sweep.subdir=${hydra.job.num}"]
        runs = [sweep / "0", sweep / "1"]
    real = base.Baseline.__call__

    def preempted_at_step_2(self, x, y):
        seen["n"] += 1
        if seen["n"] == 2:
            os.kill(os.getpid(), signal.SIGUSR2)
        return real(self, x, y)

    def requeue(signum, frame):  # what submitit's handler would do: requeue the job (here: note the moment)
        calls.append([(run / "last.pt").exists() and results(run)["status"] for run in runs])

    monkeypatch.setattr(base.Baseline, "__call__", preempted_at_step_2)
    previous = signal.signal(signal.SIGUSR2, requeue)
    try:
        status, err = train_main(args, monkeypatch)
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert status == 0, err
    assert calls == [["interrupted"] * len(runs)], "checkpointed first, then handed over once"
    for run in runs:
        state = torch.load(run / "last.pt", weights_only=True)
        assert (state["epoch"], state["step"]) == (0, 2)
    assert not (sweep / "2").exists(), "no further job starts after a preemption"
    monkeypatch.undo()
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")  # the requeued job
    status, err = train_main(args, monkeypatch)
    assert status == 0, err
    for run in runs:
        assert results(run)["status"] == "finished" and [h["epoch"] for h in results(run)["history"]] == [1, 2]


def test_a_group_whose_members_all_diverged_stops_at_once(tmp_path, monkeypatch):
    """Every member's loss NaN from the first step: the group stops at the first check (trainer.log_interval),
    as a solo run does, instead of training on to its last epoch."""
    import cutmix_repro.fusion.loop as fused_module
    import cutmix_repro.fusion.step as step_module

    real_loss, real_step, steps = step_module.loss_function, fused_module.fused_step, {"n": 0}
    monkeypatch.setattr(step_module, "loss_function",
                        lambda name: lambda *a: real_loss(name)(*a) * float("nan"))

    def counted(*a, **k):
        steps["n"] += 1
        return real_step(*a, **k)

    monkeypatch.setattr(fused_module, "fused_step", counted)
    cfgs = configs("resnet", MEMBERS[:2], ["dataset.train_size=64", "trainer.epochs=3", "trainer.log_interval=2"])
    outcomes = fit_fused(cfgs, [tmp_path / "m0", tmp_path / "m1"])
    assert steps["n"] == 2, "stopped at the first check, not after 3 epochs of 4 steps"
    for i, outcome in enumerate(outcomes):
        assert isinstance(outcome, str) and "NaN or infinite at epoch 1, step 1" in outcome
        assert results(tmp_path / f"m{i}")["status"] == "diverged"
