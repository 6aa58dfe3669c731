"""The package's structure: one way into checkpoints, no reaching into other modules."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "iic_helpers"


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_only_the_checkpoint_module_calls_torch_load() -> None:
    callers = [
        str(p.relative_to(PACKAGE))
        for p in _modules()
        if "torch.load(" in p.read_text() and p.name != "checkpoint.py"
    ]
    assert callers == [], f"read checkpoints through iic_helpers.checkpoint, not in {callers}"


def test_old_checkpoint_names_are_the_checkpoint_modules() -> None:
    from iic_helpers import checkpoint, finetune, models, retrieval
    from iic_helpers.models import loading

    for name in ("load_weights", "read_checkpoint", "LoadReport", "CheckpointMismatchError"):
        assert getattr(models, name) is getattr(checkpoint, name)
        assert getattr(loading, name) is getattr(checkpoint, name)
    assert retrieval.load_backbone is checkpoint.load_backbone
    assert retrieval.backbone_for_checkpoint is checkpoint.backbone_for_checkpoint
    assert finetune.load_backbone is checkpoint.load_backbone


def test_no_module_imports_another_modules_private_names() -> None:
    found = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                found += [
                    f"{path.relative_to(PACKAGE)}: {a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
    assert found == []


def test_every_module_lists_its_public_functions_in_all() -> None:
    missing = []
    for path in _modules():
        tree = ast.parse(path.read_text())
        names = {
            n.name
            for n in tree.body
            if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and not n.name.startswith("_")
        }
        declared: set[str] = set()
        for n in tree.body:
            if isinstance(n, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets
            ):
                try:
                    declared = set(ast.literal_eval(n.value))
                except ValueError:  # computed (e.g. exercises' CHECKS): ask the module
                    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
                    name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
                    declared = set(importlib.import_module(name).__all__)
        if names and not declared:
            missing.append(f"{path.relative_to(PACKAGE)}: no __all__")
        elif names - declared:
            missing.append(f"{path.relative_to(PACKAGE)}: {sorted(names - declared)}")
    assert missing == []


def test_every_cli_command_takes_only_the_flags_it_reads() -> None:
    import pytest

    from iic_helpers.__main__ import build_parser

    parser = build_parser()
    ok = {
        "validate": ["--preset", "tiny", "--data-root", "d", "--set", "clip_len=8", "--debug"],
        "retrieve": ["--run-dir", "r", "--seed", "1", "--device", "cpu", "--threads", "1"],
        "finetune": ["--epochs", "2", "--run-dir", "r"],
    }
    for command, flags in ok.items():
        parser.parse_args([command, *flags])
    ignored = {
        "make-synthetic": ["--epochs", "3"],
        "validate": ["--run-dir", "r"],
        "flow": ["--threads", "1"],
        "retrieve": ["--epochs", "3"],
        "linear-probe": ["--epochs", "3"],
        "ablation": ["--seed", "3"],  # the ablation's seeds are --seeds
    }
    for command, flags in ignored.items():
        with pytest.raises(SystemExit):
            parser.parse_args([command, *flags])


def test_cli_prints_paths_inside_the_repository_relative_to_it(tmp_path) -> None:
    from iic_helpers.__main__ import shown

    repo = PACKAGE.parent
    assert shown(repo / "runs" / "tiny-finetune" / "results.json") == str(
        Path("runs") / "tiny-finetune" / "results.json"
    )
    assert shown(tmp_path / "x.pt") == str(tmp_path / "x.pt")


BRITISH = "normali" + "s"  # split so that this file does not match its own search


def _british_spellings(paths: list[Path]) -> list[str]:
    """``file:line`` for every line of ``paths`` that spells normalize the British way."""
    repo = PACKAGE.parent
    return [
        f"{path.relative_to(repo) if path.is_relative_to(repo) else path}:{number}"
        for path in paths
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if BRITISH in line.lower()
    ]


def test_normalize_is_spelled_one_way(tmp_path) -> None:
    """The package, scripts and top-level docs say normalize/normalized/normalization."""
    repo = PACKAGE.parent
    planted = tmp_path / "planted.py"
    planted.write_text('"""Features are L2-Normalised."""\n')
    assert _british_spellings([planted]) != []  # the search finds what it looks for
    paths = [
        p
        for folder in (PACKAGE, repo / "scripts")
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix in {".py", ".md", ".txt", ".toml", ".json"}
    ] + [repo / "README.md", repo / "ARCHITECTURE.md"]
    found = _british_spellings(paths)
    assert found == [], f"write normalize (American spelling, as torch does) in {found}"
