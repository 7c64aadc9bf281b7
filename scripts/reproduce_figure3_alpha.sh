#!/usr/bin/env bash
# Figure 3 (left): CutMix α ∈ {0.1, 0.25, 0.5, 1.0, 2.0, 4.0} on CIFAR-100 PyramidNet-200,
# 3 seeds each (18 runs), plus the baseline it is compared with, then the report.
# Extra arguments are Hydra overrides for every run, e.g. hydra/launcher=slurm
source "$(dirname "$0")/lib.sh"
ROWS=(
    "+experiment=cifar100_pyramidnet regularizer=cutmix regularizer.alpha=0.1,0.25,0.5,1.0,2.0,4.0"
    "+experiment=cifar100_pyramidnet regularizer=baseline"
)
run_table figure3_alpha 0,1,2 "$@"
