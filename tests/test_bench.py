"""The benchmark runs at tiny sizes and writes its report (targets are read from its output,
never asserted by timing here)."""

import subprocess
import sys
from pathlib import Path

from cutmix_repro.bench import forward_flops
from cutmix_repro.models import create_model
from cutmix_repro.paper import load_tables

ROOT = Path(__file__).resolve().parents[1]


def test_bench_quick_writes_a_report_with_every_section(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "cutmix_repro.bench", "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    reports = list(tmp_path.glob("*.md"))
    assert len(reports) == 1
    text = reports[0].read_text()
    for heading in ("Mixing op", "CIFAR input pipeline", "Trainer overhead", "CUDA training throughput"):
        assert heading in text
    assert "torch" in text and "Machine" in text and text.startswith("# Benchmarks, 20")
    assert "ours / timm" in text and "speed-up" in text


def test_pyramidnet200_costs_nine_gflop_per_image_forward():
    flops = forward_flops(create_model("pyramidnet200", 100), (3, 32, 32))
    assert abs(flops / 1e9 - load_tables()["models"]["pyramidnet200_forward_gflop"]) < 0.2


def test_gpu_check_script_is_valid_bash():
    assert subprocess.run(["bash", "-n", str(ROOT / "scripts" / "gpu_check.sh")]).returncode == 0
