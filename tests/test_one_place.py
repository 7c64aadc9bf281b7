"""One fact, one place: configs built on another config state only what differs, Python keeps no default
that the configs always set, names of recorded fields are written once, errors carry their key as data,
and the repository points at nothing outside itself."""

import inspect
import re
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from cutmix_repro.config import GROUPS, build, compose, config_dir, options
from cutmix_repro.engine import records as R
from cutmix_repro.errors import ConfigError
from cutmix_repro.models import model_config

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cutmix_repro"


def composed(group: str, name: str):
    if group == "experiment":
        return compose([f"+experiment={name}"])
    return compose([f"{group}={name}"])[group]


def derived_configs():
    """(group, name, base, the keys the file sets itself) of every config built on a sibling config."""
    for group in GROUPS:
        for name in options(group):
            text = yaml.safe_load((config_dir() / group / f"{name}.yaml").read_text()) or {}
            bases = [d for d in text.get("defaults", []) if isinstance(d, str) and d in options(group)]
            if bases:
                yield group, name, bases[0], {k: v for k, v in text.items() if k != "defaults"}


DERIVED = list(derived_configs())


def test_the_configs_that_should_be_deltas_are():
    names = {(group, name) for group, name, _, _ in DERIVED}
    assert {("dataset", "cifar10"), ("model", "pyramidnet200"), ("model", "pyramidnet110"), ("model", "resnet110"),
            ("model", "resnet50"), ("experiment", "cifar10_pyramidnet"), ("experiment", "imagenet_resnet101"),
            ("experiment", "imagenet_resnext101"), ("experiment", "cifar100_resnet110")} <= names


@pytest.mark.parametrize("group, name, base, own", DERIVED, ids=[f"{g}/{n}" for g, n, _, _ in DERIVED])
def test_a_config_built_on_another_sets_only_values_that_differ_from_it(group, name, base, own):
    base_cfg = composed(group, base)
    flat_base = OmegaConf.to_container(base_cfg, resolve=False)

    def differs(prefix, node, base_node):
        for key, value in node.items():
            other = base_node.get(key, "<absent>") if isinstance(base_node, dict) else "<absent>"
            if isinstance(value, dict):
                differs(f"{prefix}{key}.", value, other)
            else:
                assert value != other, f"{group}/{name}.yaml restates {prefix}{key}={value!r} of {base}"

    differs("", own, flat_base)


def test_every_model_preset_lives_in_one_config_only():
    factory = (PACKAGE / "models" / "factory.py").read_text()
    for name in ("pyramidnet200", "pyramidnet110", "resnet110", "resnext101_32x4d"):
        assert name not in factory, f"the factory restates the preset {name}"
    assert model_config("pyramidnet200").depth == 200


TARGET_GROUPS = ("dataset", "model", "scheduler")


@pytest.mark.parametrize("group", TARGET_GROUPS)
def test_python_keeps_no_default_for_what_the_configs_always_set(group):
    for name in options(group):
        cfg = OmegaConf.to_container(composed(group, name), resolve=False)
        module, _, attr = cfg["_target_"].rpartition(".")
        target = getattr(__import__(module, fromlist=[attr]), attr)
        signature = inspect.signature(target)
        for key in cfg:
            parameter = signature.parameters.get(key)
            if parameter is not None:
                assert parameter.default is inspect.Parameter.empty, f"{group}/{name}: {attr}({key}=...) default"


FIELDS = [R.BEST_TOP1, R.BEST_TOP5, R.BEST_EPOCH, R.LAST_TOP1, R.LAST_TOP5, R.TRAIN_LOSS, R.TRAIN_TOP1, R.VAL_LOSS,
          R.VAL_TOP1, R.VAL_TOP5, R.VAL_COUNT, R.EPOCHS_DONE, R.WALL_TIME]


def test_the_names_of_recorded_fields_are_written_once():
    for path in PACKAGE.rglob("*.py"):
        if path.name == "records.py":
            continue
        text = path.read_text()
        for field in FIELDS:
            assert f'"{field}"' not in text and f"'{field}'" not in text, f"{path.name} spells {field!r}"


def test_one_module_joins_the_process_group_and_knows_the_rank():
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if path.name != "distributed.py":
            assert "init_process_group" not in text and 'environ.get("RANK"' not in text, path.name


class Picky:
    def __init__(self, alpha, note):
        if note == "config":
            raise ConfigError("alpha", alpha, "needs alpha > 0 (a=b in the text changes nothing)")
        raise ValueError("size=3 is not a key of this component")


def test_an_error_carries_its_key_as_data_and_build_adds_the_group():
    node = OmegaConf.create({"_target_": f"{__name__}.Picky", "alpha": 0, "note": "config"})
    with pytest.raises(ConfigError) as err:
        build(node, "regularizer")
    assert err.value.key == "regularizer.alpha" and err.value.value == 0
    assert str(err.value) == "regularizer.alpha=0 is invalid: needs alpha > 0 (a=b in the text changes nothing)"
    node.note = "other"
    with pytest.raises(ConfigError) as err:
        build(node, "regularizer")
    assert err.value.key == "regularizer", "text that looks like a key is not parsed into one"
    assert str(err.value) == "regularizer: ValueError: size=3 is not a key of this component"


OUTSIDE = re.compile(r"REFERENCE" + r"\.md|\.\./" + r"shared|shared/" + r"paper")


def test_nothing_in_the_repository_points_outside_it():
    checked = 0
    for top in ("cutmix_repro", "configs", "scripts", "tests", "results", "docs"):
        for path in (ROOT / top).rglob("*"):
            if path.suffix in (".py", ".yaml", ".sh", ".md", ".json") and "__pycache__" not in str(path):
                assert not OUTSIDE.search(path.read_text()), path
                checked += 1
    for name in ("README.md", "pyproject.toml", "Makefile"):
        assert not OUTSIDE.search((ROOT / name).read_text()), name
    assert checked > 40


# the packages of the dev extra, by the module a test imports: every test that needs one says so through
# helpers.needs (skip naming the extra; fail under make test's CUTMIX_REQUIRE_EXTRAS=1), the suite's one rule
DEV_MODULES = ("cv2", "torchmetrics", "pycocotools", "pycocoevalcap", "wandb", "mlflow", "hydra_plugins")


def test_every_test_that_needs_a_dev_extra_package_goes_through_needs():
    import ast

    broken = []
    for path in sorted((ROOT / "tests").glob("*.py")):
        tree = ast.parse(path.read_text())
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)):
            if call.func.attr == "importorskip" and not (call.args and getattr(call.args[0], "value", "") ==
                                                         "setuptools"):  # the build's own, not the dev extra's
                broken.append(f"{path.name}:{call.lineno}: importorskip (use helpers.needs)")

        def calls_needs(nodes) -> bool:
            return any(isinstance(c, ast.Call) and getattr(c.func, "id", None) in ("needs", "needs_opencv_saliency")
                       for c in nodes)

        module_needs = calls_needs(n for statement in tree.body if not isinstance(statement, ast.FunctionDef)
                                   for n in ast.walk(statement))
        scopes = [("module", tree.body)] + [(f.name, list(ast.walk(f))) for f in ast.walk(tree)
                                           if isinstance(f, ast.FunctionDef) and f.name.startswith("test_")]
        for name, nodes in scopes:
            imported = [a.name for n in nodes if isinstance(n, ast.Import) for a in n.names]
            imported += [n.module for n in nodes if isinstance(n, ast.ImportFrom) and n.module]
            if any(m.split(".")[0] in DEV_MODULES for m in imported):
                if not (module_needs or (name != "module" and calls_needs(nodes))):
                    broken.append(f"{path.name}::{name} imports a dev-extra package without needs()")
    assert not broken, broken
    makefile = (ROOT / "Makefile").read_text()
    assert "CUTMIX_REQUIRE_EXTRAS=1" in makefile.split("\ntest:")[1], "make test installs the extra: none may skip"


def _package_imports() -> dict[str, set[str]]:
    """{module: the package's modules it imports, at the top or inside a function}."""
    import ast

    paths = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        paths[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in paths.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else [])) \
                    if node.level else (node.module or "")
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                if target.startswith("hydra_plugins."):  # pyproject maps the plugin package to ours
                    target = "cutmix_repro." + target
                while target and target not in paths:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    deps.add(target)
                    break
        graph[name] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles = []

    def visit(node, path, on_path):
        for dep in sorted(graph.get(node, ())):
            if dep in on_path:
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in done:
                visit(dep, path + [dep], on_path | {dep})
        done.add(node)

    done: set[str] = set()
    for start in sorted(graph):
        if start not in done:
            visit(start, [start], {start})
    return cycles


def _by_part(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The import graph of the package's parts: its subpackages and top-level modules (``cutmix_repro.engine``,
    ``cutmix_repro.fusion``, ``cutmix_repro.localization``), a module's imports counted for its part."""
    def part(module: str) -> str:
        return ".".join(module.split(".")[:2])

    parts: dict[str, set[str]] = {}
    for module, deps in graph.items():
        parts.setdefault(part(module), set()).update(part(d) for d in deps if part(d) != part(module))
    return parts


def test_the_package_has_no_import_cycle():
    """Modules import one way (transfer/run → transfer/tasks, evaluation → models, …): no cycle, not even through
    an import inside a function; and the package's parts too (``engine`` → ``localization``, never back; ``fusion``
    → ``engine``, never back), so a lazy import cannot hide a layer importing the one above it."""
    graph = _package_imports()
    cycles = _cycles(graph) + _cycles(_by_part(graph))
    assert not cycles, " ; ".join(" -> ".join(c) for c in cycles)
    assert "cutmix_repro.engine.distributed" in graph["cutmix_repro.fusion.loop"]  # the graph sees what is imported
    assert "cutmix_repro.localization" in graph["cutmix_repro.engine.step"]


def test_no_module_of_the_package_is_over_about_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 420}
    assert not long, long
