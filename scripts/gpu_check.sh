#!/usr/bin/env bash
# GPU check for a machine with a CUDA GPU and no network, where torch, torchvision, timm and tensorboard
# are installed and Hydra is missing. Prepare its wheels once, where pip works:
#
#   bash scripts/gpu_wheels.sh          # → .whl/ (hydra-core, omegaconf, antlr4 built from its source, ...)
#
# then, on the GPU machine, carrying .whl (the device tool: run(carry=[".whl"])), one part per call:
#
#   bash scripts/gpu_check.sh setup     # Hydra from .whl/, the GPU's name, a CUDA smoke test       (~1 min)
#   bash scripts/gpu_check.sh eager     # benchmarks: mixing op on CUDA, PyramidNet-200 and
#                                       # ResNet-50 steady-state img/s eager vs official fp32 loop   (~3 min)
#   bash scripts/gpu_check.sh compiled  # PyramidNet-200: torch.compile default                    (compile-bound)
#   bash scripts/gpu_check.sh graphs    # PyramidNet-200: reduce-overhead (CUDA graphs)            (compile-bound)
#   bash scripts/gpu_check.sh decode    # ImageNet JPEGs decoded (nvJPEG) + augmented on the GPU, img/s
#   bash scripts/gpu_check.sh train     # 3 epochs of the real trainer, bf16 + channels_last + compile on
#                                       # synthetic data: steady img/s, no recompilation after epoch 1
#   bash scripts/gpu_check.sh switches  # augment= on the GPU-resident CIFAR loader and the weight EMA
#                                       # update on CUDA, then 2 compiled epochs with EMA, cosine,
#                                       # TrivialAugment, erasing and the csv logger on               (~3 min)
#   bash scripts/gpu_check.sh fused     # fused members: PyramidNet-200 k = 1, 2, 4, 8 as one model vs solo,
#                                       # memory per member, and the solo step captured as one CUDA graph
#                                       # (trainer.capture); then 4 runs through hydra/launcher=fused,
#                                       # bf16, checked to finish as one group                          (~4 min)
#   bash scripts/gpu_check.sh fashion   # the FMix paper's Fashion-MNIST protocol (reproduce fashion_mnist):
#                                       # PreAct-ResNet-18 1x28x28 img/s recorded for its estimate, then the
#                                       # table fused, bf16, FASHION_EPOCHS epochs (default 200), resumable;
#                                       # needs the four files in data/FashionMNIST/raw/ (carry data)     (~4 min+)
#   bash scripts/gpu_check.sh all       # all of the above in turn (no per-call time limit)
#
# Every part is rerunnable (the training run overwrites its own folder). Inductor's cache lives in
# .cache/inductor (git-ignored): a later part on the same machine reuses what an earlier one compiled,
# and the compile parts run with a time limit (GPU_CHECK_LIMIT seconds, default 480) so that a cold
# cache cannot take a whole 10-minute call without a word. Dynamo hitting its recompile limit is an
# error (engine/compiled.py), so a run never passes by silently falling back to eager.
# Results: OUT_DIR (default results/bench): the bench report and throughput.json, gpu_check_run/.
set -euo pipefail
cd "$(dirname "$0")/.."
PART=${1:-all}
OUT=${2:-${OUT:-results/bench}}
LIMIT=${GPU_CHECK_LIMIT:-480}
case "$PART" in
    setup|eager|compiled|graphs|decode|train|switches|fused|fashion|all) ;;
    *) echo "error: part '$PART' is not one of setup, eager, compiled, graphs, decode, train, switches, fused," \
            "fashion, all" >&2
       exit 2 ;;
esac
mkdir -p "$OUT" .cache/inductor
export TORCHINDUCTOR_CACHE_DIR=$PWD/.cache/inductor PYTHONUNBUFFERED=1

ensure_hydra() {
    if python3 -c "import hydra, omegaconf, tqdm" 2>/dev/null; then
        return
    fi
    if ! compgen -G ".whl/*.whl" > /dev/null; then
        echo "error: hydra-core/omegaconf are missing and .whl/ holds no wheels: run bash scripts/gpu_wheels.sh" \
             "where pip works and carry .whl" >&2
        exit 2
    fi
    if [ ! -f .cache/site/.installed ] || [ .whl -nt .cache/site/.installed ]; then
        rm -rf .cache/site
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target .cache/site .whl/*.whl
        touch .cache/site/.installed
    fi
    export PYTHONPATH=$PWD/.cache/site${PYTHONPATH:+:$PYTHONPATH}
    python3 -c "import hydra, omegaconf, tqdm" || { echo "error: Hydra does not import from .cache/site" >&2; exit 2; }
}

ensure_hydra
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
python3 - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA device"
print(f"{torch.cuda.get_device_name(0)} | torch {torch.__version__} | CUDA {torch.version.cuda}")
PY

bench() {  # the bench's own arguments; killed (exit 124) past the limit
    timeout "$LIMIT" python3 -m cutmix_repro.bench --out "$OUT" "$@"
}

part_setup() {
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
    python3 - <<'PY'
import hydra, torch
from cutmix_repro.config import compose
from cutmix_repro.models import create_model
from cutmix_repro.regularizers import CutMix, mixed_cross_entropy

cfg = compose(["+experiment=cifar100_pyramidnet"])
model = create_model("pyramidnet200", 100).cuda()
x, y = torch.randn(8, 3, 32, 32, device="cuda"), torch.randint(0, 100, (8,), device="cuda")
batch = CutMix(capturable=True)(x, y)
with torch.autocast("cuda", dtype=torch.bfloat16):
    logits = model(batch.inputs)
loss = mixed_cross_entropy(logits, batch)
loss.backward()
assert logits.dtype == torch.float32 and torch.isfinite(loss), (logits.dtype, loss)
print(f"setup ok: hydra {hydra.__version__}, {cfg.model._target_}, one bf16 step of PyramidNet-200, loss {loss.item():.3f}")
PY
}

part_eager() { bench --only mixing,cuda --modes eager; }
part_compiled() { bench --only cuda --cuda-models pyramidnet200 --modes default; }
part_graphs() { bench --only cuda --cuda-models pyramidnet200 --modes reduce-overhead; }
part_decode() { bench --only decoding; }
part_switches() {  # their cost, then 2 epochs of the trainer with all of them on, compiled, in bf16
    bench --only augment
    timeout "$LIMIT" python3 -m cutmix_repro.train dataset=synthetic dataset.train_size=4096 dataset.test_size=1000 \
        dataset.num_classes=100 model=pyramidnet110 regularizer=cutmix trainer.epochs=2 trainer.batch_size=64 \
        trainer.device=cuda trainer.amp=bf16 trainer.compile=true scheduler=cosine scheduler.warmup_epochs=1 \
        trainer.ema_decay=0.9998 \
        augment=trivialaugment augment.random_erasing=0.25 'logger=[tensorboard,csv]' \
        trainer.progress=false trainer.overwrite=true hydra.run.dir="$OUT/gpu_check_switches"
    python3 - "$OUT/gpu_check_switches/results.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["status"] == "finished" and set(r["switches"]) == {"scheduler", "ema_decay", "augment"}, r["switches"]
h = r["history"]
assert all("val_top1_err_ema" in e for e in h) and h[1]["compiled_graphs"] == h[0]["compiled_graphs"], h
print(f"switches on {r['machine'].get('gpu')}: epoch 2 {h[1]['images_per_s']:.0f} img/s with EMA + TrivialAugment + "
      f"erasing, compiled ({h[0]['compiled_graphs']} graphs, none after epoch 1)")
PY
}

part_train() {
    timeout "$LIMIT" python3 -m cutmix_repro.train dataset=synthetic dataset.train_size=8192 dataset.test_size=1000 \
        dataset.num_classes=100 model=pyramidnet110 regularizer=cutmix trainer.epochs=3 trainer.batch_size=64 \
        trainer.device=cuda trainer.amp=bf16 trainer.channels_last=true trainer.compile=true \
        trainer.progress=false trainer.overwrite=true hydra.run.dir="$OUT/gpu_check_run"
    python3 - "$OUT/gpu_check_run/results.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["status"] == "finished" and r["amp"] == "torch.bfloat16" and r["compiled"] == "model" and r["channels_last"], r
history = r["history"]
graphs = [h["compiled_graphs"] for h in history]
assert graphs[1:] == graphs[:1] * (len(graphs) - 1), f"recompiled after the first epoch: graphs per epoch {graphs}"
assert all(h["graph_breaks"] == 0 for h in history), [h["graph_breaks"] for h in history]
print(f"gpu check training run on {r['machine'].get('gpu')}: steady {r['steady_images_per_s']:.0f} img/s "
      f"(first epoch, with compilation: {history[0]['images_per_s']:.0f} img/s), {graphs[0]} graphs, "
      f"last top-1 error {r['last_top1_err']:.2f}%")
PY
}

part_fused() {  # what fusion buys on this GPU, then the launcher end to end
    bench --only fused --fused-devices cuda
    timeout "$LIMIT" python3 -m cutmix_repro.train -m dataset=synthetic dataset.train_size=4096 dataset.test_size=1000 \
        dataset.num_classes=100 model=pyramidnet110 regularizer=baseline,cutmix,mixup,cutout trainer.epochs=2 \
        trainer.batch_size=64 trainer.device=cuda trainer.amp=bf16 trainer.progress=false trainer.overwrite=true \
        hydra/launcher=fused hydra.sweep.dir="$OUT/gpu_check_fused"
    timeout "$LIMIT" python3 -m cutmix_repro.train -m dataset=synthetic dataset.train_size=4096 dataset.test_size=1000 \
        dataset.num_classes=100 model=pyramidnet110 regularizer=cutmix,mixup regularizer.capturable=true seed=0,1 \
        trainer.epochs=2 trainer.batch_size=64 trainer.device=cuda trainer.amp=bf16 trainer.capture=true \
        trainer.progress=false trainer.overwrite=true hydra/launcher=fused hydra.sweep.dir="$OUT/gpu_check_fused_captured"
    python3 - "$OUT/gpu_check_fused" "$OUT/gpu_check_fused_captured" <<'PY'
import json, pathlib, sys
for folder, captured in ((sys.argv[1], False), (sys.argv[2], True)):
    runs = [json.loads(p.read_text()) for p in sorted(pathlib.Path(folder).glob("*/results.json"))]
    assert len(runs) == 4 and all(r["status"] == "finished" and r["fused_group_size"] == 4 and
                                  r["captured"] == captured for r in runs), runs
    ips = runs[0]["history"][1]["images_per_s"]
    print(f"fused launcher on {runs[0]['machine'].get('gpu')}{', captured' if captured else ''}: 4 members of "
          f"PyramidNet-110, epoch 2 {ips:.0f} img/s per member, {4 * ips:.0f} img/s in all")
PY
}

part_fashion() {  # the FMix paper's Fashion-MNIST table: its model's rate, then as much of the table as the time allows
    if ! ls data/FashionMNIST/raw/train-images-idx3-ubyte* > /dev/null 2>&1; then
        echo "error: no Fashion-MNIST files in data/FashionMNIST/raw/: copy the four *-ubyte.gz files of" \
             "/usr/share/datasets/fashion-mnist there and carry data" >&2
        exit 2
    fi
    bench --only cuda --cuda-models preact_resnet18
    timeout "$LIMIT" python3 -m cutmix_repro.reproduce fashion_mnist --fuse --runs-dir "$OUT/runs" \
        --out "$OUT/fashion_mnist_report" dataset.root=data trainer.device=cuda trainer.amp=bf16 \
        trainer.epochs="${FASHION_EPOCHS:-200}" trainer.resume=true || echo "fashion: stopped at the time limit;" \
        "the same command resumes (trainer.resume=true)"
}

if [ "$PART" = all ]; then
    for p in setup eager compiled graphs decode train switches fused fashion; do echo "== $p"; "part_$p"; done
else
    "part_$PART"
fi
