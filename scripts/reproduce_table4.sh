#!/usr/bin/env bash
# Table 4: ImageNet, ResNet-101 (4 rows) and ResNeXt-101 32x4d (2 rows), one seed each.
# Extra arguments are Hydra overrides for every run, e.g. hydra/launcher=slurm dataset.root=/datasets/imagenet
source "$(dirname "$0")/lib.sh"
ROWS=(
    "+experiment=imagenet_resnet101 regularizer=baseline"
    "+experiment=imagenet_resnet101 regularizer=cutout"
    "+experiment=imagenet_resnet101 regularizer=mixup"
    "+experiment=imagenet_resnet101 regularizer=cutmix"
    "+experiment=imagenet_resnext101 regularizer=baseline"
    "+experiment=imagenet_resnext101 regularizer=cutmix"
)
run_table table4 0 "$@"
