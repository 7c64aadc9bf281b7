"""Feature-level CutMix and mixup (paper Table 3, Figure 3 right; Manifold Mixup)."""

import pytest
import torch

from cutmix_repro.models import create_model
from cutmix_repro.regularizers import FeatureCutMix, FeatureMixup, mixed_cross_entropy

# PyramidNet-11 with bottleneck blocks: tiny, but with a stem and three stages
TINY = dict(depth=11, alpha=12, bottleneck=True)
EXPECTED_SHAPES = {0: (3, 32, 32), 1: (16, 32, 32), 2: (80, 32, 32), 3: (96, 16, 16), 4: (112, 8, 8)}


def run_at(layer, regularizer):
    model = create_model("pyramidnet", num_classes=6, **TINY).eval()
    x, y = torch.randn(6, 3, 32, 32), torch.arange(6)  # label i = image i
    seen = {}
    batch = regularizer(x.clone(), y)
    mix_fn = batch.mix_fn

    def spy(features):
        seen["before"] = features.detach().clone()
        seen["after"] = mix_fn(features)
        return seen["after"]

    with torch.no_grad():
        if layer == 0:
            assert batch.mix_fn is None  # input-level: mixed before the model, like CutMix
            seen["before"], seen["after"] = x, batch.inputs
        else:
            assert batch.mix_layer == layer and torch.equal(batch.inputs, x)
            model(batch.inputs, mix_layer=batch.mix_layer, mix_fn=spy)
    return batch, seen


@pytest.mark.parametrize("layer", [0, 1, 2, 3, 4])
def test_feature_cutmix_pastes_one_box_of_the_partners_feature_map(layer):
    torch.manual_seed(layer)
    batch, seen = run_at(layer, FeatureCutMix(alpha=1.0, layers=layer))
    before, after = seen["before"], seen["after"]
    assert tuple(after.shape[1:]) == EXPECTED_SHAPES[layer]
    partner = before[batch.targets_b]
    own = after == before
    from_partner = after == partner
    assert (own | from_partner).all(), "every value is the image's own or its partner's"
    changed = (~own).any(1)  # (N, h, w): positions taken from the partner
    h, w = after.shape[2:]
    moved_area = None
    for i in range(after.shape[0]):
        if batch.targets_b[i] != i and changed[i].any():
            rows, cols = changed[i].any(1).nonzero(), changed[i].any(0).nonzero()
            box = (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1)
            moved_area = (box[1] - box[0]) * (box[3] - box[2])
            # λ is corrected from the area at the feature map's own resolution
            assert moved_area.item() <= round((1 - batch.lam) * h * w) + 1e-6
    if moved_area is not None:
        assert moved_area.item() == pytest.approx((1 - batch.lam) * h * w)


@pytest.mark.parametrize("layer", [1, 2, 3, 4])
def test_feature_mixup_blends_the_feature_map_at_that_layer(layer):
    torch.manual_seed(10 + layer)
    batch, seen = run_at(layer, FeatureMixup(alpha=1.0, layers=layer))
    before, after = seen["before"], seen["after"]
    assert tuple(after.shape[1:]) == EXPECTED_SHAPES[layer]
    expect = batch.lam * before + (1 - batch.lam) * before[batch.targets_b]
    assert torch.allclose(after, expect, atol=1e-5)


def test_layer_drawn_per_batch_from_the_given_set():
    reg = FeatureCutMix(layers=[1, 3])
    layers = {reg(torch.randn(2, 3, 8, 8), torch.arange(2)).mix_layer for _ in range(50)}
    assert layers == {1, 3}
    reg = FeatureMixup(layers=[0, 1, 2, 3, 4])
    drawn = [reg(torch.randn(2, 3, 8, 8), torch.arange(2)).mix_layer for _ in range(500)]
    assert {None, 1, 2, 3, 4} == set(drawn)  # None: index 0 mixes the input itself


def test_feature_mixing_trains_through_autograd():
    model = create_model("pyramidnet", num_classes=5, **TINY).train()
    batch = FeatureCutMix(layers=2)(torch.randn(4, 3, 32, 32), torch.arange(4))
    logits = model(batch.inputs, mix_layer=batch.mix_layer, mix_fn=batch.mix_fn)
    loss = mixed_cross_entropy(logits, batch)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("layers", [5, -1, [0, 7], []])
def test_feature_layer_outside_zero_to_four_is_rejected(layers):
    with pytest.raises(ValueError, match="layers"):
        FeatureCutMix(layers=layers)
