"""Section 11: the shapes of FMix's masks from the authors' spectrum and from the isotropic one."""

from __future__ import annotations

import numpy as np
import torch


def bench_fmix_masks(count: int = 400, size: int = 32, lam: float = 0.5, seed: int = 0) -> list[dict]:
    """The shapes of ``count`` FMix masks (size × size, λ's share kept) of each spectrum: pixel edges between the
    kept and the pasted part (4-neighbours; those between rows and between columns), and connected regions of
    both parts (4-connected), as mean ± standard error."""
    from scipy import ndimage

    from ..regularizers.fmix import SPECTRA, FMix

    rows = []
    for spectrum in SPECTRA:
        mixer, values = FMix(spectrum=spectrum), []
        torch.manual_seed(seed)
        for _ in range(count):
            m = mixer.mask(lam, size, size).numpy().astype(bool)
            across_rows, across_cols = int((m[1:] != m[:-1]).sum()), int((m[:, 1:] != m[:, :-1]).sum())
            values.append((across_rows + across_cols, across_rows, across_cols,
                           ndimage.label(m)[1] + ndimage.label(~m)[1]))
        values = np.array(values, dtype=float)
        mean, sem = values.mean(0), values.std(0, ddof=1) / np.sqrt(count)
        rows.append({"spectrum": spectrum, "masks": count, "size": size, "lam": lam,
                     "edges": mean[0], "edges_sem": sem[0], "edges_between_rows": mean[1],
                     "edges_between_columns": mean[2], "regions": mean[3], "regions_sem": sem[3]})
    return rows
