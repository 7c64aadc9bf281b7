"""CutMix as specified by the paper (§3.1) and the authors' train.py (its rand_bbox and mixing step)."""

import math

import pytest
import torch
from helpers import source_of, unique_batch
from scipy import stats

from cutmix_repro.regularizers import CutMix, box_sides, clip_box


def partner_region(out, orig, targets_b):
    """Boolean (N, H, W): the pixels of each image that came from its partner."""
    src = source_of(out.inputs, orig)
    n = orig.shape[0]
    own = torch.arange(n).view(n, 1, 1)
    return src != own, src


def assert_one_rectangle(mask: torch.Tensor):
    """mask (H, W) is exactly one filled axis-aligned rectangle (or empty); return its corners."""
    if not mask.any():
        return None
    rows = mask.any(1).nonzero().flatten()
    cols = mask.any(0).nonzero().flatten()
    y1, y2, x1, x2 = rows.min().item(), rows.max().item() + 1, cols.min().item(), cols.max().item() + 1
    assert mask[y1:y2, x1:x2].all(), "region has holes: not a rectangle"
    assert mask.sum().item() == (y2 - y1) * (x2 - x1), "region extends beyond its bounding box"
    return y1, y2, x1, x2


def partner_boxes(out, orig) -> dict:
    """The rectangle each image took from its partner (None if none), for every image whose partner is another
    image; every pixel is the image's own or its partner's, never a third image's."""
    moved, src = partner_region(out, orig, out.targets_b)
    boxes = {}
    for i in range(orig.shape[0]):
        j = out.targets_b[i].item()
        assert ((src[i] == i) | (src[i] == j)).all()
        box = assert_one_rectangle(moved[i])
        if j != i:
            boxes[i] = box
    return boxes


@pytest.mark.parametrize("shape", [(64, 3, 32, 32), (7, 3, 24, 40), (1, 3, 16, 16), (5, 2, 33, 17)])
def test_pasted_region_is_one_rectangle_from_the_partner_same_box_in_every_image(shape):
    n, c, h, w = shape
    for _ in range(20):
        orig = unique_batch(n, c, h, w)
        y = torch.arange(n)
        out = CutMix(alpha=1.0)(orig.clone(), y)
        boxes = set(partner_boxes(out, orig).values())
        assert len(boxes) <= 1, "the same box must be pasted into every image"
        if boxes and None not in boxes:
            y1, y2, x1, x2 = boxes.pop()
            # 1 − λ equals the pasted area fraction (correct_lam=True)
            assert math.isclose(1 - out.lam, (y2 - y1) * (x2 - x1) / (h * w), abs_tol=1e-9)
        # the channels all move together
        assert torch.equal(source_of(out.inputs, orig, channel=c - 1), source_of(out.inputs, orig))


def test_lambda_is_area_fraction_even_when_box_is_clipped():
    for _ in range(200):
        orig = unique_batch(8, 1, 32, 32)
        out = CutMix(alpha=1.0)(orig.clone(), torch.arange(8))
        # count the moved area in an image whose partner is another image
        moved, _ = partner_region(out, orig, out.targets_b)
        others = [i for i in range(8) if out.targets_b[i] != i]
        if others:
            area = moved[others[0]].sum().item()
            assert math.isclose(1 - out.lam, area / 1024, abs_tol=1e-9)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_lambda_before_correction_follows_beta(alpha):
    torch.manual_seed(1234)
    mixer = CutMix(alpha=alpha, correct_lam=False)
    lams = [mixer(torch.zeros(2, 1, 8, 8), torch.arange(2)).lam for _ in range(3000)]
    assert stats.kstest(lams, "beta", args=(alpha, alpha)).pvalue > 0.01
    # and not some other distribution
    other = 4 * alpha
    assert stats.kstest(lams, "beta", args=(other, other)).pvalue < 1e-6


def test_box_sides_and_clipping_follow_official_rand_bbox():
    assert box_sides(0.75, 32, 32) == (16, 16)
    assert box_sides(0.5, 32, 32) == (int(32 * math.sqrt(0.5)),) * 2
    assert box_sides(0.0, 24, 40) == (24, 40)
    # centre at the corner: half of each side is clipped away
    assert clip_box(0, 0, 16, 16, 32, 32) == (0, 8, 0, 8)
    assert clip_box(31, 31, 16, 16, 32, 32) == (23, 32, 23, 32)
    assert clip_box(10, 20, 7, 9, 32, 32) == (7, 13, 16, 24)


def test_box_centre_is_uniform_over_pixels():
    torch.manual_seed(5)
    mixer = CutMix(alpha=1.0, box_size=2, correct_lam=False)
    centres = []
    for _ in range(4000):
        orig = unique_batch(2, 1, 8, 8)
        out = mixer(orig.clone(), torch.tensor([0, 1]))
        moved, _ = partner_region(out, orig, out.targets_b)
        if out.targets_b[0] != 0:
            box = assert_one_rectangle(moved[0])
            # with a 2×2 box, y2 = cy + 1 and x2 = cx + 1 always
            centres.append((box[1] - 1) * 8 + (box[3] - 1))
    counts = torch.bincount(torch.tensor(centres), minlength=64).float()
    assert stats.chisquare(counts.numpy()).pvalue > 0.001


def test_prob_zero_leaves_batch_untouched_and_prob_half_mixes_about_half():
    x = torch.randn(8, 3, 16, 16)
    out = CutMix(alpha=1.0, prob=0.0)(x.clone(), torch.arange(8))
    assert torch.equal(out.inputs, x) and out.lam == 1.0
    assert torch.equal(out.targets_b, out.targets_a)
    mixer = CutMix(alpha=1.0, prob=0.5, correct_lam=False)
    mixed = sum(mixer(torch.randn(4, 3, 8, 8), torch.arange(4)).lam < 1 for _ in range(2000))
    assert 900 < mixed < 1100


def test_batch_mode_edits_in_place_only_the_box():
    torch.manual_seed(2)
    for _ in range(20):
        orig = unique_batch(16, 3, 24, 32)
        x = orig.clone()
        ptr = x.data_ptr()
        out = CutMix(alpha=1.0)(x, torch.arange(16))
        assert out.inputs.data_ptr() == ptr, "batch mode must not copy the whole batch"
        changed = (out.inputs != orig).any(1).any(0)  # (H, W): positions changed in any image
        box = assert_one_rectangle(changed)
        if box is not None:
            y1, y2, x1, x2 = box
            outside = torch.ones(24, 32, dtype=torch.bool)
            outside[y1:y2, x1:x2] = False
            assert torch.equal(out.inputs[:, :, outside], orig[:, :, outside]), "nothing outside the box moves"


@pytest.mark.parametrize("mode", ["batch", "elem"])
def test_pasted_pixels_are_the_partners_pixels_at_the_same_positions(mode):
    """Not only "a pixel of some other image": image j's own pixel (y, x) lands at (y, x) of image i,
    where j is the partner recorded in targets_b, and the partner is another image whenever a box moved."""
    torch.manual_seed(3)
    n, c, h, w = 12, 3, 20, 28
    moved_any = 0
    for _ in range(30):
        orig = unique_batch(n, c, h, w)
        out = CutMix(alpha=1.0, mode=mode)(orig.clone(), torch.arange(n))  # label i = image i: targets_b = partner
        for i in range(n):
            j = int(out.targets_b[i])
            changed = (out.inputs[i] != orig[i]).any(0)
            if not changed.any():
                continue
            moved_any += 1
            assert j != i, "pixels changed, so the partner is another image"
            assert torch.equal(out.inputs[i][:, changed], orig[j][:, changed]), "the partner's pixels, same place"
            box = assert_one_rectangle(changed)
            lam = out.lam[i].item() if isinstance(out.lam, torch.Tensor) else out.lam
            assert math.isclose(1 - lam, (box[1] - box[0]) * (box[3] - box[2]) / (h * w), abs_tol=1e-6)
    assert moved_any > 100


def test_uint8_and_float_batches_mix_identically():
    torch.manual_seed(3)
    xu = torch.randint(0, 255, (6, 3, 20, 20), dtype=torch.uint8)
    xf = xu.float()
    torch.manual_seed(7)
    a = CutMix()(xu.clone(), torch.arange(6))
    torch.manual_seed(7)
    b = CutMix()(xf.clone(), torch.arange(6))
    assert a.inputs.dtype == torch.uint8
    assert torch.equal(a.inputs.float(), b.inputs) and a.lam == b.lam


def test_elem_mode_gives_each_sample_its_own_box_and_lambda():
    n, h, w = 32, 32, 32
    orig = unique_batch(n, 1, h, w)
    out = CutMix(alpha=1.0, mode="elem")(orig.clone(), torch.arange(n))
    assert isinstance(out.lam, torch.Tensor) and out.lam.shape == (n,)
    boxes = partner_boxes(out, orig)
    for i, box in boxes.items():
        area = 0 if box is None else (box[1] - box[0]) * (box[3] - box[2])
        assert math.isclose(1 - out.lam[i].item(), area / (h * w), abs_tol=1e-6)
    assert len(set(boxes.values())) > n // 2, "elem mode must draw a box per sample"
    assert out.lam.unique().numel() > n // 2


def test_elem_mode_prob_is_per_sample():
    mixer = CutMix(alpha=1.0, prob=0.5, mode="elem", correct_lam=False)
    lam = torch.cat([mixer(torch.randn(100, 1, 8, 8), torch.arange(100)).lam for _ in range(20)])
    assert 0.4 < (lam < 1).float().mean().item() < 0.6
    assert CutMix(prob=0.0, mode="elem")(torch.randn(9, 1, 8, 8), torch.arange(9)).lam.eq(1).all()


def test_gaussian_centre_concentrates_boxes_at_the_image_centre():
    mixer = CutMix(alpha=1.0, center="gaussian", box_size=2, correct_lam=False)
    ys = []
    for _ in range(500):
        orig = unique_batch(2, 1, 32, 32)
        out = mixer(orig.clone(), torch.tensor([0, 1]))
        if out.targets_b[0] != 0:
            moved, _ = partner_region(out, orig, out.targets_b)
            ys.append(assert_one_rectangle(moved[0])[1] - 1)
    ys = torch.tensor(ys, dtype=torch.float)
    assert abs(ys.mean().item() - 16) < 1.5
    assert 6 < ys.std().item() < 10  # 0.25 × 32 = 8, far below uniform's 9.2 … and clipped
    assert stats.kstest(ys.numpy(), "uniform", args=(0, 32)).pvalue < 1e-3


def test_fixed_box_has_lambda_three_quarters_on_cifar():
    mixer = CutMix(box_size=16, correct_lam=False)
    assert all(mixer(torch.randn(4, 3, 32, 32), torch.arange(4)).lam == 0.75 for _ in range(20))
    corrected = CutMix(box_size=16, correct_lam=True)
    lams = [corrected(torch.randn(4, 3, 32, 32), torch.arange(4)).lam for _ in range(200)]
    assert min(lams) >= 0.75 and 0.75 in lams


def test_larger_part_and_complete_label_variants():
    larger = CutMix(label="larger")
    assert all(larger(torch.randn(4, 3, 32, 32), torch.arange(4)).lam in (0.0, 1.0) for _ in range(50))
    torch.manual_seed(0)
    area = CutMix(label="area")(torch.randn(4, 3, 32, 32), torch.arange(4)).lam
    torch.manual_seed(0)
    assert larger(torch.randn(4, 3, 32, 32), torch.arange(4)).lam == float(area >= 0.5)
    complete = CutMix(label="complete")
    assert all(complete(torch.randn(4, 3, 32, 32), torch.arange(4)).lam == 0.5 for _ in range(20))
    elem = CutMix(label="larger", mode="elem")(torch.randn(16, 3, 32, 32), torch.arange(16))
    assert set(elem.lam.tolist()) <= {0.0, 1.0}


def test_scheduled_probability_rises_linearly_over_training():
    mixer = CutMix(prob=1.0, prob_schedule="linear", correct_lam=False)
    rates = []
    for progress in (0.0, 0.25, 0.5, 1.0):
        mixer.set_progress(progress)
        assert mixer.current_prob == pytest.approx(progress)
        rates.append(sum(mixer(torch.randn(2, 1, 8, 8), torch.arange(2)).lam < 1 for _ in range(800)) / 800)
    assert rates[0] == 0 and abs(rates[1] - 0.25) < 0.06 and abs(rates[2] - 0.5) < 0.06 and rates[3] > 0.97


@pytest.mark.parametrize(
    "kwargs, key",
    [({"alpha": 0}, "alpha"), ({"alpha": -1}, "alpha"), ({"prob": 1.5}, "prob"), ({"mode": "pixel"}, "mode"),
     ({"center": "edge"}, "center"), ({"label": "soft"}, "label"), ({"box_size": 0}, "box_size")],
)
def test_bad_options_name_the_key_and_what_is_valid(kwargs, key):
    with pytest.raises(ValueError, match=key):
        CutMix(**kwargs)


def test_mixing_keeps_the_batch_on_its_device():
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for dev in devices:
        x = torch.randn(5, 3, 8, 8, device=dev)
        out = CutMix()(x, torch.arange(5, device=dev))
        assert out.inputs.device == x.device and out.targets_b.device == x.device
