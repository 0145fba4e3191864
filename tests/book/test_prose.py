"""The notebooks' prose: numbers come from the outputs, exercises have hidden solutions.

- No digit in a markdown cell outside a glued value, a `{paper}` quote (whose numbers must occur
  in the paper's text), inline code, math symbols, an equation/table/figure/notebook number,
  a model or data set name, a list marker or the chapter number.
- A glued sentence follows the results store: a changed record in a temporary copy changes it.
- Each stage notebook ends with 2-4 exercises, one of them changing a parameter, each with a
  solution in a dropdown; solution code cells are tagged `solution` (hidden), and the smoke
  test (tests/test_notebooks_smoke.py) runs them.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest
import torch

from slimllm.book import observations, prose, run_notebooks
from slimllm.experiments.store import Store
from tests.helpers import NOTEBOOKS, ROOT

PAPER = ROOT.parent / "shared" / "paper" / "slimllm-icml2025.md"

NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
NAMES = re.compile(
    r"SmolLM2(?:-\d+M)?|LLaMA(?:-\d)?-\d+B|Llama-\d(?:-\d+B)?|Vicuna-\d+B|WikiText-\d|GPT-\d|"
    r"b?float(?:16|32|64)|fp(?:16|32)|bf16|q8_0|f16|f32|GGUF",
    re.IGNORECASE,
)
REFERENCE = re.compile(
    r"\b(?:Eqs?|Equations?|Tables?|Figures?|Fig|Sections?|Algorithm|Appendix|notebooks?)\.?"
    r"\s+\d+(?:\.\d+)?(?:\s*(?:-|\u2013|,|and|or)\s*\d+(?:\.\d+)?)*"
)
GLUE = re.compile(r"\{glue(?::\w+)?\}`[^`]*`")
PAPER_ROLE = re.compile(r"\{paper\}`([^`]*)`")
CODE = re.compile(r"`[^`]*`")
LINK_TARGET = re.compile(r"\]\([^)]*\)")
DISPLAY_MATH = re.compile(r"\$\$.*?\$\$", re.DOTALL)
INLINE_MATH = re.compile(r"\$[^$]+\$")
#: In math, digits may only be single-digit constants (i+1, 1/K) and equation tags.
MATH_TAG = re.compile(r"\\tag\{\d+\}|\\quad\s*\(\d+\)")
MATH_NUMBER = re.compile(r"(?<![\d.])\d(?![\d.])")
LINE_FORMS = re.compile(r"^\s*\d+\.\s|^#\s+\d+\.\s|^:[\w-]+:.*$|^:{3,}\{[\w:-]+\}.*$", re.MULTILINE)


def paper_numbers() -> set[str]:
    return set(NUMBER.findall(PAPER.read_text())) if PAPER.is_file() else set()


def stray_numbers(markdown: str, paper: set[str]) -> list[str]:
    """Digits of `markdown` that are neither glued, quoted from the paper nor allowed forms."""
    problems = []
    for quote in PAPER_ROLE.findall(markdown):
        problems += [f"{n} (not in the paper)" for n in NUMBER.findall(quote) if n not in paper]
    text = PAPER_ROLE.sub(" ", GLUE.sub(" ", markdown))
    text = LINK_TARGET.sub("]", CODE.sub(" ", text))
    for pattern in (DISPLAY_MATH, INLINE_MATH):
        for math in pattern.findall(text):
            rest = MATH_NUMBER.sub(" ", MATH_TAG.sub(" ", math))
            problems += [f"{n} (in math {math[:40]!r})" for n in NUMBER.findall(rest)]
        text = pattern.sub(" ", text)
    text = NAMES.sub(" ", REFERENCE.sub(" ", LINE_FORMS.sub(" ", text)))
    return problems + NUMBER.findall(text)


def test_stray_numbers_finds_typed_values_only() -> None:
    paper = {"15.95"}
    assert stray_numbers("up to 0.86 on layer 14", paper) == ["0.86", "14"]
    assert stray_numbers("up to {glue:text}`top` (Eq. 11, Table 4, notebooks 5 and 6)", paper) == []
    assert stray_numbers("the paper: {paper}`15.95`, not {paper}`16.01`", paper) == [
        "16.01 (not in the paper)"
    ]
    assert stray_numbers("$$r_i = 1/K \\tag{11}$$ and $X_{i+1}$ on SmolLM2-135M", paper) == []
    assert stray_numbers("$\\alpha = 0.5$", paper) == ["0.5 (in math '$\\\\alpha = 0.5$')"]
    assert stray_numbers("1. **Predict.** run `alpha=1e-6`", paper) == []


def markdown_of(path: Path) -> list[str]:
    return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_markdown_has_no_typed_numbers(notebook: Path) -> None:
    paper = paper_numbers()
    stray = {i: s for i, md in enumerate(markdown_of(notebook)) if (s := stray_numbers(md, paper))}
    assert stray == {}, f"{notebook.name}: numbers typed into markdown cells (glue them): {stray}"


def glued_values(path: Path) -> dict[str, str]:
    """The strings a notebook glued (its committed outputs)."""
    glued = {}
    for cell in nbformat.read(path, as_version=4).cells:
        for out in cell.get("outputs", []):
            name = out.get("metadata", {}).get("scrapbook", {}).get("name")
            text = out.get("data", {}).get("application/papermill.record/text/plain")
            if name and text and not text.startswith("<"):
                glued[name] = ast.literal_eval(text)  # the repr of a str
    return glued


def test_glued_sentence_follows_a_changed_record(tmp_path: Path) -> None:
    notebook = ROOT / "notebooks" / "07_layer_ratios.ipynb"
    params = run_notebooks.declared_parameters(notebook)
    config = {k: params[k] for k in ("model", "dtype", "calib_samples", "calib_seq_len", "seed")}
    record = Store.book(ROOT / "results").get("nb_similarity", config)
    assert record is not None, "the committed store lacks notebook 7's similarity record"
    copy = tmp_path / "results"
    target = copy / record.path.relative_to(record.path.parents[1])
    target.parent.mkdir(parents=True)
    shutil.copy(record.path, target)
    data = json.loads(target.read_text())
    per_sample = torch.tensor(data["result"]["per_sample"])
    middle = per_sample.shape[0] // 2
    data["result"]["per_sample"][middle] = [0.05] * per_sample.shape[1]  # a layer turned aside
    target.write_text(json.dumps(data))

    sentence = next(md for md in markdown_of(notebook) if "sim_low_layers" in md)
    committed = glued_values(notebook)
    changed = Store(copy).get("nb_similarity", config)
    assert changed is not None
    per_sample = torch.tensor(changed.result["per_sample"])
    fresh = {**committed, **observations.layer_similarity(per_sample)}
    before, after = prose.render(sentence, committed), prose.render(sentence, fresh)
    assert before != after
    assert str(middle) in after.split("hidden state most are", 1)[1].split("(", 1)[0]


EXERCISE = re.compile(r"^\d+\.\s+\*\*([^*]+)\*\*", re.MULTILINE)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercises_have_hidden_solutions(notebook: Path) -> None:
    cells = nbformat.read(notebook, as_version=4).cells
    start = next(i for i, c in enumerate(cells) if "## Exercises" in c.source)
    tail = cells[start:]
    text = "\n".join(c.source for c in tail if c.cell_type == "markdown")
    kinds = EXERCISE.findall(text)
    assert 2 <= len(kinds) <= 4, f"{len(kinds)} exercises"
    assert any("change a parameter" in k.lower() for k in kinds)
    assert text.count(":::{dropdown} Solution") == len(kinds)
    for cell in tail:
        if cell.cell_type == "code" and "remove-cell" not in cell.metadata.get("tags", []):
            assert {"solution", "hide-cell"} <= set(cell.metadata.get("tags", [])), cell.source[:60]
