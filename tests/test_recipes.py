"""The paper's recipes (REFERENCE.md §2) as the experiment configs compose them."""

import pytest
import torch
from hydra.utils import instantiate
from torchvision import transforms as T

from cutmix_repro.data.transforms import (
    CIFAR_MEAN,
    CIFAR_STD,
    Lighting,
    imagenet_eval_transform,
    imagenet_train_transform,
)
from cutmix_repro.paper import compose


def lr_per_epoch(cfg):
    params = [torch.nn.Parameter(torch.zeros(1))]
    optimizer = instantiate(cfg.optimizer)(params=params)
    scheduler = instantiate(cfg.scheduler)(optimizer=optimizer, epochs=cfg.trainer.epochs)
    lrs = []
    for _ in range(cfg.trainer.epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return optimizer, lrs


@pytest.mark.parametrize("experiment, lr, prob", [("cifar100_pyramidnet", 0.25, 0.5), ("cifar10_pyramidnet", 0.25, 0.5),
                                                  ("cifar100_pyramidnet110", 0.25, 0.5),
                                                  ("cifar100_resnet110", 0.1, 1.0)])
def test_cifar_recipe(experiment, lr, prob):
    cfg = compose([f"+experiment={experiment}"])
    assert cfg.trainer.epochs == 300 and cfg.trainer.batch_size == 64 and cfg.trainer.lr == lr
    assert cfg.regularizer.alpha == 1.0 and cfg.regularizer.prob == prob and cfg.regularizer.correct_lam
    optimizer, lrs = lr_per_epoch(cfg)
    group = optimizer.param_groups[0]
    assert group["momentum"] == 0.9 and group["nesterov"] and group["weight_decay"] == 1e-4
    assert lrs[0] == lrs[149] == lr
    assert lrs[150] == pytest.approx(lr * 0.1) and lrs[224] == pytest.approx(lr * 0.1)
    assert lrs[225] == pytest.approx(lr * 0.01) and lrs[299] == pytest.approx(lr * 0.01)
    assert cfg.dataset.padding == 4 and cfg.dataset.hflip and cfg.cutout_size == 16


@pytest.mark.parametrize("experiment, model", [("imagenet_resnet50", "resnet50"), ("imagenet_resnet101", "resnet101"),
                                               ("imagenet_resnext101", "resnext101_32x4d")])
def test_imagenet_recipe(experiment, model):
    cfg = compose([f"+experiment={experiment}"])
    assert cfg.model.name == model and cfg.trainer.epochs == 300
    assert cfg.trainer.batch_size == 256 and cfg.trainer.lr == 0.1 and cfg.regularizer.prob == 1.0
    assert cfg.cutout_size == 112 and cfg.dataset.image_size == 224 and cfg.dataset.resize == 256
    _, lrs = lr_per_epoch(cfg)
    for epoch, expected in ((0, 0.1), (74, 0.1), (75, 0.01), (149, 0.01), (150, 0.001), (225, 1e-4), (299, 1e-4)):
        assert lrs[epoch] == pytest.approx(expected), epoch


def test_shortened_runs_keep_the_shape_of_the_schedule():
    cfg = compose(["+experiment=cifar100_pyramidnet", "trainer.epochs=4"])
    _, lrs = lr_per_epoch(cfg)
    assert lrs == pytest.approx([0.25, 0.25, 0.025, 0.0025])


def test_cifar_normalisation_constants():
    assert CIFAR_MEAN == pytest.approx((125.3 / 255, 123.0 / 255, 113.9 / 255))
    assert CIFAR_STD == pytest.approx((63.0 / 255, 62.1 / 255, 66.7 / 255))


def test_imagenet_augmentation_is_the_official_one():
    train = imagenet_train_transform().transforms
    kinds = [type(t) for t in train]
    assert kinds == [T.RandomResizedCrop, T.RandomHorizontalFlip, T.ColorJitter, T.ToTensor, Lighting, T.Normalize]
    assert train[0].size == (224, 224)
    jitter = train[2]
    assert jitter.brightness == jitter.contrast == jitter.saturation == (0.6, 1.4) and jitter.hue is None
    assert train[4].std == 0.1
    evaluation = imagenet_eval_transform().transforms
    assert [type(t) for t in evaluation] == [T.Resize, T.CenterCrop, T.ToTensor, T.Normalize]
    assert evaluation[0].size == 256 and evaluation[1].size == (224, 224)


def test_table5_switches_reach_the_model():
    assert compose(["+experiment=cifar100_pyramidnet", "model.shakedrop=true"]).model.shakedrop
    cfg = compose(["+experiment=cifar100_pyramidnet", "regularizer=cutout_mixup"])
    reg = instantiate(cfg.regularizer)
    assert reg.first.size == 16 and reg.then.alpha == 1.0
    cfg = compose(["+experiment=imagenet_resnet50", "regularizer=cutout"])
    assert instantiate(cfg.regularizer).size == 112
