#!/usr/bin/env bash
# The offline quickstart: baseline vs CutMix on scikit-learn's real handwritten digits, a
# small CIFAR ResNet, on the CPU (about a minute of training), then the error table.
# Extra arguments are Hydra overrides, e.g. trainer.epochs=30 seed=0,1,2
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
out=runs/quickstart/$(date +%Y-%m-%d_%H-%M-%S)
"$PY" -m cutmix_repro.train -m +experiment=digits_quickstart regularizer=baseline,cutmix \
    trainer.progress=false hydra.sweep.dir="$out" "$@"
"$PY" -m cutmix_repro.report "$out" --out "$out/report" --no-figures | sed -n '/no paper row/,$p'
echo "runs, TensorBoard logs and tables: $out   (tensorboard --logdir $out)"
