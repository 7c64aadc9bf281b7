"""augment= (issue: beyond the paper): torchvision's v2 TrivialAugment, RandAugment and RandomErasing added to
the paper's augmentation on every training path, drawn per image, reproducible per batch, never on test images."""

import pytest
import torch
from torchvision.transforms import v2

from cutmix_repro.config import build, compose, recipe_switches
from cutmix_repro.data.augment import Augment, step_seed
from cutmix_repro.data.decoded import TrainDraws, train_batch
from cutmix_repro.data.loaders import tensor_bundle
from cutmix_repro.data.transforms import CIFAR_MEAN, CIFAR_STD, imagenet_train_transform, normalize
from cutmix_repro.errors import ConfigError

N, SIZE = 24, 16


def bundle(augment: Augment, images=None, padding=0, hflip=False, batch_size=8, seed=3):
    g = torch.Generator().manual_seed(1)
    if images is None:
        images = torch.randint(0, 256, (N, 3, SIZE, SIZE), dtype=torch.uint8, generator=g)
    labels = torch.arange(N) % 4
    return tensor_bundle("t", (images, labels, images, labels), 4, CIFAR_MEAN, CIFAR_STD, padding, hflip,
                         batch_size=batch_size, seed=seed, augment=augment)


def test_each_image_is_torchvisions_transform_with_its_own_draw_after_crop_and_flip_before_normalisation():
    images = torch.randint(0, 256, (1, 3, SIZE, SIZE), dtype=torch.uint8).expand(N, -1, -1, -1).contiguous()
    for policy, transform in (("trivialaugment", v2.TrivialAugmentWide()), ("randaugment", v2.RandAugment())):
        data = bundle(Augment(policy), images)  # no crop offset, no flip: the policy alone changes the images
        data.train.set_epoch(2)
        batches = [x for x, _ in data.train]
        mean, std = data.train.mean, data.train.std
        for step, batch in enumerate(batches):  # torchvision's transform, image by image, from the batch's seed
            torch.manual_seed(2 * step_seed(3, 2, 0, step))
            expected = torch.stack([transform(image) for image in images[step * 8:(step + 1) * 8]])
            torch.testing.assert_close(batch, normalize(expected, mean, std), rtol=0, atol=1e-6)
        distinct = {tuple(x.flatten()[:64].tolist()) for x in torch.cat(batches)}
        assert len(distinct) > N // 2, f"{policy}: one draw per image, not one per batch"


def test_a_batch_is_drawn_again_exactly_whatever_ran_before_and_the_global_generator_is_untouched():
    data = bundle(Augment("trivialaugment", random_erasing=0.5), padding=2, hflip=True)
    data.train.set_epoch(1)
    state = torch.get_rng_state()
    whole = [x for x, _ in data.train]
    assert torch.equal(torch.get_rng_state(), state)
    torch.rand(1000)  # other draws in between change nothing (a resumed run starts mid-epoch)
    data.train.set_epoch(1, start_step=2)
    assert torch.equal(next(iter(data.train))[0], whole[2])
    data.train.set_epoch(2)
    assert not torch.equal(next(iter(data.train))[0], whole[0])


def test_random_erasing_sets_one_rectangle_of_each_image_to_the_mean_colour_and_only_with_its_probability():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(1, 255, (N, 3, SIZE, SIZE), dtype=torch.uint8, generator=g)
    data = bundle(Augment(random_erasing=1.0), images)
    plain = torch.cat([x for x, _ in bundle(Augment(), images).train])
    erased = torch.cat([x for x, _ in data.train])
    for before, after in zip(plain, erased):
        changed = (before != after).any(0)
        rows, cols = changed.any(1).nonzero().flatten(), changed.any(0).nonzero().flatten()
        assert changed.sum() > 0 and changed.sum() == len(rows) * len(cols), "one rectangle per image"
        assert torch.all(after[:, changed] == 0), "erased to 0 after normalisation: the mean colour"
        assert torch.equal(after[:, ~changed], before[:, ~changed])
    assert torch.equal(torch.cat([x for x, _ in bundle(Augment(random_erasing=0.0), images).train]), plain)


def test_test_batches_are_never_augmented():
    plain, extra = bundle(Augment()), bundle(Augment("randaugment", random_erasing=1.0))
    for (a, _), (b, _) in zip(plain.val, extra.val, strict=True):
        assert torch.equal(a, b)


def test_the_imagenet_paths_take_the_policy_after_the_flip_and_erasing_last():
    augment = Augment("trivialaugment", random_erasing=0.25)
    steps = [type(t).__name__ for t in imagenet_train_transform(224, augment).transforms]
    assert steps == ["RandomResizedCrop", "RandomHorizontalFlip", "TrivialAugmentWide", "ColorJitter", "ToTensor",
                     "Lighting", "Normalize", "RandomErasing"]
    assert "TrivialAugmentWide" not in str(imagenet_train_transform(224))
    # the device path: the same draws of the paper's steps, the policy and erasing added per image
    g = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (3, 40, 48), dtype=torch.uint8, generator=g) for _ in range(4)]
    draws = TrainDraws(torch.tensor([[0, 0, 40, 48]] * 4), torch.zeros(4, dtype=torch.bool), torch.ones(4, 3),
                       torch.arange(3).repeat(4, 1), torch.zeros(4, 3))
    paper = train_batch(images, draws, 32)
    ours = train_batch(images, draws, 32, Augment("randaugment", random_erasing=1.0), seed=7)
    assert torch.equal(ours, train_batch(images, draws, 32, Augment("randaugment", random_erasing=1.0), seed=7))
    assert all(not torch.equal(a, b) for a, b in zip(ours, paper))
    assert torch.equal(train_batch(images, draws, 32, Augment(), seed=7), paper)


def test_the_switch_is_marked_and_bad_values_are_one_line():
    assert recipe_switches(compose(["augment=trivialaugment", "augment.random_erasing=0.25"])) == \
        {"augment": "trivialaugment(random_erasing=0.25)"}
    assert recipe_switches(compose(["augment.random_erasing=0.1"])) == {"augment": "random_erasing(0.1)"}
    assert "augment" not in recipe_switches(compose([]))
    for bad, key in ((["augment.policy=autoaugment"], "augment.policy"), (["augment.random_erasing=2"],
                     "augment.random_erasing"), (["augment=randaugment", "augment.magnitude=31"], "augment.magnitude")):
        with pytest.raises(ConfigError, match=key):
            build(compose(bad).augment, "augment")
    cfg = compose(["dataset=synthetic_boxes", "augment=trivialaugment"])
    with pytest.raises(ConfigError, match="augment"):
        from cutmix_repro.data.wsol import _bundle

        _bundle("cub", [1], [1], 2, None, 0, 2, {"batch_size": 2, "augment": build(cfg.augment, "augment")})


def test_an_imagenet_folder_takes_it_on_both_pipelines_with_the_papers_draws_unchanged(tmp_path):
    from fakedata import write_imagefolder

    write_imagefolder(tmp_path / "imagenet")
    augment = Augment("trivialaugment", random_erasing=1.0)
    for pipeline in ("device", "pil"):
        cfg = compose(["dataset=imagenet", f"dataset.root={tmp_path / 'imagenet'}", "dataset.image_size=32",
                       "dataset.resize=36", "dataset.num_workers=0", f"dataset.pipeline={pipeline}"]).dataset
        plain, extra = (build(cfg, "dataset", batch_size=4, seed=0, augment=a) for a in (None, augment))
        if pipeline == "pil":  # the authors' PIL transforms in the workers, the policy and erasing among them
            names = [type(t).__name__ for t in extra.train.loader.dataset.transform.transforms]
            assert names.index("RandomHorizontalFlip") < names.index("TrivialAugmentWide") < names.index("ColorJitter")
            assert names[-1] == "RandomErasing"
            continue
        a, b = next(iter(plain.train))[0], next(iter(extra.train))[0]
        assert a.shape == b.shape == (4, 3, 32, 32) and all(not torch.equal(x, y) for x, y in zip(a, b))
        assert all(((y == 0).all(0)).any() for y in b), "each image has its erased (mean-colour) rectangle"
        assert torch.equal(next(iter(plain.val))[0], next(iter(extra.val))[0])
