#!/usr/bin/env bash
# The offline quickstart: baseline vs CutMix on scikit-learn's real handwritten digits, a
# small CIFAR ResNet, on the CPU (about a minute of training), then the error table and
# Figure 1 (Mixup, Cutout, CutMix and their class activation maps) drawn by the CutMix model.
# Extra arguments are Hydra overrides, e.g. trainer.epochs=30 seed=0,1,2
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
out=runs/quickstart/$(date +%Y-%m-%d_%H-%M-%S)
"$PY" -m cutmix_repro.train -m +experiment=digits_quickstart regularizer=baseline,cutmix \
    trainer.progress=false hydra.sweep.dir="$out" "$@"
"$PY" -m cutmix_repro.report "$out" --out "$out/report" --no-figures | sed -n '/no paper row/,$p'
cutmix_run=$(dirname "$(ls "$out"/*cutmix*/results.json | head -n 1)")
"$PY" -m cutmix_repro.figure1 --run "$cutmix_run" --out "$out/figure1.png"
echo "runs, TensorBoard logs, tables and Figure 1: $out   (tensorboard --logdir $out)"
