"""The paper's architectures (parameter counts of §4.1 and Tables 4, 6, kept in paper_tables.yaml),
their initialisation as in the authors' code, and the block regularizers of Table 5."""

import pytest
import torch
from timm.layers import DropBlock2d, DropPath

from cutmix_repro.config import compose, options
from cutmix_repro.models import ShakeDrop, arch_name, count_parameters, create_model, list_models, model_config
from cutmix_repro.models.layers import shakedrop_survivals
from cutmix_repro.paper import load_tables

FACTS = load_tables()["models"]
PRESETS = [name for name in FACTS if isinstance(FACTS[name], dict)]


@pytest.mark.parametrize("name", PRESETS)
def test_parameter_count_of_each_preset_is_the_papers_design_exactly(name):
    model = create_model(name, num_classes=FACTS[name]["classes"])
    assert count_parameters(model) == FACTS[name]["params"]
    assert model.arch_name == name


def test_basic_blocks_would_not_match_table_6():
    for name, cfg in (("pyramidnet110", dict(depth=110, alpha=64)), ("resnet110", dict(depth=110))):
        family = "pyramidnet" if name.startswith("pyramid") else "cifar_resnet"
        basic = count_parameters(create_model(family, 100, bottleneck=False, **cfg))
        assert abs(basic - FACTS[name]["basic_blocks"]) < 0.1e6, name


@pytest.mark.parametrize("name", [n for n in options("model")])
def test_a_preset_is_defined_once_in_its_config_and_the_factory_reads_it_as_hydra_does(name):
    assert model_config(name) == compose([f"model={name}"]).model
    assert name in list_models()


def test_the_model_is_named_by_its_real_shape():
    assert create_model("pyramidnet200", 100, depth=11).arch_name == "pyramidnet11"
    assert arch_name(compose(["model=pyramidnet200", "model.depth=110"]).model) == "pyramidnet110"
    assert arch_name(compose(["model=resnet101"]).model) == "resnet101"


@pytest.mark.parametrize("name, kwargs", [("cifar_resnet", {"depth": 20, "bottleneck": False}),
                                          ("cifar_resnet", {"depth": 11, "bottleneck": True}),
                                          ("pyramidnet", {"depth": 11, "alpha": 12, "bottleneck": True}),
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


@pytest.mark.parametrize("name", ["resnet50", "resnext101_32x4d", "pyramidnet110", "resnet110"])
def test_every_batchnorm_weight_starts_at_one_as_in_the_authors_code(name):
    """timm zero-initialises each block's last BatchNorm by default; the authors' ResNets do not."""
    model = create_model(name, num_classes=10)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(torch.equal(m.weight, torch.ones_like(m.weight)) for m in norms)
    assert all(torch.equal(m.bias, torch.zeros_like(m.bias)) for m in norms)


def test_unknown_model_and_bad_options_name_the_key_and_the_valid_choices():
    with pytest.raises(ValueError, match="pyramidnet200"):
        create_model("pyramidnet999", 10)
    with pytest.raises(ValueError, match=r"model\.depth=12 .*9n\+2"):
        create_model("pyramidnet", 10, depth=12, alpha=1, bottleneck=True)
    with pytest.raises(ValueError, match=r"model\.alpha: has no value"):
        create_model("pyramidnet", 10, depth=11, bottleneck=True)
    with pytest.raises(ValueError, match=r"model\.variant='resnet9x'"):
        create_model("timm_resnet", 10, variant="resnet9x")


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


def test_stochastic_depth_and_dropblock_follow_table5s_settings_and_train():
    baselines = load_tables()["baselines"]
    tiny = dict(depth=20, alpha=12, bottleneck=False)
    sd = create_model("pyramidnet", 10, drop_path_rate=baselines["drop_path_rate"], **tiny)
    rates = [m.drop_prob for m in sd.modules() if isinstance(m, DropPath)]
    assert max(rates) == pytest.approx(0.25) and rates == sorted(rates), "linear decay rule"
    db = create_model("pyramidnet", 10, dropblock=True, **tiny)
    blocks = [m for m in db.modules() if isinstance(m, DropBlock2d)]
    keep, size = baselines["dropblock_keep"], baselines["dropblock_size"]
    assert blocks and all(b.drop_prob == pytest.approx(1 - keep) and b.block_size == size for b in blocks)
    assert not any(isinstance(m, DropBlock2d) for m in db.stages[0].modules()), "only in the last two stages"
    for model in (sd, db, create_model("pyramidnet", 10, shakedrop=True, **tiny)):
        model.train()(torch.randn(2, 3, 32, 32)).sum().backward()
        model.eval()
        with torch.no_grad():
            assert torch.equal(model(torch.ones(1, 3, 32, 32)), model(torch.ones(1, 3, 32, 32)))
    timm_sd = create_model("resnet50", 10, drop_path_rate=0.1, dropblock=True)
    assert any(isinstance(m, DropPath) for m in timm_sd.modules())
    assert any(isinstance(m, DropBlock2d) for m in timm_sd.modules())


def test_compile_stages_compiles_each_stage_in_place_and_keeps_state_dict_keys():
    model = create_model("pyramidnet", 10, depth=11, alpha=12, bottleneck=True)
    keys = list(model.state_dict())
    model.compile_stages()
    assert all(stage._compiled_call_impl is not None for stage in model.stages)
    assert model.stem._compiled_call_impl is not None
    assert list(model.state_dict()) == keys, "checkpoints stay loadable without compile"
    timm_model = create_model("resnet50", 10)
    timm_model.compile_stages()
    assert timm_model.net.layer4._compiled_call_impl is not None and timm_model.stem._compiled_call_impl is not None
