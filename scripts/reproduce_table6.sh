#!/usr/bin/env bash
# Table 6: CIFAR-100, PyramidNet-110 (α̃=64) and ResNet-110 (lr 0.1, CutMix p=1.0), 3 seeds.
# Extra arguments are Hydra overrides for every run, e.g. hydra/launcher=slurm
source "$(dirname "$0")/lib.sh"
ROWS=(
    "+experiment=cifar100_pyramidnet110 regularizer=baseline"
    "+experiment=cifar100_pyramidnet110 regularizer=cutmix"
    "+experiment=cifar100_resnet110 regularizer=baseline"
    "+experiment=cifar100_resnet110 regularizer=cutmix"
)
run_table table6 0,1,2 "$@"
