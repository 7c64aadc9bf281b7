"""Table 10's transfer (cutmix_repro.transfer): VOC and COCO captions read from files the tests write in the
real formats, detectors and the captioner built on a ResNet-50 checkpoint of ours, a few optimisation steps
whose loss falls, runs end to end with exact resume, and bad input refused in one line with nothing written."""

import json
import sys
from pathlib import Path

import pytest
import torch
from fakedata import write_coco_captions, write_vocdevkit
from helpers import TINY_VOC, needs, transfer_main
from omegaconf import OmegaConf

from cutmix_repro.config import build, compose
from cutmix_repro.engine.checkpoint import save_checkpoint


def our_run(folder: Path, experiment: str, regularizer: str, error: float, num_classes: int = 10,
            weights: bool = True) -> Path:
    """A training run folder of ours as train writes it: best.pt (model, meta, resolved config; left out with
    ``weights=False`` where only the records are read), results.json."""
    cfg = compose([f"+experiment={experiment}", f"regularizer={regularizer}"])
    torch.manual_seed(0)
    with torch.device("cpu" if weights else "meta"):
        model = build(cfg.model, "model", num_classes=num_classes)
    folder.mkdir(parents=True)
    meta = {"model": model.arch_name, "dataset": "imagenet", "num_classes": num_classes}
    if weights:
        save_checkpoint(folder / "best.pt", {"model": model.state_dict(), "meta": meta, "epoch": 300,
                                             "config": OmegaConf.to_container(cfg, resolve=True)})
    from cutmix_repro.config import params
    from cutmix_repro.paper import dataset_name

    record = {"status": "finished", "dataset": dataset_name(cfg), "model": model.arch_name,
              "model_target": cfg.model._target_, "model_options": params(cfg.model), "regularizer": regularizer,
              "regularizer_target": cfg.regularizer._target_, "regularizer_params": params(cfg.regularizer),
              "label_smoothing": cfg.label_smoothing, "best_top1_err": error}
    (folder / "results.json").write_text(json.dumps(record))
    return folder


@pytest.fixture(scope="session")
def transfer_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("transfer")
    return {"r50": our_run(root / "r50", "imagenet_resnet50", "cutmix", 21.4),
            "voc": root / "voc", "voc_objects": write_vocdevkit(root / "voc"),
            "coco": root / "coco", "captions": write_coco_captions(root / "coco"), "root": root}




# data ----------------------------------------------------------------------------------------------------
def test_voc_boxes_keep_difficult_flags_labels_and_continuous_coordinates(transfer_data):
    from cutmix_repro.data.voc import VOC_CLASSES, VOCBoxes

    written = transfer_data["voc_objects"]
    test = VOCBoxes(transfer_data["voc"], ["2007-test"], keep_difficult=True)
    train = VOCBoxes(transfer_data["voc"], ["2007-trainval", "2012-trainval"], keep_difficult=False)
    assert (len(test), len(train)) == (4, 10)
    difficult_seen = 0
    for dataset in (test, train):
        for index in range(len(dataset)):
            ann = dataset.target(index)
            year = "2007" if ann.image_id.startswith("2007") else "2012"
            objects = written[(year, ann.image_id.removesuffix(".jpg"))]
            assert ann.boxes.tolist() == [[x0 - 1, y0 - 1, x1, y1] for _, x0, y0, x1, y1, _ in objects]
            assert ann.labels.tolist() == [VOC_CLASSES.index(n) + 1 for n, *_ in objects]
            assert ann.difficult.tolist() == [bool(o[-1]) for o in objects]
            _, target = dataset[index]
            kept = len(objects) if dataset is test else sum(not o[-1] for o in objects)
            assert len(target["boxes"]) == kept  # training leaves difficult objects out, the test set keeps them
            difficult_seen += int(ann.difficult.sum())
    assert difficult_seen > 0
    # the pixels inside a box (the last drawn, on top) are its object's colour: boxes and images line up
    colours = {"cat": (220, 40, 40), "dog": (40, 200, 40), "car": (40, 40, 220), "person": (220, 220, 40)}
    for index in range(len(test)):
        image, target = test[index]
        x0, y0, x1, y1 = (int(v) for v in target["boxes"][-1])
        inside = image[:, y0 + 2:y1 - 2, x0 + 2:x1 - 2].float().mean((1, 2))
        colour = colours[VOC_CLASSES[int(target["labels"][-1]) - 1]]
        assert (inside - torch.tensor(colour)).abs().max() < 12, (index, inside, colour)


@pytest.mark.parametrize("kind", ["ssd", "faster_rcnn"])
def test_training_augmentation_keeps_boxes_labels_and_difficult_flags_together(kind, transfer_data):
    from cutmix_repro.data.voc import VOCBoxes, train_transform
    from cutmix_repro.transfer.detection import IMAGENET_MEAN

    data = VOCBoxes(transfer_data["voc"], ["2007-trainval"], keep_difficult=True,
                    transform=train_transform(kind, IMAGENET_MEAN))
    for index in range(len(data)):
        for seed in range(3):
            torch.manual_seed(seed)
            image, target = data[index]
            boxes = target["boxes"].as_subclass(torch.Tensor)
            h, w = image.shape[-2:]
            assert image.dtype == torch.float32 and 0 <= float(image.min()) and float(image.max()) <= 1
            assert len(boxes) == len(target["labels"]) == len(target["difficult"])
            if len(boxes):
                assert bool((boxes[:, 2:] > boxes[:, :2]).all()) and float(boxes.min()) >= 0
                assert float(boxes[:, 2].max()) <= w and float(boxes[:, 3].max()) <= h


def test_the_vocabulary_keeps_words_seen_at_least_five_times():
    """NIC's vocabulary: words seen 5 times or more (the threshold itself included), lower-cased."""
    from cutmix_repro.transfer.captioning import UNK, Vocabulary

    captions = ["A dog runs"] * 5 + ["a cat sits"] * 4 + ["Dog"] * 2 + ["six six six six six six"]
    vocab = Vocabulary(captions, 5)
    assert {"a", "dog", "runs", "six"} <= set(vocab.itos)  # 9, 7, 5 and 6 times
    assert "cat" not in vocab.itos and "sits" not in vocab.itos  # 4 times
    assert vocab.decode(vocab.encode("a cat runs")) == f"a {UNK} runs"
    assert set(Vocabulary(captions, 4).itos) >= {"cat", "sits"}


def test_coco_captions_vocabulary_and_references(transfer_data):
    needs("pycocotools")  # torchvision's CocoCaptions reads with it
    from cutmix_repro.data.coco_captions import Captions, transforms
    from cutmix_repro.transfer.captioning import UNK, Vocabulary

    train_tf, test_tf = transforms(32)
    train = Captions(transfer_data["coco"], "train2014", "annotations/captions_train2014.json", train_tf, True)
    test = Captions(transfer_data["coco"], "val2014", "annotations/captions_val2014.json", test_tf, False)
    assert (len(train), len(test)) == (8, 4)
    assert test.captions == transfer_data["captions"]["val2014"]
    image, caption = train[0]
    assert image.shape == (3, 32, 32) and caption in transfer_data["captions"]["train2014"][train.ids[0]]
    # words seen at least 5 times: "red" and "bus" (in every red caption of 4 images) are in, "lake" (4 times) out
    vocab = Vocabulary((c for refs in train.captions.values() for c in refs), 5)
    assert {"red", "bus", "blue", "boat"} <= set(vocab.itos) and "lake" not in vocab.itos
    encoded = vocab.encode("A red bus on a lake")
    assert vocab.decode(encoded) == f"a red bus on a {UNK}"


# models --------------------------------------------------------------------------------------------------
def test_detectors_start_from_our_checkpoint_with_frozen_batchnorm(transfer_data):
    from torchvision.ops import FrozenBatchNorm2d

    from cutmix_repro.paper import config_key
    from cutmix_repro.transfer.backbone import load_backbone
    from cutmix_repro.transfer.detection import build_detector, frozen_batchnorm, trainable_parameters

    backbone = load_backbone(str(transfer_data["r50"]))
    assert (backbone.regularizer, backbone.imagenet_top1_err) == ("cutmix", 21.4)
    # the training setting it records is Table 3's CutMix row's: the report puts its transfers there
    assert backbone.details["run_key"] == config_key(("+experiment=imagenet_resnet50", "regularizer=cutmix"))
    saved = torch.load(transfer_data["r50"] / "best.pt", weights_only=True)["model"]
    c4 = build_detector("faster_rcnn_c4", backbone)
    body, head = c4.backbone, c4.roi_heads.box_head
    where = {"conv1": "backbone.0", "bn1": "backbone.1", "layer1": "backbone.4", "layer2": "backbone.5",
             "layer3": "backbone.6", "layer4": "roi_heads.box_head.layer4"}
    detector_state = c4.state_dict()
    checked = 0
    for key, value in saved.items():  # every backbone weight and BatchNorm statistic, in its place
        name = key.removeprefix("net.")
        if name.startswith("fc.") or name.endswith("num_batches_tracked"):
            continue
        top, _, rest = name.partition(".")
        assert torch.equal(detector_state[f"{where[top]}.{rest}"], value), name
        checked += 1
    assert checked == 265  # ResNet-50: 53 convolutions, and 53 BatchNorms × (weight, bias, mean, variance)
    assert torch.equal(body[6][0].conv1.weight, saved["net.layer3.0.conv1.weight"])  # conv1…layer3 → RPN, RoIs
    assert torch.equal(head.layer4[2].bn3.running_var, saved["net.layer4.2.bn3.running_var"])  # layer4 per RoI
    assert frozen_batchnorm(c4) and any(isinstance(m, FrozenBatchNorm2d) for m in c4.modules())
    fixed = sum(p.numel() for m in (body[0], body[4]) for p in m.parameters())  # conv1, layer1: FIXED_BLOCKS = 1
    assert all(not p.requires_grad for m in (body[0], body[4]) for p in m.parameters())
    total = sum(p.numel() for p in c4.parameters())
    assert trainable_parameters(c4) == total - fixed
    trained_parts = [body[5], body[6], head, c4.rpn, c4.roi_heads.box_predictor]
    assert trainable_parameters(c4) == sum(p.numel() for m in trained_parts for p in m.parameters())
    assert c4.roi_heads.box_predictor.cls_score.out_features == 21

    fpn = build_detector("faster_rcnn_fpn", backbone)
    assert torch.equal(fpn.backbone.body.layer2[0].conv2.weight, saved["net.layer2.0.conv2.weight"])
    assert frozen_batchnorm(fpn)
    ssd = build_detector("ssd300_r50", backbone)
    assert torch.equal(ssd.backbone.to_layer2[5][3].conv3.weight, saved["net.layer2.3.conv3.weight"])
    assert not frozen_batchnorm(ssd)  # SSD trains its BatchNorm (batch 32)
    sizes = [f.shape[-1] for f in ssd.backbone(torch.zeros(1, 3, 300, 300)).values()]
    assert sizes == [38, 19, 10, 5, 3, 1]  # SSD300's six maps, layer2's first in place of conv4_3


def test_init_from_torchvision_the_authors_release_or_a_state_dict_and_nothing_else(tmp_path, monkeypatch):
    import torchvision

    from cutmix_repro.errors import ConfigError
    from cutmix_repro.transfer.backbone import load_backbone

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(ConfigError, match="not on this machine"):
        load_backbone("torchvision")
    reference = torchvision.models.resnet50(weights=None).state_dict()
    path = tmp_path / "torch" / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    path.parent.mkdir(parents=True)
    torch.save(reference, path)
    authors = tmp_path / "cutmix_resnet50.pth.tar"  # clovaai/CutMix-PyTorch: DataParallel keys, arch, best_err1
    torch.save({"epoch": 300, "arch": "resnet", "best_err1": 21.4, "best_err5": 5.92,
                "state_dict": {f"module.{k}": v for k, v in reference.items()}}, authors)
    for init_from, error in (("torchvision", 23.87), (str(authors), 21.4), (str(path), None)):
        backbone = load_backbone(init_from)
        assert backbone.imagenet_top1_err == error and "fc.weight" not in backbone.state
        assert all(torch.equal(backbone.state[k], v) for k, v in reference.items() if not k.startswith("fc."))
    deeper = tmp_path / "resnet101.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in torchvision.models.resnet101().state_dict().items()}},
               deeper)
    with pytest.raises(ConfigError, match=r"is not a ResNet-50 \(its weight layer3.6.conv1.weight"):
        load_backbone(str(deeper))


@pytest.mark.parametrize("task", ["voc_ssd", "voc_faster_rcnn", "coco_nic"])
def test_the_paper_recipe_of_each_task_is_the_appendixs(task):
    from cutmix_repro.paper import load_tables

    facts = load_tables()["transfer_recipes"][task]
    cfg = compose(["+task=" + task, "init_from=x"], "transfer")
    assert cfg.recipe == "paper"
    recipe = cfg.task.recipes.paper
    for key, value in facts.items():
        assert (cfg.task[key] if key == "beam" else recipe[key]) == value, key
    assert cfg.task.recipes.short.get("iterations", 0) < recipe.get("iterations", 1) or \
        cfg.task.recipes.short.epochs < recipe.epochs


def seeded_loss(model, images, targets, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)  # the RPN's and RoI head's sampling draw from torch's RNG
    return sum(model(images, targets).values())


def test_a_few_steps_of_the_detector_and_the_captioner_lower_their_loss(transfer_data):
    from cutmix_repro.transfer.backbone import load_backbone
    from cutmix_repro.transfer.captioning import NIC, caption_loss, pad, resnet50_encoder
    from cutmix_repro.transfer.detection import build_detector

    backbone = load_backbone(str(transfer_data["r50"]))
    detector = build_detector("faster_rcnn_c4", backbone, min_size=64, max_size=96, box_batch_size_per_image=4,
                              rpn_post_nms_top_n_train=100).train()
    images = [torch.rand(3, 72, 96), torch.rand(3, 72, 96)]
    targets = [{"boxes": torch.tensor([[10.0, 10, 50, 40]]), "labels": torch.tensor([3])},
               {"boxes": torch.tensor([[30.0, 20, 90, 70]]), "labels": torch.tensor([8])}]
    optimizer = torch.optim.SGD([p for p in detector.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
    before = seeded_loss(detector, images, targets).item()
    for step in range(4):
        optimizer.zero_grad()
        seeded_loss(detector, images, targets, step).backward()
        optimizer.step()
    assert seeded_loss(detector, images, targets).item() < before

    captioner = NIC(resnet50_encoder(backbone), vocab_size=12).train()
    pictures, tokens = torch.rand(4, 3, 32, 32), pad([[1, 4, 5, 2], [1, 6, 7, 8, 2], [1, 4, 5, 2], [1, 9, 2]])
    optimizer = torch.optim.Adam([p for p in captioner.parameters() if p.requires_grad], lr=1e-3)
    with torch.no_grad():
        before = caption_loss(captioner(pictures, tokens), tokens).item()
    for _ in range(5):
        optimizer.zero_grad()
        caption_loss(captioner(pictures, tokens), tokens).backward()
        optimizer.step()
    with torch.no_grad():
        assert caption_loss(captioner(pictures, tokens), tokens).item() < before
    assert all(not p.requires_grad for p in captioner.encoder.parameters())  # the backbone stays fixed


def test_beam_search_finds_the_caption_a_model_prefers():
    from cutmix_repro.transfer.captioning import NIC

    # an LSTM-free check of the search: a model whose next-word scores depend on the previous word only,
    # such that greedy decoding (4 then 2: log 0.5 + log 0.4) loses to the beam's 5 then 6 then end (0.45 · 0.9 · 1)
    class Table(NIC):
        def __init__(self):
            super().__init__(torch.nn.Flatten(), vocab_size=8)
            self.project = torch.nn.Sequential(torch.nn.Linear(2048, 512))

    model = Table().eval()
    table = torch.full((8, 8), 1e-6)
    table[1, 4], table[1, 5] = 0.5, 0.45
    table[4, 2], table[4, 7] = 0.4, 0.35
    table[5, 6] = 0.9
    table[6, 2] = 1.0
    table[7, 2] = 1.0
    logp = (table / table.sum(1, keepdim=True)).log()

    class Carry(torch.nn.Module):  # an "LSTM" whose output is its input: the previous word's embedding
        def forward(self, x, state=None):
            return x, (x.transpose(0, 1), x.transpose(0, 1))

    class Scores(torch.nn.Module):  # next-word log-probabilities from the previous word
        def forward(self, h):
            return h[..., :8] @ logp

    model.lstm, model.out = Carry(), Scores()
    model.embed = torch.nn.Embedding.from_pretrained(torch.eye(8, 512))
    with torch.no_grad():
        best = model.beam_search(torch.zeros(1, 2048), start=1, end=2, beam=3, max_len=5)
        greedy = model.beam_search(torch.zeros(1, 2048), start=1, end=2, beam=1, max_len=5)
    assert best == [[5, 6]] and greedy == [[4]]


# runs ----------------------------------------------------------------------------------------------------
def test_a_detection_run_resumed_after_a_stop_equals_one_never_stopped(transfer_data, monkeypatch, tmp_path):
    from cutmix_repro.transfer import run as transfer_run

    base = [f"init_from={transfer_data['r50']}", f"task.data.root={transfer_data['voc']}", *TINY_VOC,
            "task.recipes.short.iterations=2", "task.recipes.short.milestones=[1]", "checkpoint_every=100"]
    straight = tmp_path / "straight"
    assert transfer_main(["+task=voc_faster_rcnn", *base, f"hydra.run.dir={straight}"], monkeypatch)[0] == 0
    calls = {"n": 0}

    def stop_after_one(stop, distributed_run):
        calls["n"] += 1
        return calls["n"] == 1

    stopped = tmp_path / "stopped"
    monkeypatch.setattr(transfer_run, "_stop_agreed", stop_after_one)
    assert transfer_main(["+task=voc_faster_rcnn", *base, f"hydra.run.dir={stopped}"], monkeypatch)[0] == 0
    record = json.loads((stopped / "results.json").read_text())
    assert (record["status"], record["iterations_done"]) == ("interrupted", 1)
    assert transfer_main(["+task=voc_faster_rcnn", *base, f"hydra.run.dir={stopped}", "resume=true"],
                         monkeypatch)[0] == 0
    a = torch.load(straight / "last.pt", weights_only=True)
    b = torch.load(stopped / "last.pt", weights_only=True)
    assert a["iteration"] == b["iteration"] == 2
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    results = json.loads((straight / "results.json").read_text())
    assert results["status"] == "finished" and results["task"] == "voc_faster_rcnn" and not results["paper_recipe"]
    assert results["backbone"]["regularizer"] == "cutmix" and results["backbone"]["imagenet_top1_err"] == 21.4
    assert results["metrics"]["test_images"] == 4 and 0 <= results["metrics"]["map"] <= 100
    assert json.loads((stopped / "results.json").read_text())["metrics"] == results["metrics"]
    assert (straight / ".hydra" / "config.yaml").is_file() and (straight / "transfer.log").is_file()
    from helpers import scalars

    assert [s for s, _ in scalars(straight, "train/loss")] == [1, 2]
    assert [s for s, _ in scalars(straight, "test/map")] == [2]


def test_a_transfer_run_that_diverges_keeps_its_folder_log_tensorboard_and_record(transfer_data, monkeypatch,
                                                                                  tmp_path):
    """The loss is made NaN at iteration 3 (by construction, on any machine): one error line naming the iteration
    and the last good checkpoint (iteration 2), exit 2, and the run folder stays with status "diverged"."""
    from cutmix_repro.transfer.tasks import Detection

    real, calls = Detection.losses, {"n": 0}

    def poisoned(self, model, batch, device):
        calls["n"] += 1
        losses = real(self, model, batch, device)
        return {k: v * float("nan") for k, v in losses.items()} if calls["n"] == 3 else losses

    monkeypatch.setattr(Detection, "losses", poisoned)
    run = tmp_path / "run"
    status, err = transfer_main(["+task=voc_faster_rcnn", f"init_from={transfer_data['r50']}",
                                 f"task.data.root={transfer_data['voc']}", *TINY_VOC, "task.recipes.short.iterations=4",
                                 "task.recipes.short.milestones=[3]", "checkpoint_every=2", f"hydra.run.dir={run}"],
                                monkeypatch)
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and "diverged at iteration 3: loss nan" in lines[0], err
    assert f"last good checkpoint is {run / 'last.pt'} (iteration 2)" in lines[0]
    record = json.loads((run / "results.json").read_text())
    assert (record["status"], record["iterations_done"]) == ("diverged", 2) and "iteration 3" in record["error"]
    assert torch.load(run / "last.pt", weights_only=True)["iteration"] == 2
    assert (run / "transfer.log").is_file() and "diverged" in (run / "transfer.log").read_text()
    from helpers import scalars

    assert [s for s, _ in scalars(run, "train/loss")] == [1, 2]


def test_a_linear_warmup_ramps_the_lr_then_the_recipes_steps_and_is_marked_not_the_papers(transfer_data,
                                                                                          monkeypatch, tmp_path):
    from cutmix_repro.transfer.run import lr_schedule

    cfg = OmegaConf.create({"warmup": 4, "warmup_factor": 0.1})
    net = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    schedule = lr_schedule(optimizer, [3, 6], 0.1, cfg)
    seen = []
    for i in range(8):  # the lr of iterations 1…8: the warm-up's factor times the steps' (×0.1 from 3, from 6)
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
        if i == 4:  # resumed as the run resumes: fresh optimizer and schedule, then both states loaded
            states = optimizer.state_dict(), schedule.state_dict()
            optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
            schedule = lr_schedule(optimizer, [3, 6], 0.1, cfg)
            optimizer.load_state_dict(states[0])
            schedule.load_state_dict(states[1])
    ramp = [0.1 + 0.9 * min(i, 4) / 4 for i in range(8)]
    steps = [0.1 ** sum(i >= m for m in (3, 6)) for i in range(8)]
    assert seen == pytest.approx([0.01 * r * s for r, s in zip(ramp, steps)], rel=1e-9)
    assert lr_schedule(optimizer, [3], 0.1, OmegaConf.create({"warmup": 0})).__class__.__name__ == "MultiStepLR"
    run = tmp_path / "run"  # through the command: the lr TensorBoard logs, and the run marked as a switch
    args = ["+task=voc_faster_rcnn", f"init_from={transfer_data['r50']}", f"task.data.root={transfer_data['voc']}",
            *TINY_VOC, "task.recipes.short.iterations=3", "task.recipes.short.milestones=[3]", "warmup=2",
            "warmup_factor=0.5", f"hydra.run.dir={run}"]
    assert transfer_main(args, monkeypatch)[0] == 0
    from helpers import scalars

    lrs = [v for _, v in scalars(run, "train/lr")]  # the lr of iterations 1, 2, 3
    assert lrs == pytest.approx([1e-4 * 0.5, 1e-4 * 0.75, 1e-4], rel=1e-6)
    record = json.loads((run / "results.json").read_text())
    assert not record["paper_recipe"] and record["switches"]["warmup"].startswith("2 iterations from 0.5")
    status, err = transfer_main([*args[:-3], "warmup=-1", f"hydra.run.dir={tmp_path / 'bad'}"], monkeypatch)
    assert status == 2 and "warmup=-1 is invalid" in err and not (tmp_path / "bad").exists()


def test_a_captioning_run_scores_its_captions_with_the_coco_scorers(transfer_data, monkeypatch, tmp_path):
    import shutil

    if shutil.which("java") is None:
        pytest.skip("no Java here: METEOR and the PTB tokenizer need it (CI installs a headless JRE)")
    needs("pycocoevalcap")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    run = tmp_path / "nic"
    args = ["+task=coco_nic", f"init_from={transfer_data['r50']}", f"task.data.root={transfer_data['coco']}",
            "recipe=short", "task.recipes.short.epochs=2", "task.recipes.short.batch_size=4", "task.data.image_size=32",
            "task.beam=3", "workers=0", "device=cpu", f"hydra.run.dir={run}"]
    status, err = transfer_main(args, monkeypatch)
    assert status == 0, err
    results = json.loads((run / "results.json").read_text())
    metrics = results["metrics"]
    assert set(metrics) == {"bleu_1", "bleu_4", "meteor", "rouge_l", "cider", "test_images"}
    assert metrics["test_images"] == 4
    from helpers import scalars

    assert [s for s, _ in scalars(run, "test/cider")] == [results["iterations"]]
    # the scores are the COCO scorers' on the captions the run wrote (its words are already lower-case tokens)
    captions = {int(i): c for i, c in json.loads((run / "captions.json").read_text())["captions"].items()}
    references = {i: [r.lower() for r in transfer_data["captions"]["val2014"][i]] for i in captions}
    candidates = {i: [c] for i, c in captions.items()}
    bleu, _ = Bleu(4).compute_score(references, candidates, verbose=0)
    cider, _ = Cider().compute_score(references, candidates)
    assert metrics["bleu_1"] == pytest.approx(100 * bleu[0]) and metrics["bleu_4"] == pytest.approx(100 * bleu[3])
    assert metrics["cider"] == pytest.approx(100 * cider)  # in percent, as Table 10 prints them
    assert 0 < metrics["meteor"] < 100 and 0 < metrics["rouge_l"] < 100


# bad input -------------------------------------------------------------------------------------------------
def bad_annotation(root: Path, transform) -> Path:
    """A copy of a 2007 test tree whose first annotation is changed by ``transform(xml) -> xml``."""
    write_vocdevkit(root, {"2007": {"test": 2}})
    first = sorted((root / "VOCdevkit" / "VOC2007" / "Annotations").glob("*.xml"))[0]
    first.write_text(transform(first.read_text()))
    return first


@pytest.mark.parametrize("case", ["no devkit", "box outside", "no objects", "cifar checkpoint", "no task", "no java"])
def test_bad_input_is_one_line_and_nothing_is_written(case, transfer_data, monkeypatch, tmp_path):
    import re

    root, run = tmp_path / "voc", tmp_path / "run"
    init_from = transfer_data["r50"]
    expected = {"no devkit": "no VOCdevkit folder", "box outside": "outside its 96×72 image",
                "no objects": "it has no objects", "cifar checkpoint": "not a ResNet-50",
                "no task": "choose a task", "no java": "install a Java runtime"}[case]
    if case == "box outside":
        bad_annotation(root, lambda xml: re.sub(r"<xmax>\d+</xmax>", "<xmax>97</xmax>", xml, count=1))
    elif case == "no objects":
        bad_annotation(root, lambda xml: re.sub(r"  <object>.*</object>\n", "", xml, flags=re.S))
    elif case == "cifar checkpoint":
        write_vocdevkit(root, {"2007": {"test": 2}})
        init_from = our_run(tmp_path / "r110", "cifar100_resnet110", "cutmix", 20.0)
    task = [] if case == "no task" else ["+task=voc_faster_rcnn"]
    if case == "no java":  # the captioning scores need it: said before any training
        import shutil

        monkeypatch.setattr(shutil, "which", lambda name: None)
        task, root = ["+task=coco_nic"], transfer_data["coco"]
    args = [*task, f"init_from={init_from}", f"task.data.root={root}", "task.data.train=[2007-test]",
            *TINY_VOC, f"hydra.run.dir={run}"]
    if case == "no java":
        args = [*task, f"init_from={init_from}", f"task.data.root={root}", "device=cpu", f"hydra.run.dir={run}"]
    status, err = transfer_main(args, monkeypatch)
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0], err
    assert not run.exists()


# Table 10 ----------------------------------------------------------------------------------------------------
def test_table10_puts_each_transfer_run_in_its_backbones_row_beside_the_papers_number(tmp_path):
    from cutmix_repro.paper import run_key
    from cutmix_repro.report import transfer_markdown

    tables = __import__("cutmix_repro.paper", fromlist=["load_tables"]).load_tables()
    mixup = our_run(tmp_path / "mixup", "imagenet_resnet50", "mixup", 22.9, weights=False)
    key = run_key(json.loads((mixup / "results.json").read_text()))  # what load_backbone records (tested above)

    def run(task, metrics, paper=True, backbone_key=key):
        return (tmp_path, {"status": "finished", "task": task, "paper_recipe": paper, "recipe": "paper" if paper else
                           "short", "metrics": metrics,
                           "backbone": {"run_key": backbone_key, "imagenet_top1_err": 22.9, "regularizer": "mixup",
                                        "source": "our run"}})

    runs = [run("voc_faster_rcnn", {"map": 74.0}), run("voc_faster_rcnn", {"map": 74.4}), run("voc_ssd", {"map": 76.1}),
            run("voc_faster_rcnn", {"map": 10.0}, paper=False), run("voc_ssd", {"map": 50.0}, backbone_key="elsewhere")]
    text, found = transfer_markdown(tables["table10"], runs, tables["table3"])
    lines = text.splitlines()
    header = lines[2].strip("| ").split(" | ")
    ours = next(line for line in lines if line.startswith("| Mixup (22.90) | ours |")).strip("| ").split(" | ")
    paper = next(line for line in lines if line.startswith("| Mixup (22.58) | paper |")).strip("| ").split(" | ")
    column = {name: i for i, name in enumerate(header)}
    assert ours[column["Faster R-CNN mAP"]] == "74.20 ± 0.28 (n=2)"  # the short-recipe run is not among them
    assert ours[column["SSD mAP"]] == "76.10 (n=1)" and ours[column["CIDEr"]] == "not run"
    assert paper[column["Faster R-CNN mAP"]] == "73.90" and paper[column["CIDEr"]] == "72.20"
    assert next(line for line in lines if line.startswith("| CutMix (no run) | ours |")).count("not run") == 7
    other = "\n".join(lines[lines.index("## Other backbones and recipes"):])
    assert "short, not the paper's" in other and "10.00 (n=1)" in other and "50.00 (n=1)" in other
    assert sorted(found) == [("Mixup Faster R-CNN mAP", 2, pytest.approx(74.2)), ("Mixup SSD mAP", 1, 76.1)]


def test_reproduce_table10_launches_each_found_backbone_on_each_task_and_names_the_missing(tmp_path, capsys):
    from cutmix_repro.reproduce import main

    runs = tmp_path / "runs"
    our_run(runs / "table3" / "base", "imagenet_resnet50", "baseline", 23.9, weights=False)
    our_run(runs / "table3" / "cutmix", "imagenet_resnet50", "cutmix", 21.5, weights=False)
    status = main(["table10", "--dry-run", "--runs-dir", str(runs), "task.data.root=/data/voc"])
    out, err = capsys.readouterr()
    commands = [line for line in out.splitlines() if "cutmix_repro.transfer" in line]
    assert status == 0 and len(commands) == 6  # two backbones × SSD, Faster R-CNN, NIC
    for task in ("voc_ssd", "voc_faster_rcnn", "coco_nic"):
        mine = [c for c in commands if f"+task={task}" in c]
        assert len(mine) == 2 and all("seed=0,1,2" in c and "task.data.root=/data/voc" in c for c in mine)
        assert {c.split("init_from=")[1].split()[0] for c in mine} == {str(runs / "table3" / "base"),
                                                                       str(runs / "table3" / "cutmix")}
    assert "Mixup, Cutout" in err and "reproduce table3" in err
    assert main(["table10", "--dry-run", "--runs-dir", str(tmp_path / "empty")]) == 2



def test_two_torchrun_ranks_train_a_detector_and_score_each_test_image_once(transfer_data, tmp_path):
    import os
    import subprocess

    run = tmp_path / "ddp"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    args = ["+task=voc_faster_rcnn", f"init_from={transfer_data['r50']}", f"task.data.root={transfer_data['voc']}",
            *TINY_VOC, "task.recipes.short.iterations=2", "task.recipes.short.milestones=[1]", f"hydra.run.dir={run}"]
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "cutmix_repro.transfer", *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((run / "results.json").read_text())
    assert results["status"] == "finished" and results["world_size"] == 2 and results["iterations_done"] == 2
    # the four test images are split between the ranks (2 + 2) and scored once, on the gathered predictions
    assert results["metrics"]["test_images"] == 4
    assert torch.load(run / "last.pt", weights_only=True)["iteration"] == 2
