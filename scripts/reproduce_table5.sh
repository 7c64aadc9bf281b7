#!/usr/bin/env bash
# Table 5: CIFAR-100, PyramidNet-200 (α̃=240), 15 regularizers × 3 seeds, then the report.
# Extra arguments are Hydra overrides for every run, e.g.
#   scripts/reproduce_table5.sh hydra/launcher=slurm          (one SLURM job per run)
#   scripts/reproduce_table5.sh trainer.epochs=2              (a smoke pass)
source "$(dirname "$0")/lib.sh"
E=+experiment=cifar100_pyramidnet
ROWS=(
    "$E regularizer=baseline"
    "$E regularizer=baseline model.drop_path_rate=0.25"
    "$E regularizer=baseline label_smoothing=0.1"
    "$E regularizer=cutout"
    "$E regularizer=cutout label_smoothing=0.1"
    "$E regularizer=baseline model.dropblock=true"
    "$E regularizer=baseline model.dropblock=true label_smoothing=0.1"
    "$E regularizer=mixup regularizer.alpha=0.5"
    "$E regularizer=mixup"
    "$E regularizer=feature_mixup"
    "$E regularizer=cutout_mixup"
    "$E regularizer=cutout_feature_mixup"
    "$E regularizer=baseline model.shakedrop=true"
    "$E regularizer=cutmix"
    "$E regularizer=cutmix model.shakedrop=true"
)
run_table table5 0,1,2 "$@"
