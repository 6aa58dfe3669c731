"""The environment files agree, and the repository has the layout DESIGN.md fixes."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["dev"]
    pins = {}
    for req in requirements:
        name, _, version = req.partition("==")
        assert version, f"pyproject.toml: {req!r} is not pinned with =="
        pins[name.strip().lower()] = version.strip()
    return pins


def _environment_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "environment.yml").read_text().splitlines():
        match = re.match(r"^\s*-\s*([A-Za-z0-9_.\-]+)==([^\s#]+)", line)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def test_environment_yml_matches_pyproject() -> None:
    assert _environment_pins() == _pyproject_pins()
    text = (REPO / "environment.yml").read_text()
    assert "python=3.11" in text and "-e ." in text


def test_torch_pair_is_the_ci_pair() -> None:
    pins = _pyproject_pins()
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"


def test_layout() -> None:
    for path in (
        "README.md",
        "Makefile",
        ".ci/run",
        "iic_helpers/__init__.py",
        "notebooks",
        "data",
    ):
        assert (REPO / path).exists(), path
    assert "make test" in (REPO / ".ci/run").read_text()
