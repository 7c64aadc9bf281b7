"""Docs that cannot rot: every fenced shell block of the README and of docs/ is read, and each
``python -m cutmix_repro.…`` line in it must compose (the Hydra commands through the project's own compose check
with their overrides; the others through their own argument parsers, stopped right after parsing); every relative
link and every repository path named exists; every config group and option named exists."""

from __future__ import annotations

import argparse
import glob
import re
import shlex
from pathlib import Path

import pytest

from cutmix_repro.config import options

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
SHELL = {"bash", "sh", "shell", "console"}
COMMAND = re.compile(r"(?:^|\s)(?:\S*python3?|torchrun(?:\s+--\S+)*)\s+-m\s+cutmix_repro\.([\w.]+)(.*)$")


def shell_lines(page: Path) -> list[str]:
    """The commands of a page's shell blocks: continuation lines joined, comments dropped."""
    lines = []
    for lang, body in FENCE.findall(page.read_text()):
        if lang not in SHELL:
            continue
        for line in body.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def commands() -> list[tuple[str, str, list[str]]]:
    found = []
    for page in PAGES:
        for line in shell_lines(page):
            match = COMMAND.search(line)
            if match:
                args = shlex.split(match.group(2), comments=True)
                found.append((f"{page.relative_to(ROOT)}: {line[:90]}", match.group(1), args))
    return found


COMMANDS = commands()


class Parsed(Exception):
    """Raised by a command's argument parser right after it parsed: nothing runs."""


def parse_only(monkeypatch):
    """Make every ``argparse`` parser stop the command as soon as its arguments are parsed (the outermost parse:
    ``parse_known_intermixed_args`` parses twice inside)."""
    depth = {"n": 0}
    for name in ("parse_args", "parse_known_args", "parse_intermixed_args", "parse_known_intermixed_args"):
        real = getattr(argparse.ArgumentParser, name)

        def stop(self, *args, _real=real, **kwargs):
            depth["n"] += 1
            try:
                result = _real(self, *args, **kwargs)
            finally:
                depth["n"] -= 1
            if depth["n"] == 0:
                raise Parsed(result)
            return result

        monkeypatch.setattr(argparse.ArgumentParser, name, stop)


def hydra_error(module: str, args: list[str]) -> str | None:
    from cutmix_repro.train import check_composes, check_group_overrides
    from cutmix_repro.transfer.__main__ import GROUPS as TRANSFER_GROUPS

    overrides = [a for a in args if not a.startswith("-")]
    for arg in overrides:
        if arg.lstrip("+").startswith("hydra/launcher="):
            launcher = arg.split("=", 1)[1]
            if launcher not in [*options("hydra/launcher"), "basic"]:
                return f"hydra/launcher={launcher!r} is unknown"
    if module == "train":
        return check_group_overrides(overrides) or check_composes(overrides)
    return check_group_overrides(overrides, TRANSFER_GROUPS) or check_composes(overrides, "transfer")


def test_the_pages_hold_commands_of_every_kind():
    kinds = {module for _, module, _ in COMMANDS}
    assert {"train", "transfer", "reproduce", "report", "evaluate", "bench", "export", "figure1"} <= kinds, kinds
    assert len(COMMANDS) > 40


@pytest.mark.parametrize("where, module, args", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_documented_command_composes(where, module, args, monkeypatch):
    args = [a.replace("$PWD", str(ROOT)) for a in args]  # the one shell variable the pages use
    assert not any("$" in a for a in args), args
    if module in ("train", "transfer"):
        if any(a.startswith("hydra.searchpath") for a in args):  # a config folder of the user's own
            args = [a for a in args if not a.startswith("hydra.searchpath") and not a.startswith("regularizer=")]
        assert hydra_error(module, args) is None, hydra_error(module, args)
        return
    import importlib

    main = importlib.import_module(f"cutmix_repro.{module}").main
    parse_only(monkeypatch)
    with pytest.raises(Parsed) as parsed:
        main(args)
    if module == "reproduce":  # the table's name, and the overrides it hands every run
        from cutmix_repro.reproduce import NAMES

        namespace = parsed.value.args[0][0] if isinstance(parsed.value.args[0], tuple) else parsed.value.args[0]
        assert namespace.name in NAMES
        overrides = [o for o in namespace.overrides if "=" in o and not o.startswith("task.")]
        if overrides and namespace.name not in ("table10",):
            assert hydra_error("train", overrides) is None, hydra_error("train", overrides)


def scripts_and_parts() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for line in shell_lines(page):
            for script, rest in re.findall(r"bash\s+(scripts/\S+\.sh)\s*(\S*)", line):
                found.append((script, rest))
    return found


def test_every_documented_script_and_gpu_check_part_exists():
    found = scripts_and_parts()
    assert found
    for script, part in found:
        assert (ROOT / script).is_file(), script
        if script.endswith("gpu_check.sh") and part and not part.startswith(("#", "/", "PART")):
            text = (ROOT / script).read_text()
            assert f"part_{part}()" in text or part == "all", f"gpu_check.sh has no part {part!r}"


LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_every_relative_link_and_its_anchor_exists():
    checked = 0
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            assert resolved.exists(), f"{page.relative_to(ROOT)} links to {target}, which does not exist"
            if anchor:
                headings = re.findall(r"^#+ (.+)$", resolved.read_text(), re.M)
                slugs = {re.sub(r"[^\w\- ]", "", h.lower()).strip().replace(" ", "-") for h in headings}
                assert anchor in slugs, f"{page.relative_to(ROOT)}: {target} names no heading of {path}"
            checked += 1
    assert checked > 20


PATH = re.compile(r"`((?:cutmix_repro|configs|scripts|tests|results|docs)/[^`\s]*)`")


def test_every_repository_path_named_exists():
    checked = 0
    for page in PAGES:
        for named in PATH.findall(page.read_text()):
            path = named.split(":")[0].rstrip("/.,")
            if "<" in path or "…" in path or re.search(r"\b[A-Z]{3,}\b", path):
                continue  # a pattern with a placeholder (runs/<date>/…, configs/model/NAME.yaml)
            assert glob.glob(str(ROOT / path)), f"{page.relative_to(ROOT)} names {named}, which does not exist"
            checked += 1
    assert checked > 30


# group=option, but not a switch as runs show it ("scheduler=cosine_warmup(…)")
CHOICE = re.compile(r"(?<![\w.])\+{0,2}(dataset|model|regularizer|optimizer|scheduler|augment|experiment|task|"
                    r"hydra/launcher)=([\w\[\],]+)(?![\w\[\],]|\s*\()")


def test_every_config_group_and_option_named_exists():
    checked = 0
    for page in PAGES:
        text = "\n".join(line for line in page.read_text().splitlines() if "hydra.searchpath" not in line)
        for group, values in CHOICE.findall(text):  # (a config folder of the user's own names its own options)
            known = options(group) + (["basic"] if group == "hydra/launcher" else [])
            for value in filter(None, values.strip("[]").split(",")):
                if value.isupper() or value in ("NAME", "X", "N"):
                    continue  # a placeholder (regularizer=NAME)
                assert value in known, f"{page.relative_to(ROOT)} names {group}={value}: not one of {known}"
                checked += 1
    assert checked > 30
