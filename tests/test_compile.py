"""A step that stays compiled and can be captured (issue: GPU readiness), checked on the CPU.

- ``capturable=True`` CutMix/mixup make their decision, λ and box on the device and, for the same
  draws, give exactly the pixels, λ and loss of the official slicing path;
- regularizer + model + loss compile into one graph (``fullgraph=True``; the ``aot_eager`` backend
  traces forward and backward as inductor would, without generating code);
- ``trainer.compile`` compiles a bounded number of graphs for every model and regularizer, with no
  graph break, and nothing after the first epoch; dynamo's recompile limit is a hard error;
- bf16 autocast: the classifier and metrics in fp32, feature maps keep their dtype.
"""

from __future__ import annotations

import os

import pytest
import torch
from helpers import fit_run, results, scalars
from torch._dynamo.utils import counters

from cutmix_repro.engine import records as R
from cutmix_repro.engine.compiled import GRAPHS_PER_MODULE, check_compile, compile_model, compiled_graphs
from cutmix_repro.engine.optim import sgd
from cutmix_repro.engine.step import StepOptions, evaluate, train_one_epoch
from cutmix_repro.engine.trainer import _set_determinism
from cutmix_repro.errors import ConfigError
from cutmix_repro.models import create_model
from cutmix_repro.regularizers import (
    Baseline,
    Compose,
    CutMix,
    Cutout,
    FeatureCutMix,
    FeatureMixup,
    Mixup,
    mixed_cross_entropy,
)

TINY_PYRAMID = dict(depth=11, alpha=12, bottleneck=True)
CUTMIX_OPTIONS = [{}, {"prob": 0.5}, {"center": "gaussian"}, {"box_size": 16}, {"box_size": 16, "correct_lam": False},
                  {"correct_lam": False}, {"label": "larger"}, {"label": "complete"}, {"alpha": 0.3, "prob": 0.7}]


@pytest.mark.parametrize("options", CUTMIX_OPTIONS, ids=str)
@pytest.mark.parametrize("shape", [(8, 3, 32, 32), (5, 2, 17, 24)])
def test_capturable_cutmix_gives_the_slicing_paths_pixels_lambda_and_loss_for_the_same_draws(options, shape):
    x, y = torch.randn(shape), torch.arange(shape[0])
    logits = torch.randn(shape[0], shape[0])
    unmixed = 0
    for seed in range(40):
        torch.manual_seed(seed)
        sliced = CutMix(**options)(x.clone(), y)
        torch.manual_seed(seed)
        masked = CutMix(**options, capturable=True)(x.clone(), y)
        assert isinstance(masked.lam, torch.Tensor) and masked.lam.dim() == 0 and masked.lam.device == x.device
        assert torch.equal(masked.inputs, sliced.inputs)
        assert float(masked.lam) == sliced.lam
        assert torch.equal(mixed_cross_entropy(logits, masked), mixed_cross_entropy(logits, sliced))
        if sliced.lam < 1:
            assert torch.equal(masked.targets_b, sliced.targets_b)
        unmixed += not torch.equal(sliced.inputs, x)
    assert unmixed > 0


@pytest.mark.parametrize("prob", [1.0, 0.5])
def test_capturable_mixup_gives_the_slicing_paths_pixels_lambda_and_loss_for_the_same_draws(prob):
    x, y, logits = torch.randn(6, 3, 8, 8), torch.arange(6), torch.randn(6, 6)
    decisions = set()
    for seed in range(30):
        torch.manual_seed(seed)
        plain = Mixup(alpha=0.7, prob=prob)(x.clone(), y)
        torch.manual_seed(seed)
        captured = Mixup(alpha=0.7, prob=prob, capturable=True)(x.clone(), y)
        assert torch.equal(captured.inputs, plain.inputs)
        assert float(captured.lam) == plain.lam
        assert torch.equal(mixed_cross_entropy(logits, captured), mixed_cross_entropy(logits, plain))
        decisions.add(plain.lam < 1)
    assert decisions == ({True, False} if prob < 1 else {True})


def test_capturable_cutmix_lambda_and_decision_keep_their_distributions():
    """The draws are the slicing path's, so are their laws: λ before correction ~ Beta(α, α), and
    prob = 0.5 mixes about half of the batches."""
    from scipy import stats

    mixer = CutMix(alpha=0.5, correct_lam=False, capturable=True)
    lams = torch.stack([mixer(torch.zeros(2, 1, 64, 64), torch.arange(2)).lam for _ in range(2000)])
    assert stats.kstest(lams.numpy(), stats.beta(0.5, 0.5).cdf).pvalue > 1e-3
    half = CutMix(prob=0.5, capturable=True)
    mixed = sum(bool(half(torch.zeros(2, 1, 8, 8), torch.arange(2)).lam < 1) for _ in range(2000))
    assert abs(mixed / 2000 - 0.5) < 0.05


def test_tensor_lambda_loss_has_no_branch_and_equals_the_float_path():
    from cutmix_repro.regularizers.base import MixedBatch

    logits, a, b = torch.randn(7, 5), torch.randint(0, 5, (7,)), torch.randint(0, 5, (7,))
    for lam in (1.0, 0.3, 0.0):
        as_float = mixed_cross_entropy(logits, MixedBatch(logits, a, b, lam), 0.1)
        as_tensor = mixed_cross_entropy(logits, MixedBatch(logits, a, b, torch.tensor(lam, dtype=torch.float64)), 0.1)
        assert torch.allclose(as_float, as_tensor, rtol=0, atol=1e-6)


@pytest.mark.parametrize("make", [lambda: CutMix(prob=0.5, capturable=True),
                                  lambda: Mixup(prob=0.5, capturable=True),
                                  lambda: CutMix(center="gaussian", label="larger", capturable=True),
                                  lambda: FeatureCutMix(layers=3, capturable=True)],
                         ids=["cutmix", "mixup", "cutmix-gaussian-larger", "feature-cutmix-layer3"])
def test_regularizer_model_and_loss_compile_into_one_graph(make):
    """``fullgraph=True`` fails on any graph break: no host decision anywhere in the step (ShakeDrop,
    DropBlock and stochastic depth included), and the loss is differentiable through the graph."""
    torch._dynamo.reset()
    regularizer = make()
    model = create_model("pyramidnet", 10, **TINY_PYRAMID, shakedrop=True, dropblock=True, drop_path_rate=0.2)

    def step(x, y):
        batch = regularizer(x, y)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(batch.inputs, mix_layer=batch.mix_layer, mix_fn=batch.mix_fn)
        return mixed_cross_entropy(logits, batch)

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    loss = compiled(torch.randn(6, 3, 32, 32), torch.randint(0, 10, (6,)))
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in model.parameters())


# --- trainer.compile: a bounded number of compilations -------------------------------------------------------
def _batches(n_images, batch_size, classes, size=32):
    images, labels = torch.randn(n_images, 3, size, size), torch.randint(0, classes, (n_images,))
    return [(images[i:i + batch_size], labels[i:i + batch_size]) for i in range(0, n_images, batch_size)]


CASES = {  # model, its options, regularizer: every kind of host decision the step used to make
    "pyramidnet-shakedrop/cutmix": ("pyramidnet", {**TINY_PYRAMID, "shakedrop": True}, lambda: CutMix(prob=0.5)),
    "pyramidnet-shakedrop/feature-cutmix-random-layer":
        ("pyramidnet", {**TINY_PYRAMID, "shakedrop": True}, lambda: FeatureCutMix(layers=[0, 1, 2, 3, 4])),
    "resnet-dropblock-droppath/feature-mixup-elem":
        ("cifar_resnet", {"depth": 8, "bottleneck": False, "dropblock": True, "drop_path_rate": 0.1},
         lambda: FeatureMixup(layers=[1, 2, 3], mode="elem")),
    "resnet/cutout+mixup": ("cifar_resnet", {"depth": 8, "bottleneck": False},
                            lambda: Compose(Cutout(size=8), Mixup(prob=0.5))),
    "resnet/cutmix-elem": ("cifar_resnet", {"depth": 8, "bottleneck": False}, lambda: CutMix(mode="elem")),
    "timm-resnet18/baseline": ("timm_resnet", {"variant": "resnet18", "drop_path_rate": 0.1}, Baseline),
}


@pytest.mark.parametrize("case", list(CASES))
def test_compiled_training_compiles_a_bounded_number_of_graphs_and_nothing_after_the_first_epoch(case):
    name, options, make_regularizer = CASES[case]
    model = create_model(name, 10, **options)
    regularizer = make_regularizer()
    what = compile_model(model, getattr(regularizer, "mixes_features", False), backend="eager")
    modules = len(model.feature_blocks()) if what == "stages" else 1
    assert what == ("stages" if isinstance(regularizer, FeatureCutMix | FeatureMixup) else "model")
    optimizer = sgd(model, lr=0.01, momentum=0.9, nesterov=False, weight_decay=1e-4, classifier_lr=None)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    options_ = StepOptions(device=torch.device("cpu"), log_interval=2)
    train, val = _batches(20, 8, 10), _batches(11, 4, 10)  # partial last batches: 4 and 3 images
    per_epoch = []
    for epoch in range(2):
        train_one_epoch(model, train, regularizer, optimizer, scaler, options_, epoch)
        evaluate(model, val, options_)
        per_epoch.append(compiled_graphs())
    first, second = per_epoch
    assert first["graph_breaks"] == 0 and second["graph_breaks"] == 0, counters["graph_break"]
    assert 0 < first["graphs"] <= 4 * modules  # train/eval × full/partial batch per compiled module
    assert second == first  # the second epoch runs what the first compiled


def test_hitting_the_recompile_limit_is_an_error_not_a_silent_fallback_to_eager():
    model = create_model("cifar_resnet", 10, depth=8, bottleneck=False).eval()
    compile_model(model, feature_mixing=False, backend="eager")
    with pytest.raises(Exception, match="(?i)recompile|cache_size|limit"), torch.no_grad():
        for batch in range(1, GRAPHS_PER_MODULE + 3):  # every new batch size is a new static graph
            model(torch.randn(batch, 3, 8, 8))


def test_bad_compile_options_name_the_key():
    with pytest.raises(ConfigError, match="trainer.compile_mode.*reduce-overhead"):
        check_compile("fastest", "inductor")
    with pytest.raises(ConfigError, match="trainer.compile_backend"):
        check_compile("default", "tensorrt-nope")
    with pytest.raises(ConfigError, match="compile_backend=inductor"):
        check_compile("reduce-overhead", "eager")


def test_compiled_run_records_its_graphs_and_steady_throughput(tmp_path):
    run = tmp_path / "run"
    fit_run(["dataset=synthetic", "dataset.train_size=40", "dataset.test_size=20", "dataset.num_classes=4",
             "model=cifar_resnet", "model.depth=8", "model.bottleneck=false", "regularizer=cutmix",
             "regularizer.capturable=true", "trainer.epochs=3", "trainer.batch_size=16", "trainer.compile=true",
             "trainer.compile_backend=eager"], run)
    r = results(run)
    assert r["compiled"] == "model" and r["compile_mode"] == "default"
    history = r["history"]
    assert [h[R.COLD_START] for h in history] == [True, False, False]
    assert history[1][R.COMPILED_GRAPHS] == history[0][R.COMPILED_GRAPHS] > 0
    assert all(h[R.GRAPH_BREAKS] == 0 for h in history)
    steady = (history[1][R.IMAGES_PER_S] + history[2][R.IMAGES_PER_S]) / 2
    assert r[R.STEADY_IMAGES_PER_S] == pytest.approx(steady)
    assert [round(v) for _, v in scalars(run, "train/steady_images_per_s")] == [
        round(history[1][R.IMAGES_PER_S]), round(steady)]


# --- exact metrics under bf16 -------------------------------------------------------------------------------
@pytest.mark.parametrize("name,options", [("pyramidnet", TINY_PYRAMID), ("timm_resnet", {"variant": "resnet18"}),
                                          ("cifar_resnet", {"depth": 8, "bottleneck": False})])
def test_under_bf16_autocast_the_classifier_runs_in_fp32(name, options):
    model = create_model(name, 10, **options).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x)
        features = model.forward_features(x)
    before_pool, classifier = model.head_parts()
    assert logits.dtype == torch.float32 and features.dtype == torch.float32
    with torch.no_grad():
        assert torch.equal(logits, classifier(features.mean((2, 3))))


@pytest.mark.parametrize("make", [lambda: Mixup(mode="elem"), lambda: Mixup(capturable=True),
                                  lambda: CutMix(mode="elem"), lambda: CutMix(capturable=True), lambda: CutMix()])
def test_feature_mixing_keeps_the_feature_maps_dtype(make):
    features = torch.randn(6, 8, 8, 8, dtype=torch.bfloat16, requires_grad=True)
    assert make()(features, torch.arange(6)).inputs.dtype == torch.bfloat16


def test_deterministic_sets_what_cublas_needs(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        record = _set_determinism(True, torch.device("cpu"))
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8" == record["cublas_workspace_config"]
    finally:
        _set_determinism(False, torch.device("cpu"))


def test_sgd_is_fused_only_where_every_parameter_is_on_cuda():
    from cutmix_repro.engine.optim import use_fused

    model = create_model("cifar_resnet", 10, depth=8, bottleneck=False)
    optimizer = sgd(model, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4, classifier_lr=None)
    assert not optimizer.defaults["fused"]  # the CPU keeps the default (bit-exact with the official step)
    assert not use_fused([]) and not use_fused(model.parameters())
    with torch.device("meta"):
        assert not use_fused([torch.nn.Parameter(torch.zeros(2))])


def test_cuda_graph_modes_mark_each_training_and_evaluation_step(monkeypatch):
    from cutmix_repro.config import compose

    calls = []
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: calls.append(1))
    cfg = compose(["trainer.compile=true", "trainer.compile_mode=reduce-overhead"])
    assert StepOptions.from_config(cfg, torch.device("cpu"), progress=False).cudagraphs
    default_mode = compose(["trainer.compile=true"])
    assert not StepOptions.from_config(default_mode, torch.device("cpu"), progress=False).cudagraphs
    model = create_model("cifar_resnet", 10, depth=8, bottleneck=False)
    optimizer = sgd(model, lr=0.01, momentum=0.9, nesterov=False, weight_decay=0.0, classifier_lr=None)
    options = StepOptions(device=torch.device("cpu"), cudagraphs=True)
    train_one_epoch(model, _batches(20, 8, 10), CutMix(), optimizer, torch.amp.GradScaler("cpu", enabled=False),
                    options, 0)
    evaluate(model, _batches(10, 4, 10), options)
    assert len(calls) == 3 + 3
