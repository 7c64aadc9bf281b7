"""Benchmarks against what users would otherwise run, measured side by side in one process.

``python -m cutmix_repro.bench [--quick] [--out results/bench]`` measures, each as a ratio:
  1. the mixing op: our CutMix vs ``timm.data.Mixup`` (CutMix mode) vs
     ``torchvision.transforms.v2.CutMix`` on 64×3×32×32 and 64×3×224×224 batches;
  2. the CIFAR input pipeline: our on-device batched crop/flip vs torchvision's CIFAR data set
     with the official PIL transforms in a DataLoader, in images/s;
  3. trainer overhead: our full training step (CutMix, loss, metrics, logging) vs a bare
     hand-written loop on the same model and batches, on the CPU;
  4. on CUDA (when present): steady-state training images/s of PyramidNet-200 (CIFAR batches of 64)
     and ResNet-50 (224×224 batches) for our step (bf16 autocast, channels_last) in each compile mode
     of ``--modes`` (eager, default, reduce-overhead = CUDA graphs) vs an official-style fp32 NCHW
     loop, achieved TFLOP/s, and the projected wall time of a 300-epoch CIFAR run;
  6. ImageNet input: host CPU time per training image of the PIL pipeline vs the device pipeline
     (``dataset.pipeline=device``), and each one's images/s (on CUDA: decoding + augmentation at batch 256);
  5. on the CPU: the same step eager vs compiled (``torch.compile``, as ``trainer.compile=true``), and
     the graphs and graph breaks dynamo counted, for a whole-model and a per-stage (feature CutMix)
     compilation and for ShakeDrop;
  7. Table 10's detectors: training images/s of each one's step beside ResNet-50's classification step on the
     same device, and the GPU-hours of the paper's recipes projected from ResNet-50's measured GPU throughput;
  8. what the devkit's +1 pixel changes in VOC07 mAP, on synthetic VOC-sized detections;
  9, 10. extra augmentation and weight EMA costs;
  11. the shapes of FMix's masks from the authors' spectrum and from the isotropic one;
  12. fused members: k runs as one fused model against k solo runs (``bench/fused.py``);
  13. how often SaliencyMix's saliency peak lands on the object, for each saliency input (``bench/saliency.py``).
It writes ``results/bench/<date>_<device>.md`` (date, machine, versions) and appends GPU
throughput to ``results/bench/throughput.json`` for the reproduce scripts' estimates.
"""

from .cli import main
from .common import forward_flops, median_time, table, timer

__all__ = ["forward_flops", "main", "median_time", "table", "timer"]
