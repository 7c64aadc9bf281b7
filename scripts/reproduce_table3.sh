#!/usr/bin/env bash
# Table 3: ImageNet, ResNet-50, 8 regularizers, one seed each (as the paper), then the report.
# Needs ImageNet at dataset.root (default data/imagenet, with train/ and val/).
# Extra arguments are Hydra overrides for every run, e.g. hydra/launcher=slurm dataset.root=/datasets/imagenet
source "$(dirname "$0")/lib.sh"
E=+experiment=imagenet_resnet50
ROWS=(
    "$E regularizer=baseline"
    "$E regularizer=cutout"
    "$E regularizer=baseline model.drop_path_rate=0.25"
    "$E regularizer=mixup"
    "$E regularizer=feature_mixup"
    "$E regularizer=baseline model.dropblock=true"
    "$E regularizer=feature_cutmix"
    "$E regularizer=cutmix"
)
run_table table3 0 "$@"
