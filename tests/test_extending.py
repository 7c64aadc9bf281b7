"""A new regularizer is one small module plus one YAML file, outside this package too."""


from helpers import FAST, results, train_main

MODULE = '''
import torch
from cutmix_repro.regularizers import MixedBatch


class HorizontalCutMix:
    """Swap the lower half of every image with its partner's: λ = 0.5."""

    def __init__(self, share: float = 0.5):
        self.share = share

    def __call__(self, x, y):
        perm = torch.randperm(x.shape[0], device=x.device)
        cut = int(x.shape[2] * self.share)
        x[:, :, cut:] = x[perm, :, cut:]
        return MixedBatch(x, y, y[perm], cut / x.shape[2])
'''


def test_a_regularizer_of_your_own_trains_through_the_same_command(tmp_path, monkeypatch):
    (tmp_path / "my_regs.py").write_text(MODULE)
    (tmp_path / "my_configs" / "regularizer").mkdir(parents=True)
    (tmp_path / "my_configs" / "regularizer" / "half_swap.yaml").write_text(
        "_target_: my_regs.HorizontalCutMix\nshare: 0.5\n")
    run = tmp_path / "run"
    monkeypatch.syspath_prepend(str(tmp_path))  # your module importable, as with PYTHONPATH
    status, err = train_main([f"hydra.searchpath=[file://{tmp_path / 'my_configs'}]", "regularizer=half_swap",
                              "dataset=synthetic", "dataset.train_size=32", "dataset.test_size=16",
                              "model=cifar_resnet", "model.depth=8", "model.bottleneck=false", "trainer.epochs=1",
                              *FAST, f"hydra.run.dir={run}"], monkeypatch)
    assert status == 0, err
    res = results(run)
    assert res["regularizer"] == "half_swap" and res["regularizer_target"] == "my_regs.HorizontalCutMix"
    assert res["regularizer_params"] == {"share": 0.5}
    # and a misspelt choice is still one line listing the valid ones
    status, err = train_main([f"hydra.searchpath=[file://{tmp_path / 'my_configs'}]", "regularizer=half_swapp"],
                             monkeypatch)
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2 and len(lines) == 1 and "half_swap" in lines[0] and "cutmix" in lines[0]
