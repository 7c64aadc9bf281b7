"""Class activation maps (Zhou et al., "Learning Deep Features for Discriminative Localization",
CVPR 2016), the maps of the CutMix paper's Figure 1 and of its localization results (§4.2, Table 9).

For class c, CAM_c(x, y) = Σ_k w_k^c · f_k(x, y): the feature maps f_k that the head pools (after the
head's layers before the pooling, e.g. PyramidNet's BN-ReLU) weighted by the classifier's row w^c,
upsampled bicubically to the input size (as clovaai/wsolevaluation's ``cv2.resize(..., INTER_CUBIC)``,
which ``F.interpolate(mode="bicubic")`` matches to float rounding, ~5e-7). The classifier's bias, the same
at every position, is left out, as in Zhou et al.: the spatial mean of the map plus the bias is the
class's logit. Every model of the project has a global-average-pooling + linear head
(``StagedNet.head_parts``), so Grad-CAM, which for such a head gives the same map up to a positive
factor, is not needed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


@torch.no_grad()
def class_activation_maps(model, images: Tensor, classes: Tensor, upsample: bool = True) -> Tensor:
    """The CAM of ``classes[i]`` for ``images[i]``: (N, H, W) at the input size (or the feature map's
    own size with ``upsample=False``). The model is put in evaluation mode."""
    model.eval()
    features = model.forward_features(images)
    return maps_from_features(features, model.head_parts()[1], classes, images.shape[-2:] if upsample else None)


def maps_from_features(features: Tensor, classifier, classes: Tensor, size=None) -> Tensor:
    """CAMs from the pooled feature map (N, K, h, w) and the linear classifier, for ``classes`` (M,) with
    M a multiple of N (the maps of several classes per image: image i % N); upsampled to ``size``."""
    features = features.float()
    repeat = classes.shape[0] // features.shape[0]
    if repeat > 1:
        features = features.repeat(repeat, 1, 1, 1)
    maps = torch.einsum("nkhw,nk->nhw", features, classifier.weight.float()[classes])
    if size is not None and maps.shape[-2:] != tuple(size):
        maps = F.interpolate(maps.unsqueeze(1), size=tuple(size), mode="bicubic", align_corners=False)[:, 0]
    return maps


def normalize_maps(maps: Tensor) -> Tensor:
    """Each map scaled to [0, 1] by its own minimum and maximum (a constant map becomes 0)."""
    flat = maps.flatten(1)
    low, high = flat.min(1).values.view(-1, 1, 1), flat.max(1).values.view(-1, 1, 1)
    return (maps - low) / (high - low).clamp_min(1e-12)
