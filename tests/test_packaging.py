"""The environment files agree, and the repository has the documented layout."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]


def _pyproject_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["dev"]
    return {canonicalize_name(Requirement(r).name): Requirement(r) for r in requirements}


def _constraint_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"constraints.txt: {line!r} is not an exact pin (name==version)"
            pins[canonicalize_name(name)] = version.strip()
    return pins


def _environment_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "environment.yml").read_text().splitlines():
        match = re.match(r"^\s*-\s*([A-Za-z0-9_.\-]+)==([^\s#]+)", line)
        if match:
            pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def test_pyproject_declares_ranges_and_constraints_pin_each_within_them() -> None:
    """A library gives compatible ranges; the exact versions CI installs sit in constraints.txt."""
    requirements = _pyproject_requirements()
    pins = _constraint_pins()
    assert set(pins) == set(requirements), "constraints.txt must pin every dependency once"
    for name, req in requirements.items():
        assert "==" not in str(req.specifier), f"pyproject.toml: {req} forces an exact version"
        assert req.specifier, f"pyproject.toml: {req} has no range"
        assert req.specifier.contains(pins[name]), (
            f"constraints.txt pins {name}=={pins[name]} outside pyproject.toml's {req.specifier}"
        )


def test_python_versions_3_11_to_3_13() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    allowed = SpecifierSet(project["requires-python"])
    assert all(allowed.contains(v) for v in ("3.11.9", "3.12.1", "3.13.0"))
    assert not allowed.contains("3.10.14")
    makefile = (REPO / "Makefile").read_text()
    assert "-c constraints.txt" in makefile, "make setup must install with the constraints"


def test_environment_yml_matches_constraints() -> None:
    assert _environment_pins() == _constraint_pins()
    text = (REPO / "environment.yml").read_text()
    assert "python=3.11" in text and "-e ." in text


def test_torch_pair_is_the_ci_pair() -> None:
    pins = _constraint_pins()
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
