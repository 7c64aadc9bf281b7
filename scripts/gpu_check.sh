#!/usr/bin/env bash
# GPU check: one self-contained command for a machine with a CUDA GPU and no network access,
# where torch, torchvision, timm and tensorboard are installed and Hydra may be missing.
# It runs every benchmark (the CUDA ones included: PyramidNet-200 and ResNet-50 training
# throughput, ours vs an official-style fp32 loop, TFLOP/s, projected 300-epoch time) and a
# short training run on synthetic data with bf16 AMP, channels_last and torch.compile.
# Budget: well under 10 minutes on an H100 (compilation is most of it).
#
# Prepare wheels once, where pip works (see the device tool's README):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --platform manylinux2014_x86_64 -d .whl hydra-core omegaconf antlr4-python3-runtime==4.9.3 PyYAML tqdm
# Then on the GPU machine:  bash scripts/gpu_check.sh [OUT_DIR]   (default results/bench)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-results/bench}}
mkdir -p "$OUT"
if ! python3 -c "import hydra, omegaconf, tqdm" 2>/dev/null; then
    if compgen -G ".whl/*.whl" > /dev/null; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
        export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    else
        echo "error: hydra-core/omegaconf/tqdm are missing and .whl/ holds no wheels to install them from" >&2
        exit 2
    fi
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true

COMPILE=${GPU_CHECK_COMPILE:-1}
python3 -m cutmix_repro.bench --out "$OUT" ${COMPILE:+$( [ "$COMPILE" = 1 ] && echo --compile )}
python3 -m cutmix_repro.train dataset=synthetic dataset.train_size=4096 dataset.test_size=1000 \
    dataset.num_classes=100 model=pyramidnet110 regularizer=cutmix trainer.epochs=2 trainer.batch_size=64 \
    trainer.device=cuda trainer.amp=bf16 trainer.channels_last=true trainer.compile=true \
    trainer.progress=false hydra.run.dir="$OUT/gpu_check_run"
python3 - "$OUT/gpu_check_run/results.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["status"] == "finished" and r["amp"] == "torch.bfloat16" and r["compile"] and r["channels_last"], r
print(f"gpu check training run: {r['images_per_s']:.0f} img/s, last top-1 error {r['last_top1_err']:.2f}%")
PY
