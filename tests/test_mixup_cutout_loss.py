"""mixup, Cutout, their combination, and the mixed loss (paper §3.1, §4.1; the authors' train.py)."""

import pytest
import torch
import torch.nn.functional as F

from cutmix_repro.regularizers import (
    Baseline,
    Compose,
    CutMix,
    Cutout,
    MixedBatch,
    Mixup,
    mixed_cross_entropy,
)


def soft_targets(out: MixedBatch, num_classes: int, label_smoothing: float = 0.0) -> torch.Tensor:
    """The mixed soft target λ·onehot(y_a) + (1−λ)·onehot(y_b), each smoothed if asked."""
    def smooth(y):
        return F.one_hot(y, num_classes).float() * (1 - label_smoothing) + label_smoothing / num_classes

    lam = out.lam.float().view(-1, 1) if isinstance(out.lam, torch.Tensor) else out.lam
    return lam * smooth(out.targets_a) + (1 - lam) * smooth(out.targets_b)


def test_mixup_is_lambda_x_plus_one_minus_lambda_partner():
    x = torch.randn(9, 3, 8, 8)
    out = Mixup(alpha=1.0)(x.clone(), torch.arange(9))
    perm = out.targets_b
    assert torch.allclose(out.inputs, out.lam * x + (1 - out.lam) * x[perm], atol=1e-6)


def test_mixup_probability_semantics_match_cutmix():
    x = torch.randn(4, 3, 8, 8)
    out = Mixup(prob=0.0)(x.clone(), torch.arange(4))
    assert torch.equal(out.inputs, x) and out.lam == 1.0
    mixer = Mixup(prob=0.5)
    mixed = sum(mixer(torch.randn(2, 1, 4, 4), torch.arange(2)).lam < 1 for _ in range(2000))
    assert 900 < mixed < 1100


def test_mixup_elem_mode_has_one_lambda_per_sample():
    x = torch.randn(16, 3, 8, 8)
    out = Mixup(mode="elem")(x.clone(), torch.arange(16))
    lam = out.lam.view(-1, 1, 1, 1)
    assert out.lam.shape == (16,) and out.lam.unique().numel() > 8
    assert torch.allclose(out.inputs, lam * x + (1 - lam) * x[out.targets_b], atol=1e-6)


def test_mixup_on_uint8_rounds_back_to_uint8():
    x = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    out = Mixup()(x.clone(), torch.arange(4))
    expect = (out.lam * x.float() + (1 - out.lam) * x[out.targets_b].float()).round()
    assert out.inputs.dtype == torch.uint8 and torch.equal(out.inputs.float(), expect)


def hole_box(mask):
    rows = mask.any(1).nonzero().flatten()
    cols = mask.any(0).nonzero().flatten()
    y1, y2, x1, x2 = rows.min().item(), rows.max().item() + 1, cols.min().item(), cols.max().item() + 1
    assert mask[y1:y2, x1:x2].all() and mask.sum() == (y2 - y1) * (x2 - x1)
    return y1, y2, x1, x2


def test_cutout_zeroes_one_clipped_square_per_image_and_keeps_labels():
    x = torch.ones(64, 3, 32, 32)
    y = torch.arange(64)
    out = Cutout(size=16)(x, y)
    assert out.lam == 1.0 and torch.equal(out.targets_a, y) and torch.equal(out.targets_b, y)
    holes = out.inputs[:, 0] == 0
    assert torch.equal(holes.unsqueeze(1).expand_as(out.inputs), out.inputs == 0), "all channels cut"
    full = 0
    boxes = set()
    for i in range(64):
        y1, y2, x1, x2 = hole_box(holes[i])
        assert y2 - y1 <= 16 and x2 - x1 <= 16
        full += (y2 - y1, x2 - x1) == (16, 16)
        boxes.add((y1, x1))
    assert full > 10, "interior centres give a full 16×16 square"
    assert len(boxes) > 32, "each image draws its own centre"


def test_cutout_prob_and_bad_size():
    x = torch.ones(200, 1, 8, 8)
    out = Cutout(size=4, prob=0.5)(x, torch.arange(200))
    cut = (out.inputs == 0).flatten(1).any(1).float().mean().item()
    assert 0.35 < cut < 0.65
    assert (Cutout(size=4, prob=0.0)(torch.ones(5, 1, 8, 8), torch.arange(5)).inputs == 1).all()
    with pytest.raises(ValueError, match="size"):
        Cutout(size=0)


def test_cutout_then_mixup_composes_and_rejects_mixing_first():
    x = torch.ones(8, 3, 16, 16)
    out = Compose(Cutout(size=8), Mixup())(x, torch.arange(8))
    assert out.lam < 1 and (out.inputs < 1).any()
    with pytest.raises(ValueError, match="label-preserving"):
        Compose(CutMix(), Mixup())(torch.randn(8, 3, 16, 16), torch.arange(8))


def test_baseline_returns_the_batch_unchanged():
    x = torch.randn(3, 3, 4, 4)
    out = Baseline()(x, torch.arange(3))
    assert out.inputs is x and out.lam == 1.0


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("elem", [False, True])
def test_mixed_loss_equals_weighted_ce_and_soft_target_ce(smoothing, elem):
    torch.manual_seed(0)
    n, classes = 10, 7
    logits = torch.randn(n, classes)
    y_a, y_b = torch.randint(classes, (n,)), torch.randint(classes, (n,))
    lam = torch.rand(n) if elem else 0.3
    out = MixedBatch(torch.empty(0), y_a, y_b, lam)
    loss = mixed_cross_entropy(logits, out, label_smoothing=smoothing)
    ce_a = F.cross_entropy(logits, y_a, reduction="none", label_smoothing=smoothing)
    ce_b = F.cross_entropy(logits, y_b, reduction="none", label_smoothing=smoothing)
    assert torch.allclose(loss, (lam * ce_a + (1 - lam) * ce_b).mean(), atol=1e-6)
    soft = soft_targets(out, classes, label_smoothing=smoothing)
    assert torch.allclose(soft.sum(1), torch.ones(n))
    assert torch.allclose(loss, -(soft * logits.log_softmax(1)).sum(1).mean(), atol=1e-6)
    assert torch.allclose(loss, F.cross_entropy(logits, soft), atol=1e-6)


def test_unmixed_loss_is_plain_cross_entropy():
    logits, y = torch.randn(6, 4), torch.randint(4, (6,))
    out = Baseline()(torch.empty(6), y)
    assert torch.allclose(mixed_cross_entropy(logits, out), F.cross_entropy(logits, y))
