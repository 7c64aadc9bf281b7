"""Localizable features (paper Figure 1, §4.2, Table 9, appendix B): class activation maps, boxes from
them, the localization data sets and models, and localization measured while training."""

import math

import pytest
import torch
import torch.nn.functional as F
import torchvision
from fakedata import write_cub, write_imagenet_boxes
from helpers import TINY_MODEL, fit_run
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cutmix_repro import figure1, report
from cutmix_repro.cam import class_activation_maps
from cutmix_repro.config import compose
from cutmix_repro.data import cub, imagenet_boxes
from cutmix_repro.engine import records as R
from cutmix_repro.errors import ConfigError, DataError
from cutmix_repro.localization import (
    THRESHOLD,
    LocalizationMeter,
    box_iou,
    boxes_from_maps,
    largest_region_boxes,
    level_cutoff,
    region_labels,
    score_levels,
)
from cutmix_repro.models import StagedNet, create_model
from cutmix_repro.paper import load_tables

FACTS = load_tables()


class Linear1x1(StagedNet):
    """A hand-built model: the feature map is the image itself, the head averages and classifies."""

    arch_name = "hand"

    def __init__(self, weight):
        super().__init__()
        self.stem, self.stages = torch.nn.Identity(), torch.nn.ModuleList([torch.nn.Identity()])
        self.head = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 2))
        with torch.no_grad():
            self.head[2].weight.copy_(weight)
            self.head[2].bias.fill_(0.7)

    def head_parts(self):
        return torch.nn.Identity(), self.head[2]


def test_the_cam_of_a_hand_built_model_is_the_class_weighted_sum_of_its_feature_maps():
    weight = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, 1.0]])
    images = torch.randn(2, 3, 5, 7)
    maps = class_activation_maps(Linear1x1(weight), images, torch.tensor([0, 1]))
    by_hand = torch.stack([(weight[0].view(3, 1, 1) * images[0]).sum(0), (weight[1].view(3, 1, 1) * images[1]).sum(0)])
    assert torch.allclose(maps, by_hand, atol=1e-6)


MODELS = [("cifar_resnet", dict(depth=8, bottleneck=False), 32),
          ("pyramidnet", dict(depth=11, alpha=12, bottleneck=True), 32),
          ("resnet50", {}, 64), ("vgg_gap", dict(init_from=None, width=16), 64)]


@pytest.mark.parametrize("name, options, size", MODELS, ids=[m[0] for m in MODELS])
def test_every_models_head_is_pooling_then_linear_so_the_cam_averages_to_the_logit(name, options, size):
    model = create_model(name, num_classes=5, **options).eval()
    images, classes = torch.randn(2, 3, size, size), torch.tensor([1, 4])
    before_pool, classifier = model.head_parts()
    with torch.no_grad():
        logits = model(images)
        maps = class_activation_maps(model, images, classes, upsample=False)
    assert torch.allclose(logits, classifier(model.forward_features(images).mean((2, 3))), atol=1e-4)
    assert torch.allclose(maps.mean((1, 2)) + classifier.bias[classes], logits[torch.arange(2), classes], atol=1e-4)
    assert class_activation_maps(model, images, classes).shape == (2, size, size), "upsampled to the input"


def test_two_blobs_give_the_box_of_the_larger_and_regions_join_diagonally():
    masks = torch.zeros(3, 20, 30, dtype=torch.bool)
    masks[0, 2:5, 3:6] = True
    masks[0, 10:18, 12:27] = True
    masks[1, 0, 0] = masks[1, 1, 1] = masks[1, 2, 2] = True  # 8-connected: one region
    # ends one past the last row and column (the reference's cv2.boundingRect); an empty mask: 0, 0, 0, 0
    assert largest_region_boxes(masks).tolist() == [[12, 10, 27, 18], [0, 0, 3, 3], [0, 0, 0, 0]]
    assert FACTS["localization"]["threshold"] == THRESHOLD


def test_a_box_touching_the_right_or_bottom_edge_ends_at_w_minus_1_as_the_reference_clips_it():
    masks = torch.zeros(2, 10, 12, dtype=torch.bool)
    masks[0, 4:10, 7:12] = True  # reaches the last row and column
    masks[1, 0:3, 0:2] = True
    assert largest_region_boxes(masks).tolist() == [[7, 4, 11, 9], [0, 0, 2, 3]]


def test_of_two_equal_regions_the_first_in_raster_order_wins_on_either_path():
    masks = torch.zeros(2, 12, 12, dtype=torch.bool)
    masks[0, 6:9, 1:4] = True  # 9 pixels, second in raster order
    masks[0, 1:4, 8:11] = True  # 9 pixels, first in raster order (row 1)
    masks[1, 1:4, 8:11] = masks[1, 1, 0] = True
    masks[1, 8:11, 0:3] = True  # equal to the top-right square: the top-right still comes first
    for method in ("scipy", "torch"):
        assert largest_region_boxes(masks, method).tolist() == [[8, 1, 11, 4], [8, 1, 11, 4]], method


def test_the_gpu_and_cpu_region_finders_agree():
    torch.manual_seed(3)
    smooth = F.interpolate(torch.rand(30, 1, 6, 6), size=(40, 40), mode="bilinear")[:, 0] > 0.55
    noisy = torch.rand(30, 24, 24) > 0.5
    for masks in (smooth, noisy):
        assert torch.equal(region_labels(masks, "torch"), region_labels(masks, "scipy"))
        assert torch.equal(largest_region_boxes(masks, "torch"), largest_region_boxes(masks, "scipy"))


def test_a_map_is_thresholded_on_its_min_max_scaled_8_bit_levels_not_as_a_fraction_of_its_maximum():
    # levels = ⌊255 · (v − min) / (max − min)⌋; the mask is level > ⌊255 · 0.15⌋ = 38
    values = torch.tensor([100.0, 110.0, 120.0, 355.0])  # min 100, max 355: levels 0, 10, 20, 255
    assert score_levels(values.view(1, 1, 4)).tolist() == [[[0, 10, 20, 255]]]
    assert level_cutoff(THRESHOLD) == 38
    # as a fraction of the maximum, 120 / 355 = 0.34 would pass 0.15; scaled, it is level 20 and does not
    assert boxes_from_maps(values.view(1, 1, 4)).tolist() == [[[3, 0, 3, 0]]]
    edge = torch.tensor([0.0, 38.0, 38.9, 39.0, 255.0]).view(1, 1, 5)  # levels 0, 38, 38, 39, 255
    levels = score_levels(edge)
    assert levels.tolist() == [[[0, 38, 38, 39, 255]]], "truncated, not rounded"
    assert boxes_from_maps(edge).tolist() == [[[3, 0, 4, 0]]], "level 38 is not above 38; 39 is"
    assert score_levels(torch.full((1, 3, 3), 7.0)).sum() == 0, "a constant map is all zero: no box"
    nan = torch.ones(1, 3, 3)
    nan[0, 1, 1] = float("nan")
    assert score_levels(nan).sum() == 0


def test_iou_has_inclusive_ends_and_the_best_true_box_counts():
    box = torch.tensor([[0, 0, 4, 4]])  # 5 × 5 pixels
    truth = torch.tensor([[[0, 0, 4, 4], [2, 2, 6, 6], [-1, -1, -1, -1]]])
    assert box_iou(box, truth)[0].tolist() == pytest.approx([1.0, 9 / 41, -1.0])  # exclusive ends: 4 / 28
    assert box_iou(torch.tensor([[20, 20, 30, 30]]), truth)[0, :2].tolist() == [0.0, 0.0]
    assert box_iou(torch.tensor([[0, 0, 0, 0]]), truth)[0, 0] == pytest.approx(1 / 25), "a one-pixel box"


def test_an_iou_of_exactly_one_half_is_right():
    meter = LocalizationMeter("cpu", thresholds=(0.5,))
    maps = torch.zeros(2, 10, 10)
    maps[:, 0:10, 0:5] = 1.0  # the box (0, 0, 5, 9): 6 × 10 = 60 pixels
    truth = torch.tensor([[[0.0, 0.0, 2.0, 9.0]], [[0.0, 0.0, 1.0, 9.0]]])  # 30 pixels: IoU 1/2; 20: IoU 1/3
    meter.update_maps(maps, maps, torch.tensor([True, True]), truth)
    m = meter.compute()
    assert m["gt_known_loc"] == 50.0 and m["top1_loc"] == 50.0 and m["max_box_acc"] == 50.0


def test_cub_in_its_published_layout_loads_with_boxes_in_the_test_crop(tmp_path):
    write_cub(tmp_path)
    data = cub(str(tmp_path), image_size=32, resize=36, num_workers=0, prefetch_factor=2, batch_size=4)
    assert data.num_classes == 3 and data.class_names[0] == "001.Bird_0"
    assert data.train.dataset_size == 6 and data.val.dataset_size == 6
    images, labels, boxes = next(iter(data.val))
    assert images.shape == (4, 3, 32, 32) and labels.tolist() == [0, 0, 1, 1] and boxes.shape == (4, 1, 4)
    # image 3 of class 0 (a test image): 56×40, box x 5, y 4, w 20, h 12 → resized to 36×36, centre crop 32
    # (offset 2), corners truncated to integers as the reference's resize_bbox
    assert boxes[0, 0].tolist() == [int(5 * 36 / 56 - 2), int(4 * 36 / 40 - 2), int(25 * 36 / 56 - 2),
                                    int(16 * 36 / 40 - 2)] == [1, 1, 14, 12]


@pytest.mark.parametrize("width, height, box, resize, size, by_hand", [
    (57, 41, (10, 5, 30, 20), 36, 32, [4, 2, 16, 15]),  # wider than high
    (40, 63, (0, 30, 40, 63), 36, 32, [0, 15, 32, 32]),  # higher than wide; touching the left, right, bottom
    (50, 50, (3, 0, 47, 50), 35, 32, [0, 0, 30, 32]),  # odd crop margin (35 − 32 = 3: the crop starts at 2)
])
def test_a_true_box_lands_on_its_object_in_the_test_crop(width, height, box, resize, size, by_hand):
    """Draw the object the box names (x1, y1 one past its last pixel, as CUB's x + width), send the image
    through the test transform, and find the object again: the mapped box is where it went."""
    from PIL import Image

    from cutmix_repro.data.wsol import eval_boxes, wsol_eval_transform

    pixels = torch.zeros(height, width, 3, dtype=torch.uint8)
    x0, y0, x1, y1 = box
    pixels[y0:y1, x0:x1] = 255
    image = wsol_eval_transform(size, resize)(Image.fromarray(pixels.numpy()))
    inside = (image[0] > image[0].min() + 0.5 * (image[0].max() - image[0].min())).nonzero()
    seen = [inside[:, 1].min(), inside[:, 0].min(), inside[:, 1].max() + 1, inside[:, 0].max() + 1]
    mapped = eval_boxes(torch.tensor([box], dtype=torch.float32), width, height, size, resize)[0].tolist()
    assert mapped == by_hand  # x · resize / width − offset, clipped to [0, size], truncated
    assert mapped == pytest.approx([float(v) for v in seen], abs=1.0), (mapped, seen)


@pytest.mark.parametrize("defect, needle", [
    ("missing", "no bounding_boxes.txt"),
    ("outside", "lies outside the"),
    ("unknown", "unknown image id 999"),
    ("no_label", "has no line in image_class_labels.txt"),
])
def test_each_defect_of_a_cub_folder_is_one_line_naming_it(tmp_path, defect, needle):
    folder = write_cub(tmp_path)
    if defect == "missing":
        (folder / "bounding_boxes.txt").unlink()
    elif defect == "outside":
        lines = (folder / "bounding_boxes.txt").read_text().splitlines()
        lines[2] = "3 40.0 4.0 200.0 10.0"  # a test image: x + width far beyond its 56 pixels
        (folder / "bounding_boxes.txt").write_text("\n".join(lines))
    elif defect == "unknown":
        with open(folder / "train_test_split.txt", "a") as f:
            f.write("999 1\n")
    else:
        lines = (folder / "image_class_labels.txt").read_text().splitlines()
        (folder / "image_class_labels.txt").write_text("\n".join(lines[1:]))
    with pytest.raises(DataError, match=needle) as err:
        cub(str(tmp_path), image_size=32, resize=36, num_workers=0, prefetch_factor=2, batch_size=4)
    assert "\n" not in str(err.value) and str(err.value).startswith("root=")


def test_imagenet_validation_boxes_from_the_ilsvrc_xml_files(tmp_path):
    write_imagenet_boxes(tmp_path)
    data = imagenet_boxes(str(tmp_path), None, image_size=32, resize=36, num_workers=0, prefetch_factor=2,
                          batch_size=4)
    images, labels, boxes = next(iter(data.val))
    assert boxes.shape == (4, 2, 4) and (boxes >= 0).all(), "two objects an image"
    width = 47  # the fake images are 47×40: x 1..11 → (x · 36/47 − 2) clipped at 0, truncated
    assert boxes[0, 0, 0].item() == 0.0 and boxes[0, 0, 2].item() == int(11 * 36 / width - 2) == 6
    xml = sorted((tmp_path / "val_boxes").glob("*.xml"))
    kept = xml[0].read_text()
    xml[0].unlink()
    with pytest.raises(DataError, match=f"no {xml[0].name} for the validation image"):
        imagenet_boxes(str(tmp_path), None, 32, 36, 0, 2, batch_size=4)
    xml[0].write_text(kept)
    xml[1].write_text("<annotation><size><width>5</width>")
    with pytest.raises(DataError, match="is not an ILSVRC annotation"):
        imagenet_boxes(str(tmp_path), None, 32, 36, 0, 2, batch_size=4)


@pytest.mark.parametrize("experiment", list(FACTS["wsol_recipes"]))
def test_the_localization_experiments_compose_appendix_bs_recipes(experiment):
    recipe = FACTS["wsol_recipes"][experiment]
    cfg = compose([f"+experiment={experiment}"])
    assert (cfg.trainer.epochs, cfg.trainer.batch_size, cfg.trainer.lr) == (recipe["epochs"], recipe["batch_size"],
                                                                             recipe["lr"])
    assert cfg.optimizer.classifier_lr == recipe["classifier_lr"] and cfg.model.init_from == "torchvision"
    assert (cfg.dataset.resize, cfg.dataset.image_size) == (recipe["resize"], recipe["crop"])
    from cutmix_repro.engine.schedule import milestone_epochs

    assert milestone_epochs(cfg.trainer.epochs, cfg.scheduler.milestones) == recipe["lr_decay_epochs"]
    model = create_model(cfg.model._target_.rsplit(".", 1)[-1] == "VggGap" and "vgg_gap" or "resnet50_wsol", 200,
                         init_from=None)
    with torch.no_grad():
        assert model.forward_features(torch.randn(1, 3, 224, 224)).shape[-2:] == (recipe["map_size"],) * 2


def test_the_classifier_gets_its_own_learning_rate():
    cfg = compose(["+experiment=cub_resnet50_wsol", "model.init_from=null", "model.variant=resnet18"])
    from hydra.utils import instantiate

    model = instantiate(cfg.model, num_classes=200)
    optimizer = instantiate(cfg.optimizer, model=model)
    rest, head = optimizer.param_groups
    assert rest["lr"] == 0.001 and head["lr"] == 0.01
    assert {id(p) for p in head["params"]} == {id(p) for p in model.head_parts()[1].parameters()}
    assert len(rest["params"]) + len(head["params"]) == len(list(model.parameters()))


def test_starting_weights_from_torchvision_or_from_a_run_of_ours(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(ConfigError, match="not on this machine"):
        create_model("resnet50_wsol", 10, variant="resnet18")
    reference = torchvision.models.resnet18(weights=None).state_dict()
    path = tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    path.parent.mkdir(parents=True)
    torch.save(reference, path)
    model = create_model("resnet50_wsol", 10, variant="resnet18")
    ours = model.net.state_dict()
    assert all(torch.equal(ours[k], v) for k, v in reference.items() if not k.startswith("fc."))
    assert ours["fc.weight"].shape == (10, 512), "a new classifier for the data set's classes"
    vgg = {k: v for k, v in torchvision.models.vgg16(weights=None).state_dict().items() if k.startswith("features")}
    torch.save(vgg, path.with_name("vgg16-397923af.pth"))
    gap = create_model("vgg_gap", 10)
    assert torch.equal(gap.stages[3][4].weight, vgg["features.28.weight"]) and torch.equal(gap.stem[0].bias,
                                                                                         vgg["features.0.bias"])
    from cutmix_repro.engine.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "run" / "last.pt", {"model": {f"net.{k}": v + 1 for k, v in ours.items()}, "meta": {}})
    from_ours = create_model("resnet50_wsol", 7, variant="resnet18", init_from=str(tmp_path / "run"))
    assert torch.equal(from_ours.net.conv1.weight, ours["conv1.weight"] + 1)
    with pytest.raises(ConfigError, match="it has no weight layer1.2.conv1.weight"):
        create_model("resnet50_wsol", 7, variant="resnet34", init_from=str(tmp_path / "run"))


def random_box_rate(size: int, object_size: int, trials: int = 4000) -> float:
    """How often a box of the object's size at a uniformly random place has IoU > 0.5 with the object."""
    g = torch.Generator().manual_seed(0)
    corners = torch.randint(0, size - object_size + 1, (trials, 2, 2), generator=g).float()
    guess = torch.cat([corners[:, 0], corners[:, 0] + object_size], 1)
    truth = torch.cat([corners[:, 1], corners[:, 1] + object_size], 1).view(trials, 1, 4)
    return (box_iou(guess, truth)[:, 0] > 0.5).float().mean().item() * 100


@pytest.fixture(scope="module")
def localization_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("wsol") / "run"
    res = fit_run(["dataset=synthetic_boxes", *TINY_MODEL, "regularizer=baseline", "trainer.epochs=4",
                   "trainer.lr=0.05", "trainer.batch_size=32", "trainer.tb_cams_every=2"], run)
    return run, res


def test_localization_is_learned_far_above_a_box_at_a_random_place(localization_run):
    run, res = localization_run
    chance = random_box_rate(64, 24)
    assert chance < 15
    assert res[R.LAST_TOP1_LOC] > chance + 30 and res[R.LAST_MAX_BOX_ACC] > 90, res["history"]
    for field, tag in ((R.VAL_TOP1_LOC, "val/top1_loc"), (R.VAL_MAX_BOX_ACC, "val/max_box_acc")):
        assert [h[field] for h in res["history"]] == pytest.approx(
            [e.value for e in EventAccumulator(str(run / "tb")).Reload().Scalars(tag)])
    assert res[R.BEST_TOP1_LOC] == next(h[R.VAL_TOP1_LOC] for h in res["history"] if h[R.EPOCH] == res[R.BEST_EPOCH])
    from PIL import Image

    assert Image.open(run / "localization.png").size[0] >= 800, "8 labelled panels, not a 266-pixel strip"


def test_the_report_writes_table9_beside_the_papers_numbers(localization_run, tmp_path, monkeypatch):
    run, res = localization_run
    cub_cutmix = dict(res, dataset="cub", _dir=str(run))
    cfg = compose(["+experiment=cub_resnet50_wsol", "regularizer=cutmix"])
    from cutmix_repro.config import params

    cub_cutmix.update(model_target=cfg.model._target_, model_options=params(cfg.model),
                      regularizer_target=cfg.regularizer._target_, regularizer_params=params(cfg.regularizer))
    (tmp_path / "runs" / "a").mkdir(parents=True)
    (tmp_path / "runs" / "a" / "results.json").write_text(__import__("json").dumps(cub_cutmix))
    (tmp_path / "runs" / "a" / "localization.png").write_bytes((run / "localization.png").read_bytes())
    summary = report.generate([str(tmp_path / "runs")], tmp_path / "out", figures=False)
    table9 = (tmp_path / "out" / "table9.md").read_text()
    row = next(line for line in table9.splitlines() if line.startswith("| ResNet-50 + CutMix |"))
    last = res[R.LAST_TOP1_LOC]
    assert f"| 54.81 | {last:.2f} (n=1) |" in row and f"{last - 54.81:+.2f}" in row and "| 47.25 | not run |" in row
    assert summary["tables"]["table9"] == [("ResNet-50 + CutMix, CUB200-2011", 1, pytest.approx(last))]
    assert (tmp_path / "out" / "table9_1.png").is_file() and "table9_1.png" in table9


def test_tensorboard_shows_the_first_mixed_batch_with_its_lambda_and_cams_every_n_epochs(tmp_path):
    run = tmp_path / "run"
    res = fit_run(["dataset=synthetic", "dataset.train_size=64", "dataset.test_size=16", *TINY_MODEL,
                   "regularizer=cutmix", "regularizer.mode=elem", "trainer.epochs=2", "trainer.tb_cams_every=2"], run)
    acc = EventAccumulator(str(run / "tb"), size_guidance={"images": 0, "tensors": 0})
    acc.Reload()
    assert [e.step for e in acc.Images("train/mixed_batch")] == [1, 2]
    assert [e.step for e in acc.Images("val/cam")] == [2]
    caption = acc.Tensors("train/mixed_batch_lambda/text_summary")[0].tensor_proto.string_val[0].decode()
    assert caption.startswith("λ per image: ") and len(caption.split(",")) == 16, "elem mode: one λ per image"
    assert all(h[R.TB_IMAGES_S] > 0 for h in res["history"])
    off = fit_run(["dataset=synthetic", "dataset.train_size=64", "dataset.test_size=16", *TINY_MODEL,
                   "trainer.epochs=1", "trainer.tb_mixed_batch=false", "trainer.tb_cams_every=0"], tmp_path / "off")
    quiet = EventAccumulator(str(tmp_path / "off" / "tb"))
    quiet.Reload()
    assert not quiet.Tags()["images"] and off["history"][0][R.TB_IMAGES_S] == 0


def test_feature_level_mixing_shows_the_input_batch_and_names_the_layer():
    from cutmix_repro.regularizers import FeatureCutMix
    from cutmix_repro.visuals import FirstMixedBatch, mixed_batch

    model = create_model("cifar_resnet", 4, depth=8, bottleneck=False)
    batch = FeatureCutMix(layers=2)(torch.randn(6, 3, 32, 32), torch.arange(6) % 4)
    model(batch.inputs, mix_layer=batch.mix_layer, mix_fn=batch.mix_fn)
    snapshot = FirstMixedBatch()
    snapshot.offer(batch)
    images, caption = mixed_batch(snapshot.batch, (0.5,) * 3, (0.5,) * 3)
    assert snapshot.done and images.shape == (6, 3, 32, 32) and "at layer 2" in caption and "λ = " in caption


def test_figure1_from_a_run_of_ours_and_from_torchvision_weights(finished_run, tmp_path, monkeypatch, capsys):
    run, _ = finished_run
    out = tmp_path / "figure1.png"
    assert figure1.main(["--run", str(run), "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG" and out.stat().st_size > 10_000
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert figure1.main(["--torchvision-resnet50", "--images", "a.jpg", "b.jpg"]) == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and "resnet50-0676ba61.pth" in line and "--run RUN_DIR" in line


def test_the_three_augmentations_of_figure1_share_one_lambda_and_one_box():
    a, b = torch.ones(3, 32, 32), -torch.ones(3, 32, 32)
    # λ = 0.6: sides ⌊32·√0.4⌋ = 20, so the pasted share is 400/1024 and CutMix's λ is 0.609, not 0.6
    (_, mixup, lam_m), (_, cutout, lam_c), (_, cutmix, lam_x) = figure1.augmented_pair(a, b, 0.6)
    assert lam_m == 0.6 and torch.allclose(mixup, torch.full_like(a, 0.2)) and lam_c == 1.0
    hole, pasted = (cutout == 0).all(0), (cutmix == -1).all(0)
    assert torch.equal(hole, pasted), "Cutout removes exactly what CutMix replaces"
    assert lam_x == pytest.approx(1 - 400 / 1024) and math.isclose(1 - lam_x, pasted.float().mean().item())
    assert pasted[16, 16] and pasted[6:26, 6:26].all() and pasted.sum() == 400, "the centred 20 × 20 box"


def test_figure1s_cam_rows_are_the_maps_of_a_s_class_then_b_s_class():
    # a hand-built model whose map of class 0 is the image's channel 0 and of class 1 its channel 1; A lights
    # channel 0 on its left, B channel 1 on its right
    model = Linear1x1(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    a, b = torch.zeros(3, 16, 16), torch.zeros(3, 16, 16)
    a[0, :, :3], b[1, :, 14:] = 1.0, 1.0  # outside the centred box (columns 3–13) of λ = 0.5
    for name, _, _, (cam_a, cam_b) in figure1.panels(model, a, b, (0, 1), lam=0.5):
        assert cam_a[:, :3].min() > 0.99 and cam_a[:, 3:].abs().max() < 1e-6, name
        if name == "Mixup":  # B is in the mixed image: its class's map lights B's side
            assert cam_b[:, 14:].min() > 0.99 and cam_b[:, :14].abs().max() < 1e-6
    mixup = figure1.panels(model, a, b, (1, 0), lam=0.5)[0]
    assert mixup[3][0][:, 14:].min() > 0.99, "classes in the other order: the rows swap"


def test_top1_localization_needs_the_right_class_and_gt_known_uses_the_true_classs_map():
    from cutmix_repro.localization import LocalizationMeter

    left, right = torch.zeros(8, 8), torch.zeros(8, 8)
    left[1:4, 1:4], right[4:8, 4:8] = 1.0, 1.0  # the object is top left in every image: box (1, 1, 3, 3)
    truth = torch.tensor([[[1.0, 1.0, 3.0, 3.0]]] * 3)
    # image 0: taken for class 1, whose map is elsewhere; its true class's map is on the object
    # image 1: taken for class 1, whose map is on the object; its true class's map is elsewhere
    # image 2: the right class, its map on the object
    predicted_maps, true_maps = torch.stack([right, left, left]), torch.stack([left, right, left])
    meter = LocalizationMeter("cpu")
    meter.update_maps(predicted_maps, true_maps, torch.tensor([False, False, True]), truth)
    m = meter.compute()
    assert m["top1_loc"] == pytest.approx(100 / 3) and m["gt_known_loc"] == pytest.approx(200 / 3)
    # through the model's features: the maps are the classifier's rows of the predicted and the true class
    features = torch.stack([torch.stack([left, right]), torch.stack([right, left])])  # (2 images, 2 channels)
    classifier = torch.nn.Linear(2, 2)
    with torch.no_grad():
        classifier.weight.copy_(torch.eye(2))
    meter = LocalizationMeter("cpu")
    logits = torch.tensor([[0.0, 2.0], [0.0, 2.0]])  # both taken for class 1, both truly class 0
    meter.update(features, classifier, (8, 8), torch.tensor([0, 0]), truth[:2], logits)
    m = meter.compute()
    assert m["top1_loc"] == 0.0 and m["gt_known_loc"] == 50.0, "image 0's class-0 map is on the object"


def test_torchvisions_resnet50_weights_fit_the_timm_resnet50_figure1_loads_them_into():
    ours = create_model("resnet50", num_classes=1000).net.state_dict()
    theirs = torchvision.models.resnet50(weights=None).state_dict()
    assert ours.keys() == theirs.keys() and all(ours[k].shape == theirs[k].shape for k in ours)


def test_localization_png_names_the_run_and_captions_each_image_with_classes_and_iou(tmp_path):
    from PIL import Image

    from cutmix_repro.visuals import localization_figure

    model = Linear1x1(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))  # class c's map: channel c
    images = torch.zeros(2, 3, 16, 16)
    images[0, 0, 2:8, 2:8] = 1.0  # image 0: class 0's evidence on its object
    images[1, 1, 8:14, 8:14] = 1.0  # image 1: class 1's evidence, away from its true box
    truth = torch.tensor([[[2.0, 2.0, 8.0, 8.0]], [[0.0, 0.0, 5.0, 5.0]]])
    names = {0: "sparrow", 1: "gull"}.__getitem__
    captions = localization_figure(tmp_path / "loc.png", model, images, torch.tensor([0, 0]), truth, (0.5,) * 3,
                                   (0.5,) * 3, names, "cutmix · resnet8 · cub · seed=0, epoch 4")
    assert captions[0].startswith("true: sparrow\npredicted: sparrow\nIoU ") and captions[0].endswith("✓")
    assert captions[1].startswith("true: sparrow\npredicted: gull\nIoU 0.00") and captions[1].endswith("✗")
    width, height = Image.open(tmp_path / "loc.png").size
    assert width >= 400 and height >= 300, "large enough to read"
