#!/usr/bin/env bash
# Figure 3 (right): feature-level CutMix at layer index 0 (input), 1 (after the stem conv-bn),
# 2, 3, 4 (after stages 1-3) on CIFAR-100 PyramidNet-200, 3 seeds each, then the report.
# Extra arguments are Hydra overrides for every run, e.g. hydra/launcher=slurm
source "$(dirname "$0")/lib.sh"
ROWS=(
    "+experiment=cifar100_pyramidnet regularizer=feature_cutmix regularizer.layers=0,1,2,3,4"
    "+experiment=cifar100_pyramidnet regularizer=baseline"
)
run_table figure3_layers 0,1,2 "$@"
