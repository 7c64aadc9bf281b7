#!/usr/bin/env bash
# Offline quickstart (grows with the trainer): mix one batch and show λ and the box.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python - <<'PY'
import torch
from cutmix_repro.regularizers import CutMix
torch.manual_seed(0)
x, y = torch.zeros(8, 3, 32, 32), torch.arange(8)
x += torch.arange(8).view(8, 1, 1, 1)
out = CutMix(alpha=1.0)(x, y)
moved = out.inputs[0, 0] != 0
rows, cols = moved.any(1).nonzero().flatten(), moved.any(0).nonzero().flatten()
print(f"lam={out.lam:.4f} partners={out.targets_b.tolist()}")
if len(rows):
    print(f"box rows {rows.min().item()}..{rows.max().item()} cols {cols.min().item()}..{cols.max().item()}")
PY
