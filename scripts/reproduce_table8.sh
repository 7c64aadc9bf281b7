#!/usr/bin/env bash
# Table 8: CutMix variants on CIFAR-100 PyramidNet-200, 6 variants × 3 seeds, then the report.
# Extra arguments are Hydra overrides for every run, e.g. hydra/launcher=slurm
source "$(dirname "$0")/lib.sh"
E=+experiment=cifar100_pyramidnet
ROWS=(
    "$E regularizer=cutmix"
    "$E regularizer=cutmix_gaussian"
    "$E regularizer=cutmix_fixed_box"
    "$E regularizer=cutmix_larger_label"
    "$E regularizer=cutmix_scheduled"
    "$E regularizer=cutmix_complete_label"
)
run_table table8 0,1,2 "$@"
