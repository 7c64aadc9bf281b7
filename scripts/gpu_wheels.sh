#!/usr/bin/env bash
# The wheels a GPU machine without network needs to run this project, into .whl/ (git-ignored; the device
# tool carries it: run(carry=[".whl"])). Run it here, where pip reaches the package registry.
#
#   bash scripts/gpu_wheels.sh                  # for the GPU machines' Python (3.12)
#   GPU_PYTHON=3.11 bash scripts/gpu_wheels.sh  # for another Python (e.g. to check the recipe on this one)
#   VERIFY=1 GPU_PYTHON=3.11 bash scripts/gpu_wheels.sh /tmp/whl
#       ... then check them: a fresh venv holding only torch installs .whl/ as gpu_check.sh does
#       (--no-index --no-deps --target), imports Hydra and composes this project's configs with it
#
# The GPU image has torch, torchvision, timm, tensorboard, scipy, matplotlib, scikit-learn, PyYAML, tqdm
# and packaging, but not Hydra: hydra-core and omegaconf come as wheels, and antlr4-python3-runtime 4.9.3
# (the version both pin) exists only as a source archive, so it is built into a wheel here (pure Python:
# one wheel fits every Python). PyYAML, packaging and tqdm come too, so that .whl/ alone completes an
# environment holding only torch. scripts/gpu_check.sh installs them with --no-index --no-deps.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
GPU_PYTHON=${GPU_PYTHON:-3.12}
OUT=${1:-.whl}
rm -rf "$OUT" && mkdir -p "$OUT"
platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$tag")
done
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$GPU_PYTHON" --implementation cp \
    "${platforms[@]}" -d "$OUT" \
    "hydra-core==1.3.2" "omegaconf==2.3.0" "PyYAML==6.0.2" "packaging==24.2" "tqdm==4.67.1"
"$PY" -m pip wheel --quiet --no-deps -w "$OUT" "antlr4-python3-runtime==4.9.3"
ls "$OUT"

if [ "${VERIFY:-0}" = 1 ]; then
    check=$(mktemp -d)
    "$PY" -m venv "$check/venv"
    torch_version=$("$PY" -c "import torch; print(torch.__version__.split('+')[0])" 2>/dev/null || echo "")
    "$check/venv/bin/python" -m pip install --quiet "torch${torch_version:+==$torch_version}"
    "$check/venv/bin/python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$check/site" "$OUT"/*.whl
    PYTHONPATH="$check/site" "$check/venv/bin/python" - "$PWD/configs" <<'PY'
import sys

import hydra, omegaconf, torch, tqdm, yaml  # noqa: F401, E401
from hydra import compose, initialize_config_dir

with initialize_config_dir(config_dir=sys.argv[1], version_base=None):
    cfg = compose("train", overrides=["+experiment=cifar100_pyramidnet"])
print(f"recipe verified: torch {torch.__version__}, hydra-core {hydra.__version__}, omegaconf {omegaconf.__version__};"
      f" composed +experiment=cifar100_pyramidnet: {cfg.model._target_} depth {cfg.model.depth}")
PY
    rm -rf "$check"
fi
