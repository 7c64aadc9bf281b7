"""The paper's recipes (§4.1.1 ImageNet, §4.1.2 CIFAR; kept in paper_tables.yaml) as the experiment
configs compose them, the learning-rate schedule of the authors' train.py, and what reaches the loss."""

import math

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torchvision import transforms as T

from cutmix_repro.config import compose
from cutmix_repro.data.transforms import (
    CIFAR_MEAN,
    CIFAR_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    Lighting,
    imagenet_eval_transform,
    imagenet_train_transform,
)
from cutmix_repro.engine.step import StepOptions, train_one_epoch
from cutmix_repro.models import create_model
from cutmix_repro.paper import load_tables
from cutmix_repro.regularizers import Baseline

FACTS = load_tables()
RECIPES = FACTS["recipes"]


def lr_per_epoch(cfg):
    optimizer = instantiate(cfg.optimizer, model=create_model("cifar_resnet", 2, depth=8, bottleneck=False))
    scheduler = instantiate(cfg.scheduler, optimizer=optimizer, epochs=cfg.trainer.epochs)
    lrs = []
    for _ in range(cfg.trainer.epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return optimizer, lrs


def official_lr(recipe: dict, epoch: int, epochs: int) -> float:
    """The authors' adjust_learning_rate: CIFAR ×0.1 at epoch // (epochs·0.5) and // (epochs·0.75); ImageNet at
    300 epochs every 75."""
    if len(recipe["lr_decay_epochs"]) == 2:
        return recipe["lr"] * 0.1 ** (epoch // (epochs * 0.5)) * 0.1 ** (epoch // (epochs * 0.75))
    return recipe["lr"] * 0.1 ** (epoch // 75)


@pytest.mark.parametrize("experiment", list(RECIPES))
def test_each_experiment_composes_the_papers_recipe(experiment):
    recipe = RECIPES[experiment]
    cfg = compose([f"+experiment={experiment}"])
    assert cfg.trainer.epochs == recipe["epochs"] and cfg.trainer.batch_size == recipe["batch_size"]
    assert cfg.trainer.lr == recipe["lr"] and cfg.cutout_size == recipe["cutout_size"]
    assert cfg.regularizer.alpha == recipe["cutmix_alpha"] and cfg.regularizer.prob == recipe["cutmix_prob"]
    assert cfg.regularizer.correct_lam
    optimizer, lrs = lr_per_epoch(cfg)
    group, sgd = optimizer.param_groups[0], FACTS["optimizer"]
    assert type(optimizer).__name__ == sgd["name"] and group["momentum"] == sgd["momentum"]
    assert group["nesterov"] == sgd["nesterov"] and group["weight_decay"] == sgd["weight_decay"]
    decays = [e for e in range(1, len(lrs)) if lrs[e] < lrs[e - 1]]
    assert decays == recipe["lr_decay_epochs"]
    assert lrs == pytest.approx([official_lr(recipe, e, 300) for e in range(300)])


@pytest.mark.parametrize("epochs", [1, 2, 3, 4, 7, 10, 30, 101])
def test_a_shortened_cifar_run_decays_where_the_authors_code_would(epochs):
    cfg = compose(["+experiment=cifar100_pyramidnet", f"trainer.epochs={epochs}"])
    _, lrs = lr_per_epoch(cfg)
    assert lrs == pytest.approx([official_lr(RECIPES["cifar100_pyramidnet"], e, epochs) for e in range(epochs)])


@pytest.mark.parametrize("experiment", ["imagenet_resnet50", "cifar100_pyramidnet", "cifar100_resnet110"])
@pytest.mark.parametrize("epochs", [1, 2, 3])
def test_a_shortened_run_never_decays_the_lr_before_its_first_epoch(experiment, epochs):
    cfg = compose([f"+experiment={experiment}", f"trainer.epochs={epochs}"])
    _, lrs = lr_per_epoch(cfg)
    assert lrs[0] == RECIPES[experiment]["lr"]
    if epochs == 1:
        assert lrs == [RECIPES[experiment]["lr"]]


def test_the_cifar_augmentation_constants():
    aug = FACTS["augmentation"]["cifar"]
    assert CIFAR_MEAN == pytest.approx(tuple(m / 255 for m in aug["mean"]))
    assert CIFAR_STD == pytest.approx(tuple(s / 255 for s in aug["std"]))
    for experiment in ("cifar100_pyramidnet", "cifar10_pyramidnet"):
        cfg = compose([f"+experiment={experiment}"])
        assert cfg.dataset.padding == aug["padding"] and cfg.dataset.hflip == aug["hflip"]


def test_imagenet_augmentation_is_the_official_one():
    aug = FACTS["augmentation"]["imagenet"]
    cfg = compose(["+experiment=imagenet_resnet50"])
    assert cfg.dataset.image_size == aug["crop"] and cfg.dataset.resize == aug["resize"]
    train = imagenet_train_transform(cfg.dataset.image_size).transforms
    kinds = [type(t) for t in train]
    assert kinds == [T.RandomResizedCrop, T.RandomHorizontalFlip, T.ColorJitter, T.ToTensor, Lighting, T.Normalize]
    assert train[0].size == (aug["crop"], aug["crop"])
    jitter, spread = train[2], (1 - aug["jitter"], 1 + aug["jitter"])
    assert jitter.brightness == jitter.contrast == jitter.saturation == pytest.approx(spread) and jitter.hue is None
    assert train[4].std == aug["lighting_std"]
    assert tuple(train[5].mean) == tuple(aug["mean"]) == IMAGENET_MEAN and tuple(train[5].std) == IMAGENET_STD
    evaluation = imagenet_eval_transform(cfg.dataset.image_size, cfg.dataset.resize).transforms
    assert [type(t) for t in evaluation] == [T.Resize, T.CenterCrop, T.ToTensor, T.Normalize]
    assert evaluation[0].size == aug["resize"] and evaluation[1].size == (aug["crop"], aug["crop"])


def test_lighting_adds_alexnets_pca_noise_one_rgb_shift_per_image():
    """AlexNet (Krizhevsky et al., 2012): add eigvec · (α ⊙ eigval), α ~ N(0, std²) per image."""
    aug = FACTS["augmentation"]["imagenet"]
    eigval, eigvec = torch.tensor(aug["pca_eigval"]), torch.tensor(aug["pca_eigvec"])
    img = torch.rand(3, 5, 4)
    torch.manual_seed(7)
    out = Lighting(aug["lighting_std"])(img)
    torch.manual_seed(7)
    alpha = torch.randn(3) * aug["lighting_std"]
    expected = eigvec @ (alpha * eigval)
    assert torch.allclose(out - img, expected.view(3, 1, 1).expand_as(img), atol=1e-6)
    shifts = []
    for _ in range(4000):
        shifts.append((Lighting(aug["lighting_std"])(torch.zeros(3, 1, 1))).flatten())
    coefficients = torch.linalg.solve(eigvec, torch.stack(shifts).T).T / eigval  # back to α
    assert coefficients.std(0) == pytest.approx(torch.full((3,), aug["lighting_std"]), rel=0.08)
    assert torch.equal(Lighting(0.0)(img), img)


def test_table5_switches_reach_the_model_and_the_regularizer():
    baselines = FACTS["baselines"]
    assert compose(["+experiment=cifar100_pyramidnet", "model.shakedrop=true"]).model.shakedrop
    cfg = compose(["+experiment=cifar100_pyramidnet", "regularizer=cutout_mixup"])
    reg = instantiate(cfg.regularizer)
    assert reg.first.size == 16 and reg.then.alpha == baselines["mixup_alpha"]
    cfg = compose(["+experiment=imagenet_resnet50", "regularizer=cutout"])
    assert instantiate(cfg.regularizer).size == 112


def test_label_smoothing_reaches_the_training_loss():
    """The config key becomes the step's option, and the step's loss is the smoothed cross-entropy."""
    cfg = compose(["+experiment=cifar100_pyramidnet", "label_smoothing=0.1"])
    assert StepOptions.from_config(cfg, torch.device("cpu"), progress=False).label_smoothing == 0.1
    model = create_model("cifar_resnet", num_classes=7, depth=8, bottleneck=False)
    batches = [(torch.randn(5, 3, 16, 16), torch.randint(7, (5,))), (torch.randn(3, 3, 16, 16), torch.randint(7, (3,)))]
    expected = {}
    for smoothing in (0.0, 0.1):
        with torch.no_grad():
            model.train()
            losses = [F.cross_entropy(model(x), y, label_smoothing=smoothing) * len(y) for x, y in batches]
        expected[smoothing] = float(sum(losses)) / 8
    reported = {}
    for smoothing in (0.0, 0.1):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # the weights stay as they are
        options = StepOptions(device=torch.device("cpu"), label_smoothing=smoothing)
        scaler = torch.amp.GradScaler("cpu", enabled=False)
        reported[smoothing] = train_one_epoch(model, batches, Baseline(), optimizer, scaler, options, 0)["loss"]
    assert reported[0.1] == pytest.approx(expected[0.1], rel=1e-5)
    assert reported[0.0] == pytest.approx(expected[0.0], rel=1e-5)
    assert not math.isclose(reported[0.1], reported[0.0], rel_tol=1e-3)
