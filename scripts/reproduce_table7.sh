#!/usr/bin/env bash
# Table 7: CIFAR-10, PyramidNet-200 (α̃=240), 5 regularizers × 3 seeds, then the report.
# Extra arguments are Hydra overrides for every run, e.g. hydra/launcher=slurm
source "$(dirname "$0")/lib.sh"
E=+experiment=cifar10_pyramidnet
ROWS=(
    "$E regularizer=baseline"
    "$E regularizer=cutout"
    "$E regularizer=mixup"
    "$E regularizer=feature_mixup"
    "$E regularizer=cutmix"
)
run_table table7 0,1,2 "$@"
