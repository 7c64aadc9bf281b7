"""The paper's architectures (REFERENCE.md §4) and the block regularizers of Table 5."""

import pytest
import torch

from cutmix_repro.models import ShakeDrop, count_parameters, create_model, list_models
from cutmix_repro.models.layers import DropBlock2d, DropPath, shakedrop_survivals

EXACT = {  # REFERENCE.md §4, exact counts of the designs
    ("pyramidnet200", 100): 26_844_952,
    ("pyramidnet110", 100): 1_725_300,
    ("resnet110", 100): 1_170_868,
    ("resnet50", 1000): 25_557_032,
    ("resnet101", 1000): 44_549_160,
    ("resnext101_32x4d", 1000): 44_177_704,
}


@pytest.mark.parametrize("name, classes", list(EXACT))
def test_parameter_count_matches_reference_within_one_percent(name, classes):
    n = count_parameters(create_model(name, num_classes=classes))
    assert abs(n - EXACT[name, classes]) / EXACT[name, classes] < 0.01


def test_basic_blocks_would_not_match_table_6():
    # REFERENCE.md Table 6: basic blocks give 2.6M and 1.7M, which is why the paper's are bottlenecks
    assert abs(count_parameters(create_model("pyramidnet", 100, depth=110, alpha=64, bottleneck=False)) - 2.6e6) < 0.1e6
    assert abs(count_parameters(create_model("cifar_resnet", 100, depth=110, bottleneck=False)) - 1.7e6) < 0.1e6


@pytest.mark.parametrize("name, kwargs", [("cifar_resnet", {"depth": 20, "bottleneck": False}),
                                          ("cifar_resnet", {"depth": 11}),
                                          ("pyramidnet", {"depth": 11, "alpha": 12}),
                                          ("pyramidnet", {"depth": 14, "alpha": 12, "bottleneck": False})])
def test_cifar_models_map_images_to_logits_with_staged_structure(name, kwargs):
    model = create_model(name, num_classes=10, **kwargs)
    x = torch.randn(2, 3, 32, 32)
    assert model(x).shape == (2, 10)
    assert len(model.feature_blocks()) == 4  # stem + 3 stages


def test_timm_models_expose_the_same_structure():
    model = create_model("resnet50", num_classes=10)
    assert len(model.feature_blocks()) == 5  # stem + 4 stages
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 10)


def test_unknown_model_and_bad_depth_list_the_valid_choices():
    with pytest.raises(ValueError, match="pyramidnet200"):
        create_model("pyramidnet999", 10)
    with pytest.raises(ValueError, match="depth=12"):
        create_model("pyramidnet", 10, depth=12)
    with pytest.raises(ValueError, match="shakedrop"):
        create_model("resnet110", 10, shakedrop=True)
    assert set(list_models()) >= {"resnet110", "pyramidnet110", "pyramidnet200", "resnet50", "resnet101",
                                  "resnext101_32x4d", "cifar_resnet", "pyramidnet"}


def test_shakedrop_survival_decays_linearly_to_one_half():
    p = shakedrop_survivals(66)
    assert p[-1] == pytest.approx(0.5) and p[0] == pytest.approx(1 - 0.5 / 66)
    assert all(a > b for a, b in zip(p, p[1:]))
    model = create_model("pyramidnet200", 100, shakedrop=True)
    drops = [m.survival for m in model.modules() if isinstance(m, ShakeDrop)]
    assert len(drops) == 66 and drops == pytest.approx(p)


def test_shakedrop_test_output_equals_its_expectation():
    sd = ShakeDrop(survival=0.7)
    x = torch.randn(4, 8, 3, 3)
    assert torch.allclose(sd.eval()(x), 0.7 * x)
    sd.train()
    torch.manual_seed(0)
    mean = torch.stack([sd(x) for _ in range(4000)]).mean(0)
    assert torch.allclose(mean, 0.7 * x, atol=0.05)  # E[b + α − bα] = p


def test_shakedrop_backward_uses_beta_in_zero_one():
    sd = ShakeDrop(survival=0.0).train()  # always the perturbed path
    x = torch.ones(64, 2, requires_grad=True)
    sd(x).sum().backward()
    g = x.grad[:, 0]
    assert (g >= 0).all() and (g <= 1).all() and g.std() > 0.1
    assert torch.equal(x.grad[:, 0], x.grad[:, 1]), "β is drawn per sample"


def test_stochastic_depth_and_dropblock_options_build_every_table5_row():
    sd = create_model("pyramidnet", 10, depth=20, alpha=12, drop_path_rate=0.25)
    rates = [m.drop_prob for m in sd.modules() if isinstance(m, DropPath)]
    assert max(rates) == pytest.approx(0.25) and len(rates) >= 1
    db = create_model("pyramidnet", 10, depth=20, alpha=12, dropblock=True)
    blocks = [m for m in db.modules() if isinstance(m, DropBlock2d)]
    assert blocks and all(b.drop_prob == pytest.approx(0.1) and b.block_size == 4 for b in blocks)
    # only in the last two stages
    assert not any(isinstance(m, DropBlock2d) for m in db.stages[0].modules())
    for model in (sd, db, create_model("pyramidnet", 10, depth=20, alpha=12, shakedrop=True)):
        model.train()(torch.randn(2, 3, 32, 32)).sum().backward()
        model.eval()
        with torch.no_grad():
            assert torch.equal(model(torch.ones(1, 3, 32, 32)), model(torch.ones(1, 3, 32, 32)))
    timm_sd = create_model("resnet50", 10, drop_path_rate=0.1, dropblock=True)
    assert any(isinstance(m, DropPath) for m in timm_sd.modules())


def test_compile_stages_compiles_each_stage_in_place_and_keeps_state_dict_keys():
    model = create_model("pyramidnet", 10, depth=11, alpha=12)
    keys = list(model.state_dict())
    model.compile_stages()
    assert all(stage._compiled_call_impl is not None for stage in model.stages)
    assert model.stem._compiled_call_impl is not None
    assert list(model.state_dict()) == keys, "checkpoints stay loadable without compile"
    timm_model = create_model("resnet50", 10)
    timm_model.compile_stages()
    assert timm_model.net.layer4._compiled_call_impl is not None and timm_model.stem._compiled_call_impl is not None
