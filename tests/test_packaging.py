"""`pip install` of the package (not only an editable checkout) carries configs and paper data."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_every_module_config_and_the_paper_tables(tmp_path):
    import shutil

    pytest.importorskip("setuptools")
    source = tmp_path / "source"  # a copy: setuptools builds in its source tree (build/), not in the checkout
    local = {".venv", ".git", "build", "dist", "runs", "data", "outputs", "multirun"}  # the checkout's own, top level

    def ignore(folder, names):
        top = Path(folder) == ROOT
        return [n for n in names if (top and n in local) or n == "__pycache__" or n.endswith((".egg-info", "_cache"))]

    shutil.copytree(ROOT, source, ignore=ignore)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", str(source), "--no-deps", "--no-build-isolation",
                           "-w", str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "absent from" not in proc.stdout + proc.stderr, "every folder of configs/ is declared to setuptools"
    names = set(zipfile.ZipFile(next(tmp_path.glob("*.whl"))).namelist())
    configs = {f"cutmix_repro/configs/{p.relative_to(ROOT / 'configs')}" for p in (ROOT / "configs").rglob("*.yaml")}
    assert configs and configs <= names, sorted(configs - names)
    assert "cutmix_repro/paper_tables.yaml" in names
    modules = {f"cutmix_repro/{p.relative_to(ROOT / 'cutmix_repro')}" for p in (ROOT / "cutmix_repro").rglob("*.py")}
    # the fused launcher ships where Hydra's plugin scan finds it: the hydra_plugins namespace
    modules = {m.replace("cutmix_repro/hydra_plugins/", "hydra_plugins/") for m in modules}
    assert "hydra_plugins/cutmix_repro_fused/__init__.py" in modules
    assert modules <= names, sorted(modules - names)
