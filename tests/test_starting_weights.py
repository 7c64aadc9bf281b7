"""Every weights file a user brings to ``init_from`` loads, through the commands users run: the localization
models of appendix B (``train +experiment=cub_resnet50_wsol``), Table 10's transfer, and Figure 1's
``--weights``. Each file is written here the way its producer writes it:

- torchvision's file in torch hub's cache, as released before PyTorch 0.4.1: no BatchNorm ``num_batches_tracked``
  and no ``_metadata`` (torchvision's first ResNet and VGG files);
- the authors' release (clovaai/CutMix-PyTorch ``train.py``'s ``save_checkpoint``): ``epoch``, ``arch``,
  ``state_dict`` of a DataParallel model (``module.`` keys), ``best_err1``, ``best_err5``, ``optimizer``;
- a plain state dict saved from a DataParallel model by a tool that drops the counters;
- a run directory of ours (``best.pt``) and a ``.safetensors`` file.
A weight that is really missing or misshapen is one line naming it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from fakedata import write_cub, write_vocdevkit
from helpers import train_main

from cutmix_repro.errors import ConfigError
from cutmix_repro.models import create_model
from cutmix_repro.models.pretrained import read_starting_weights, torchvision_file

FORMATS = ("torchvision", "authors", "dataparallel", "ours", "safetensors")


def without_counters(state: dict) -> dict:
    """A plain dict (no ``_metadata``) without ``num_batches_tracked``: how files before PyTorch 0.4.1 look."""
    return {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}


def write_weights(form: str, reference: dict, folder: Path, model_name: str, torch_home: Path) -> str:
    """The file (or run folder) of ``reference`` (a torchvision-named state dict) as ``form``'s producer writes
    it; the ``init_from`` value that names it."""
    folder.mkdir(parents=True, exist_ok=True)
    if form == "torchvision":
        path = torch_home / "hub" / "checkpoints" / torchvision_file(model_name)[0].name
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(without_counters(reference), path)
        return "torchvision"
    if form == "authors":
        net = torch.nn.Linear(2, 2)  # the optimizer's state as theirs: SGD with momentum buffers
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        net(torch.ones(1, 2)).sum().backward()
        optimizer.step()
        path = folder / "model_best.pth.tar"
        torch.save({"epoch": 300, "arch": "resnet", "best_err1": 21.4, "best_err5": 5.92,
                    "state_dict": {f"module.{k}": v for k, v in reference.items()},
                    "optimizer": optimizer.state_dict()}, path)
        return str(path)
    if form == "dataparallel":
        path = folder / "exported.pth"
        torch.save({f"module.{k}": v for k, v in without_counters(reference).items()}, path)
        return str(path)
    if form == "ours":
        from cutmix_repro.engine.checkpoint import save_checkpoint

        save_checkpoint(folder / "run" / "best.pt", {"model": {f"net.{k}": v for k, v in reference.items()},
                                                      "meta": {"model": model_name, "dataset": "imagenet"}})
        return str(folder / "run")
    if form == "safetensors":
        from safetensors.torch import save_file

        path = folder / "weights.safetensors"
        save_file({k: v.contiguous() for k, v in reference.items()}, str(path))
        return str(path)
    raise ValueError(form)


def assert_loaded(loaded: dict, reference: dict, skip: str = "fc.") -> None:
    checked = 0
    for key, value in reference.items():
        if key.startswith(skip) or key.endswith("num_batches_tracked"):
            continue
        assert torch.equal(loaded[key], value), key
        checked += 1
    assert checked > 0


@pytest.fixture(scope="module")
def resnet18_reference():
    torch.manual_seed(3)
    model = torchvision.models.resnet18(weights=None)
    for module in model.modules():  # statistics unlike a fresh model's, so that loading them shows
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    return model.state_dict()


# the reader and the localization models ---------------------------------------------------------------------
@pytest.mark.parametrize("form", FORMATS)
def test_a_localization_model_starts_from_every_format(form, resnet18_reference, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    init_from = write_weights(form, resnet18_reference, tmp_path / "files", "resnet18", tmp_path / "torch")
    model = create_model("resnet50_wsol", 7, variant="resnet18", init_from=init_from)
    assert_loaded(model.net.state_dict(), resnet18_reference)
    assert model.net.fc.weight.shape == (7, 512), "a new classifier for the data set's classes"
    weights = read_starting_weights(init_from, "resnet18")
    assert not any(k.startswith(("module.", "net.")) for k in weights.state)
    if form == "authors":
        assert weights.top1_err == 21.4 and weights.form == "authors"


def test_vgg_gap_takes_torchvisions_old_file_and_a_dataparallel_state_dict(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in torchvision.models.vgg16(weights=None).state_dict().items()}
    torch.manual_seed(0)  # its convolutions, and its fully connected layers' keys and shapes (stored as one zero)
    reference = {k: torch.randn(shape) if k.startswith("features.") else torch.zeros(1).expand(shape)
                 for k, shape in shapes.items()}
    for form in ("torchvision", "dataparallel"):
        init_from = write_weights(form, reference, tmp_path / form, "vgg16", tmp_path / "torch")
        gap = create_model("vgg_gap", 10, width=16, init_from=init_from)
        assert torch.equal(gap.stages[3][4].weight, reference["features.28.weight"])
        assert torch.equal(gap.stem[0].bias, reference["features.0.bias"])
        assert gap.stages[3][6].weight.shape == (16, 512, 3, 3)  # the new 3×3 convolution, fresh


@pytest.mark.parametrize("defect, needle", [
    ("missing", "it has no weight layer2.0.conv1.weight"),
    ("misshapen", r"its weight conv1.weight is \(64, 3, 3, 3\), where this model's is \(64, 3, 7, 7\)"),
    ("deeper", r"its weight layer1.2.conv1.weight \(64, 64, 3, 3\) has no place in this model"),
])
def test_a_weight_really_missing_or_misshapen_is_named_in_one_line(defect, needle, resnet18_reference, tmp_path):
    state = without_counters(resnet18_reference)
    if defect == "missing":
        del state["layer2.0.conv1.weight"]
    elif defect == "misshapen":
        state["conv1.weight"] = torch.zeros(64, 3, 3, 3)
    else:
        state = without_counters(torchvision.models.resnet34(weights=None).state_dict())
    path = tmp_path / "bad.pth"
    torch.save({f"module.{k}": v for k, v in state.items()}, path)
    with pytest.raises(ConfigError, match=needle) as err:
        create_model("resnet50_wsol", 7, variant="resnet18", init_from=str(path))
    assert "\n" not in str(err.value) and str(err.value).startswith(f"model.init_from={str(path)!r} is invalid")


# through the commands users run -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cub_folder(tmp_path_factory):
    return write_cub(tmp_path_factory.mktemp("cub"))


@pytest.mark.parametrize("form", ["torchvision", "authors", "dataparallel"])
def test_train_cub_resnet50_wsol_starts_from_each_format(form, resnet18_reference, cub_folder, tmp_path, monkeypatch):
    """``+experiment=cub_resnet50_wsol`` (with ResNet-18's shapes, to keep it small) trains from each file: at a
    learning rate of 0 every weight of the saved run is the file's."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    init_from = write_weights(form, resnet18_reference, tmp_path / "files", "resnet18", tmp_path / "torch")
    run = tmp_path / "run"
    status, err = train_main(["+experiment=cub_resnet50_wsol", "model.variant=resnet18", f"model.init_from={init_from}",
                              f"dataset.root={cub_folder}", "dataset.image_size=32", "dataset.resize=36",
                              "dataset.num_workers=0", "trainer.epochs=1", "trainer.batch_size=6", "trainer.lr=0",
                              "trainer.progress=false", "trainer.device=cpu",
                              "trainer.tb_cams_every=0", f"hydra.run.dir={run}"], monkeypatch)
    assert status == 0, err
    saved = torch.load(run / "best.pt", weights_only=True)["model"]
    trained = {k.removeprefix("net."): v for k, v in saved.items() if "running_" not in k}
    assert_loaded(trained, {k: v for k, v in resnet18_reference.items() if "running_" not in k})


@pytest.fixture(scope="module")
def resnet50_reference():
    torch.manual_seed(5)
    return torchvision.models.resnet50(weights=None).state_dict()


@pytest.mark.parametrize("form", ["torchvision", "authors"])
def test_transfer_starts_from_each_format(form, resnet50_reference, tmp_path, monkeypatch):
    """A detection run from the files of the issue's reports: its frozen layers (conv1, layer1, every BatchNorm)
    are the file's. (The other formats reach the same reader: the next test.)"""
    from helpers import TINY_VOC, transfer_main

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    init_from = write_weights(form, resnet50_reference, tmp_path / "files", "resnet50", tmp_path / "torch")
    voc = tmp_path / "voc"
    write_vocdevkit(voc, {"2007": {"test": 2}})
    run = tmp_path / "run"
    status, err = transfer_main(["+task=voc_faster_rcnn", f"init_from={init_from}", f"task.data.root={voc}",
                                 "task.data.train=[2007-test]", *TINY_VOC, "task.recipes.short.iterations=1",
                                 "task.recipes.short.milestones=[1]", f"hydra.run.dir={run}"], monkeypatch)
    assert status == 0, err
    saved = torch.load(run / "last.pt", weights_only=True)["model"]
    assert torch.equal(saved["backbone.0.weight"], resnet50_reference["conv1.weight"])
    assert torch.equal(saved["backbone.4.2.conv3.weight"], resnet50_reference["layer1.2.conv3.weight"])
    assert torch.equal(saved["roi_heads.box_head.layer4.1.bn2.running_mean"],
                       resnet50_reference["layer4.1.bn2.running_mean"])


@pytest.mark.parametrize("form", ["dataparallel", "ours", "safetensors"])
def test_transfers_backbone_reader_takes_the_other_formats(form, resnet50_reference, tmp_path, monkeypatch):
    from cutmix_repro.transfer.backbone import load_backbone

    init_from = write_weights(form, resnet50_reference, tmp_path / "files", "resnet50", tmp_path / "torch")
    if form == "ours":  # a training checkpoint of ours says what it is: an ImageNet ResNet-50 run
        from omegaconf import OmegaConf

        from cutmix_repro.config import compose
        from cutmix_repro.engine.checkpoint import save_checkpoint

        saved = torch.load(Path(init_from) / "best.pt", weights_only=True)
        saved["config"] = OmegaConf.to_container(compose(["+experiment=imagenet_resnet50"]), resolve=True)
        save_checkpoint(Path(init_from) / "best.pt", saved)
    assert_loaded(load_backbone(init_from).state, resnet50_reference)


def test_figure1_weights_take_an_old_format_file(resnet50_reference, tmp_path):
    from cutmix_repro.figure1 import torchvision_resnet50

    path = tmp_path / "resnet50-19c8e357.pth"  # torchvision's first ResNet-50 release: no counters
    torch.save(without_counters(resnet50_reference), path)
    model, categories = torchvision_resnet50(str(path))
    assert_loaded(model.net.state_dict(), resnet50_reference, skip="-")  # the classifier too
    assert len(categories) == 1000



def test_a_run_directory_starts_from_its_best_epoch_not_its_last(tmp_path):
    """A run directory of ours gives ``best.pt`` (the epoch the paper's tables report) when it has one, and
    ``last.pt`` only when it has no ``best.pt``."""
    from cutmix_repro.engine.checkpoint import save_checkpoint

    run = tmp_path / "run"
    for name, value in (("best.pt", 1.0), ("last.pt", 2.0)):
        save_checkpoint(run / name, {"model": {"fc.weight": torch.full((2, 2), value)}, "meta": {}})
    loaded = read_starting_weights(str(run), "resnet50")
    assert loaded.path.name == "best.pt" and float(loaded.state["fc.weight"][0, 0]) == 1.0
    (run / "best.pt").unlink()
    loaded = read_starting_weights(str(run), "resnet50")
    assert loaded.path.name == "last.pt" and float(loaded.state["fc.weight"][0, 0]) == 2.0
