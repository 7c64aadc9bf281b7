"""Evaluating a checkpoint as the paper's §4.4 does (Table 11, Figure 5, Table 12 / A2) and beyond
(calibration), and the authors' released checkpoints."""

import json
import shlex

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from authors_layout import AuthorsPyramidNet, randomized
from fakedata import write_imagefolder
from PIL import Image

from cutmix_repro import evaluate, report, reproduce
from cutmix_repro.engine import records as R
from cutmix_repro.errors import ConfigError
from cutmix_repro.evaluation import calibration, occlusion, ood
from cutmix_repro.evaluation.attacks import fgsm
from cutmix_repro.evaluation.official import load_official, our_key
from cutmix_repro.models import create_model


def test_fgsm_on_a_linear_model_is_the_closed_form():
    torch.manual_seed(0)
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    x, y = torch.rand(5, 3, 2, 2) * 0.5 + 0.25, torch.tensor([0, 1, 2, 0, 1])
    eps = 0.1
    probs = linear(x).softmax(1)
    grad = (probs - F.one_hot(y, 3).float()) @ linear[1].weight / 5  # ∇ₓ of the mean cross-entropy
    expected = (x + eps * grad.sign().view_as(x)).clamp(0, 1)
    assert torch.allclose(fgsm(linear, x, y, eps), expected)


def test_fgsm_stays_an_image_and_refuses_a_negative_step():
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    x = torch.tensor([[[[0.0, 1.0], [0.99, 0.01]]]])
    attacked = fgsm(linear, x, torch.tensor([0]), 0.5)
    assert attacked.min() >= 0 and attacked.max() <= 1 and not torch.equal(attacked, x)
    with pytest.raises(ValueError, match="eps=-0.1"):
        fgsm(linear, x, torch.tensor([0]), -0.1)


@pytest.mark.parametrize("height, width, size", [(7, 9, 3), (7, 9, 4), (32, 32, 5), (5, 5, 5), (5, 5, 0)])
def test_occlusion_squares_are_exact_at_odd_sizes(height, width, size):
    images = torch.ones(2, 3, height, width)
    centre = occlusion.occlude(images, size, boundary=False)[0, 0] == 0
    boundary = occlusion.occlude(images, size, boundary=True)[0, 0] == 0
    top, left = (height - size) // 2, (width - size) // 2
    expected = torch.zeros(height, width, dtype=torch.bool)
    expected[top : top + size, left : left + size] = True
    assert torch.equal(centre, expected) and torch.equal(boundary, ~expected)
    assert int(centre.sum()) == size * size


def test_in_between_pairs_are_of_two_classes_and_cutmix_lambda_is_the_area_left():
    targets = torch.tensor([0, 0, 1, 1, 2, 2, 2, 3])
    a, b = occlusion.in_between_pairs(targets, 100)
    assert len(a) > 0 and (targets[a] != targets[b]).all()
    mixed, lam = occlusion.cutmix_centre(torch.zeros(1, 1, 8, 8), torch.ones(1, 1, 8, 8), 4)
    assert lam == 1 - 16 / 64 and mixed.sum() == 16 and mixed[0, 0, 2:6, 2:6].all()


def test_detection_metrics_on_hand_made_scores():
    inside = np.arange(1, 101) / 100  # in-distribution scores 0.01 … 1.00
    outside = np.array([0.02, 0.06, 0.5, 0.97])
    m = ood.detection_metrics(inside, outside)
    pairs = [(i > o) + 0.5 * (i == o) for i in inside for o in outside]
    assert m["auroc"] == pytest.approx(100 * np.mean(pairs))
    # 95% TPR keeps the in-distribution scores ≥ 0.06: of the OOD scores only 0.02 falls below it (0.06 does not)
    assert m["tnr_at_95_tpr"] == pytest.approx(25.0)
    best = max(0.5 * (inside >= t).mean() + 0.5 * (outside < t).mean() for t in np.concatenate([inside, outside]))
    assert m["detection_acc"] == pytest.approx(100 * best)
    perfect = ood.detection_metrics([0.9, 0.8], [0.1, 0.2])
    assert perfect == {"tnr_at_95_tpr": 100.0, "auroc": 100.0, "detection_acc": 100.0}


def test_ece_nll_and_brier_on_constructed_predictions():
    probs = torch.tensor([[0.8, 0.2]] * 100)
    targets = torch.tensor([0] * 60 + [1] * 40)  # confident 0.8, right 60% of the time
    assert calibration.ece(probs, targets) == pytest.approx(20.0, abs=1e-4)
    logits = probs.log()
    s = calibration.scores(logits, targets)
    assert s["nll"] == pytest.approx(-(0.6 * np.log(0.8) + 0.4 * np.log(0.2)), rel=1e-5)
    assert s["brier"] == pytest.approx(0.6 * (0.2**2 * 2) + 0.4 * (0.8**2 * 2), rel=1e-5)
    calibrated = calibration.ece(torch.tensor([[0.7, 0.3]] * 10), torch.tensor([0] * 7 + [1] * 3))
    assert calibrated == pytest.approx(0, abs=1e-5)
    sure_and_wrong = torch.cat([torch.tensor([[1.0, 0.0]] * 50), probs[:50]])  # the last bin holds confidence 1
    assert calibration.ece(sure_and_wrong, torch.tensor([1] * 50 + [0] * 30 + [1] * 20)) == pytest.approx(60.0)


def test_temperature_scaling_recovers_a_known_temperature():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(20000, 10, generator=g) * 2
    targets = torch.multinomial(z.softmax(1), 1, generator=g).view(-1)  # labels drawn from softmax(z)
    assert calibration.fit_temperature(z * 2.5, targets) == pytest.approx(2.5, rel=0.05)  # over-confident by 2.5


def run_evaluate(args):
    return evaluate.main([str(a) for a in args])


def test_the_clean_suite_equals_what_the_trainer_reported_and_every_suite_writes(finished_run, tmp_path, capsys):
    run, res = finished_run
    ood_dir = tmp_path / "ood"
    write_imagefolder(ood_dir, classes=1, train_per_class=0, val_per_class=5, size=40)
    out = tmp_path / "eval"
    assert run_evaluate([run, "clean", "fgsm", "occlusion", "in-between", "--checkpoint", "last.pt", "--out", out,
                         "--eps", "0", "8/255", "--pairs", "40"]) == 0
    first = json.loads((out / "evaluation.json").read_text())
    assert first["clean"]["top1_err"] == pytest.approx(res[R.LAST_TOP1])
    assert first["clean"]["top5_err"] == pytest.approx(res[R.LAST_TOP5]) and first["epoch"] == 4
    assert first["fgsm"]["top1_acc"][0] == pytest.approx(100 - res[R.LAST_TOP1]), "ε = 0 changes nothing"
    assert first["fgsm"]["top1_acc"][1] <= first["fgsm"]["top1_acc"][0]
    assert first["occlusion"]["centre_top1_err"][0] == pytest.approx(res[R.LAST_TOP1]), "side 0: clean"
    assert first["occlusion"]["boundary_top1_err"][-1] == pytest.approx(res[R.LAST_TOP1]), "side = image: clean"
    assert run_evaluate([run, "ood", "calibration", "--checkpoint", "last.pt", "--out", out,
                         "--ood", ood_dir / "val", "--ood-crop", ood_dir / "val", "--noise-count", 20]) == 0
    both = json.loads((out / "evaluation.json").read_text())
    assert "fgsm" in both and "ood" in both, "a second run adds its suites and keeps the others"
    assert set(both["ood"]["sets"]) == {"val (resize)", "val (crop)", "uniform", "gaussian"}
    assert both["calibration"]["fitted_on"] == "test images of even index"
    for name in ("occlusion.png", "in_between.png", "reliability.png", "evaluation.md"):
        assert (out / name).stat().st_size > 200, name
    assert list((out / "tb").glob("events*"))


@pytest.mark.parametrize("args, needle", [
    (["ood", "--ood", "nowhere"], "--ood='nowhere'"),
    (["--eps=-1/255"], "eps='-1/255' is invalid"),
    (["--eps", "-0.1"], "eps='-0.1' is invalid"),
    (["volume"], "suite 'volume' is unknown"),
    (["--format", "official"], "needs --model"),
])
def test_bad_input_is_one_line_and_exit_2(finished_run, tmp_path, capsys, args, needle):
    run, _ = finished_run
    try:
        status = run_evaluate([run, *args, "--out", tmp_path])
    except SystemExit as stop:  # argparse's own checks
        status = stop.code
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and needle in err[0], err


def test_a_run_folder_that_does_not_exist_is_named_as_missing(tmp_path, capsys):
    assert run_evaluate([tmp_path / "nowhere"]) == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and "nowhere" in line and "no such folder or file" in line


def test_every_figure_names_the_checkpoint_it_shows(tmp_path):
    results = {"checkpoint": "runs/x/regularizer=cutmix/best.pt", "epoch": 7,
               "occlusion": {"sizes": [0, 4], "centre_top1_err": [10, 20], "boundary_top1_err": [90, 10]},
               "in-between": {"pairs": 100, "mixup": {"lam": [0, 1], "neither_err": [1, 2]},
                              "cutmix": {"lam": [1, 0], "neither_err": [1, 1]}},
               "calibration": {"all": {"ece": 3.0}, "reliability": [(0.5, 0.4, 3), (0.9, 0.95, 5)]}}
    titles = evaluate.figures(tmp_path, results)
    assert set(titles) == {"occlusion.png", "in_between.png", "reliability.png"}
    assert all("runs/x/regularizer=cutmix/best.pt (epoch 7)" in t for t in titles.values())
    assert all((tmp_path / name).stat().st_size > 1000 for name in titles)


def test_an_empty_ood_folder_is_refused(finished_run, tmp_path, capsys):
    run, _ = finished_run
    (tmp_path / "empty" / "class").mkdir(parents=True)
    assert run_evaluate([run, "ood", "--ood", tmp_path / "empty", "--out", tmp_path / "o"]) == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and "holds no images" in line


def write_official(path, model: torch.nn.Module, arch: str) -> None:
    """A file as the authors' train.py saves it: DataParallel's 'module.' on every key."""
    torch.save({"epoch": 299, "arch": arch, "best_err1": 14.23, "best_err5": 2.97,
                "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()},
                "optimizer": {"state": {}, "param_groups": [{"lr": 0.0025, "momentum": 0.9}]}}, path)


def test_an_authors_pyramidnet_file_loads_into_ours_and_gives_the_same_logits(tmp_path):
    theirs = randomized(AuthorsPyramidNet(depth=20, alpha=24, num_classes=10))
    write_official(tmp_path / "model_best.pth.tar", theirs, "pyramidnet")
    ours = load_official(tmp_path / "model_best.pth.tar", "pyramidnet", depth=20, alpha=24, bottleneck=True)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-4)
    with pytest.raises(ConfigError, match=r"its key layer1\.0\.conv1\.weight \(20, 16, 1, 1\) does not fit resnet110"):
        load_official(tmp_path / "model_best.pth.tar", "resnet110")
    with pytest.raises(ConfigError, match=r"its key layer1\.0\.conv1\.weight \(20, 16, 1, 1\) does not fit pyramidnet"):
        load_official(tmp_path / "model_best.pth.tar", "pyramidnet", depth=20, alpha=48, bottleneck=True)


def test_an_authors_imagenet_resnet_file_loads_with_torchvisions_names(tmp_path):
    theirs = randomized(torchvision.models.resnet18(num_classes=7))
    write_official(tmp_path / "resnet.pth.tar", theirs, "resnet")
    ours = load_official(tmp_path / "resnet.pth.tar", "timm_resnet", variant="resnet18")
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-4)


def test_the_authors_cifar_resnet_names_map_one_to_one_onto_ours():
    model = create_model("cifar_resnet", 10, depth=20, bottleneck=False)
    theirs = ["conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer1.0.bn2.bias",
              "layer2.0.downsample.0.weight", "layer2.0.downsample.1.weight", "layer3.2.conv2.weight", "fc.bias"]
    mapped = [our_key(model, k) for k in theirs]
    assert mapped == ["stem.0.weight", "stem.1.running_mean", "stages.0.0.branch.0.weight", "stages.0.0.branch.4.bias",
                      "stages.1.0.shortcut.0.weight", "stages.1.0.shortcut.1.weight", "stages.2.2.branch.3.weight",
                      "head.2.bias"]
    assert set(mapped) <= set(model.state_dict())


def test_the_report_puts_our_evaluations_beside_tables_11_and_12(tmp_path):
    from test_report import fake_result, write_runs

    exp = "+experiment=imagenet_resnet50"
    runs = [fake_result([exp, "regularizer=cutmix"], 21.0, 21.5), fake_result([exp, "regularizer=baseline"], 23, 24)]
    cifar = [fake_result(["+experiment=cifar100_pyramidnet", "regularizer=cutmix"], 15, 15)]
    write_runs(tmp_path / "runs", runs + cifar)
    sets = {"uniform": {"tnr_at_95_tpr": 99.0, "auroc": 99.5, "detection_acc": 98.0}}
    evaluations = [
        {"clean": {"top1_err": 21.5}, "fgsm": {"eps": [8 / 255], "top1_acc": [30.0]},
         "occlusion": {"sizes": [0, 112, 224], "centre_top1_err": [21, 40, 99], "boundary_top1_err": [99, 50, 21]},
         "in-between": {"mixup": {"lam": [0, 1], "neither_err": [5, 5]},
                        "cutmix": {"lam": [1, 0], "neither_err": [4, 4]}}},
        {"clean": {"top1_err": 24.0}, "fgsm": {"eps": [0.01, 8 / 255, 16 / 255], "top1_acc": [20.0, 8.0, 3.0]}},
        {"ood": {"sets": sets, "mean": sets["uniform"]}},
    ]
    for i, e in enumerate(evaluations):
        (tmp_path / "runs" / f"run{i}" / "evaluation.json").write_text(json.dumps(e))
    summary = report.generate([str(tmp_path / "runs")], tmp_path / "out")
    t11 = (tmp_path / "out" / "table11.md").read_text()
    assert "| CutMix | 78.6 | 78.50 (n=1) | 31.0 | 30.00 (n=1) | 1 |" in t11
    assert "| Baseline | 76.3 | 76.00 (n=1) | 8.2 | 8.00 (n=1) | 1 |" in t11 and "| Mixup | 77.4 | not run |" in t11
    t12 = (tmp_path / "out" / "table12.md").read_text()
    uniform = next(line for line in t12.splitlines() if line.startswith("| uniform |"))
    assert uniform.endswith("| not run | not run | not run | 99.0 / 99.5 / 98.0 |")
    assert "figure5_occlusion.png" in summary["files"] and (tmp_path / "out" / "figure5_in_between.png").is_file()


def test_reproduce_table11_evaluates_the_runs_it_finds_and_names_the_missing(tmp_path, capsys):
    from test_report import fake_result, write_runs

    write_runs(tmp_path / "runs", [fake_result(["+experiment=imagenet_resnet50", "regularizer=cutmix"], 21, 21)])
    assert reproduce.main(["table11", "--dry-run", "--runs-dir", str(tmp_path / "runs"), "--pairs", "50"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    line = lines[lines.index("# CutMix") + 1]
    assert shlex.split(line)[1:3] == ["-m", "cutmix_repro.evaluate"] and "fgsm" in line and "--pairs 50" in line
    assert "Baseline, Mixup, Cutout" in captured.err and "reproduce table3" in captured.err


def test_noise_sets_are_odins():
    uniform, gaussian = ood.noise_images("uniform", 2000, (3, 4, 4)), ood.noise_images("gaussian", 2000, (3, 4, 4))
    assert 0 <= uniform.min() and uniform.max() <= 1 and abs(uniform.mean().item() - 0.5) < 0.01
    assert 0 <= gaussian.min() and gaussian.max() <= 1 and (gaussian == 0).float().mean() > 0.25, "N(0.5, 1) clipped"
    assert Image  # imported for fakedata's JPEGs


# --- the suites on constructed data, where the right answer and a plausible wrong one differ ------------------
MEAN, STD = (0.3, 0.4, 0.5), (0.2, 0.25, 0.3)  # not 0.5 / 0.5: pixel and normalised units differ


def bundle(images: torch.Tensor, labels: torch.Tensor, mean=MEAN, std=STD):
    """A data set of these uint8 test images (the training split is the same images)."""
    from cutmix_repro.data.loaders import tensor_bundle

    return tensor_bundle("constructed", (images, labels, images, labels), int(labels.max()) + 1, mean, std,
                         padding=0, hflip=False, batch_size=64)


def suite_args(**changes):
    import argparse

    defaults = dict(eps=[8 / 255], occlusion_sizes=None, pairs=100, ood=[], ood_crop=[], noise_count=50,
                    batch_size=64)
    return argparse.Namespace(**{**defaults, **changes})


class MeanBrightness(torch.nn.Module):
    """Class 0 when the image's mean pixel (in [0, 1], the normalisation undone inside) is above 0.5."""

    def forward(self, x):
        pixels = x * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
        margin = pixels.mean((1, 2, 3)) - 0.5
        return 50 * torch.stack([margin, -margin], 1)


def test_fgsm_moves_each_pixel_by_eps_in_pixel_units_with_the_normalisation_inside_the_model():
    # grey images of class 0, brighter than 0.5 by 1.5, 3.5, 5.5, 9.5 and 20.5 levels of 1/255: FGSM darkens every
    # pixel by ε, so at ε = 8/255 the first three flip and 40% stay right, at 4/255 60%. (An attack in normalised
    # units would move pixels by ε·std, about ε/4: 80% and 100% right.)
    levels = torch.tensor([129, 131, 133, 137, 148], dtype=torch.uint8)
    images = levels.view(-1, 1, 1, 1).expand(-1, 3, 8, 8).clone()
    data = bundle(images, torch.zeros(5, dtype=torch.long))
    out = evaluate.run_suites(MeanBrightness(), data, ["fgsm"], suite_args(eps=[0, 4 / 255, 8 / 255]),
                              torch.device("cpu"))
    assert out["fgsm"]["top1_acc"] == pytest.approx([100.0, 60.0, 40.0])


def test_pixels_are_the_data_sets_own_and_the_pixel_model_normalises_inside():
    from cutmix_repro.evaluation.pixels import PixelModel

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (16, 3, 8, 8), generator=g, dtype=torch.uint8)
    data = bundle(images, torch.arange(16) % 2)
    normalised, _ = next(iter(data.val))
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 64, 2))
    pixel = PixelModel(linear, MEAN, STD)
    assert torch.equal(pixel.to_pixels(normalised), images.float() / 255), "the stored pixels, bit for bit"
    x = images.float() / 255
    by_hand = linear((x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1))
    assert torch.allclose(pixel(x), by_hand, atol=1e-6)


def test_fgsm_suite_equals_an_independent_fgsm_on_the_stored_pixels():
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (64, 3, 4, 4), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 3, (64,), generator=g)
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 3))
    out = evaluate.run_suites(linear, bundle(images, labels), ["fgsm"], suite_args(), torch.device("cpu"))
    x = (images.float() / 255).requires_grad_(True)
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    F.cross_entropy(linear((x - mean) / std), labels).backward()
    attacked = (x + 8 / 255 * x.grad.sign()).clamp(0, 1).detach()
    expected = (linear((attacked - mean) / std).argmax(1) == labels).float().mean() * 100
    assert out["fgsm"]["top1_acc"][0] == pytest.approx(float(expected))


def test_in_between_counts_only_predictions_of_neither_class_and_draws_the_pairs_asked_for():
    logits = torch.eye(4)[torch.tensor([0, 1, 2, 3])]  # predictions 0, 1, 2, 3
    ya, yb = torch.tensor([0, 0, 0, 1]), torch.tensor([1, 1, 1, 2])
    assert int(occlusion.neither(logits, ya, yb)) == 2, "prediction 1 is B's class, 0 A's: both count as one of them"
    targets = torch.tensor([0, 1, 1, 2, 2, 2])
    a, b = occlusion.in_between_pairs(targets, 500)
    assert len(a) == len(b) == 500 and (targets[a] != targets[b]).all(), "500 pairs from 6 images, each of two classes"
    with pytest.raises(ValueError, match="single class"):
        occlusion.in_between_pairs(torch.zeros(5, dtype=torch.long), 10)


def test_ece_uses_15_bins():
    # confidences 0.62 (always right) and 0.68 (never right): one bin of 10 (0.6–0.7), two of 15 (0.6–0.667–0.733)
    probs = torch.tensor([[0.62, 0.38]] * 50 + [[0.68, 0.32]] * 50)
    targets = torch.tensor([0] * 50 + [1] * 50)
    assert calibration.ece(probs, targets) == pytest.approx(0.5 * 38 + 0.5 * 68, abs=1e-4)
    assert calibration.ece(probs, targets, bins=10) == pytest.approx(15.0, abs=1e-4)


def test_ece_equals_torchmetrics_also_with_confidences_on_bin_edges():
    from helpers import needs

    torchmetrics = needs("torchmetrics")
    g = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(300, 10, generator=g) * 3, torch.randint(10, (300,), generator=g)
    edges = torch.tensor([[0.6, 0.4]] * 30 + [[1.0, 0.0]] * 20 + [[0.2, 0.8]] * 14)
    edge_targets = torch.tensor([0] * 20 + [1] * 10 + [0] * 15 + [1] * 5 + [0] * 7 + [1] * 7)
    # 32 images of confidence exactly on the edge 9/15, right half the time; 32 of 0.62, always right: with
    # [lo, hi) the edge joins the 0.62 bin (ECE 14.00%), with Guo et al.'s (lo, hi] it stays apart (24.00%)
    c = torch.cat([torch.full((32,), float(torch.linspace(0, 1, 16)[9])), torch.full((32,), 0.62)])
    on_edge = torch.stack([c, 1 - c], 1)
    on_edge_targets = torch.cat([torch.arange(32) % 2, torch.zeros(32, dtype=torch.long)])
    for probs, t in ((logits.softmax(1), targets), (edges, edge_targets), (on_edge, on_edge_targets)):
        theirs = torchmetrics.functional.classification.multiclass_calibration_error(
            probs, t, num_classes=probs.shape[1], n_bins=15, norm="l1")
        assert calibration.ece(probs, t) == pytest.approx(100 * float(theirs), abs=1e-5)
    assert calibration.ece(on_edge, on_edge_targets) == pytest.approx(14.0, abs=1e-4)


class Lookup(torch.nn.Module):
    """Logits from a table, by the image's grey level (image i is all level i)."""

    def __init__(self, table):
        super().__init__()
        self.table = table

    def forward(self, x):
        level = ((x[:, 0, 0, 0] * STD[0] + MEAN[0]) * 255).round().long()
        return self.table[level]


def test_the_temperature_is_fitted_on_the_even_half_and_reported_on_the_odd_half():
    # even images: logits (4, 0), 88% of them of class 0 → the NLL is least at T = 4 / logit(0.88) = 2.008;
    # odd images: the same logits, 60% of class 0 → T = 9.87. All together would give a value in between.
    n = 200
    labels = torch.ones(n, dtype=torch.long)
    labels[0::2][:88] = 0
    labels[1::2][:60] = 0
    images = torch.arange(n, dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 3, 2, 2).clone()
    model = Lookup(torch.tensor([[4.0, 0.0]] * n))
    out = evaluate.run_suites(model, bundle(images, labels), ["calibration"], suite_args(), torch.device("cpu"))
    c = out["calibration"]
    assert c["temperature"] == pytest.approx(4 / np.log(0.88 / 0.12), rel=5e-3)
    odd = torch.tensor([[4.0, 0.0]] * 100) / c["temperature"]
    assert c["held_out_scaled"]["nll"] == pytest.approx(float(F.cross_entropy(odd, labels[1::2])), rel=1e-4)


def test_an_authors_file_with_a_weight_missing_is_refused_naming_it(tmp_path):
    theirs = randomized(AuthorsPyramidNet(depth=20, alpha=24, num_classes=10))
    state = {f"module.{k}": v for k, v in theirs.state_dict().items() if k != "layer2.1.bn2.running_var"}
    torch.save({"epoch": 1, "state_dict": state}, tmp_path / "partial.pth.tar")
    with pytest.raises(ConfigError, match=r"it has no weight for stages\.1\.1\.branch\.\d\.running_var"):
        load_official(tmp_path / "partial.pth.tar", "pyramidnet", depth=20, alpha=24, bottleneck=True)
