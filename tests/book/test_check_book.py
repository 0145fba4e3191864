"""check_book on synthetic HTML trees and notebooks, and on the committed notebooks' figures."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from slimllm.book import check_book
from tests.helpers import NOTEBOOKS

PAGE = """<!DOCTYPE html><html><head>
<script src="../_static/mathjax/tex-chtml.js"></script>
<link rel="stylesheet" href="../_static/styles/theme.css">
{head}</head><body>
<a href="https://arxiv.org/">links to the web are fine</a>
<div class="cell_output docutils container">{output}</div>
</body></html>"""
GOOD_OUTPUT = '<div class="output stream highlight-myst-ansi"><pre>42</pre></div>'


def make_book(root: Path, head: str = "", output: str = GOOD_OUTPUT) -> Path:
    (root / "notebooks").mkdir(parents=True)
    (root / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=intro.html" />')
    (root / "intro.html").write_text(PAGE.format(head="", output=""))
    (root / "notebooks" / "01.html").write_text(PAGE.format(head=head, output=output))
    return root


def test_good_book_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_book(tmp_path)
    assert check_book.check_book(root) == []
    assert check_book.main([str(root)]) == 0
    assert "OK" in capsys.readouterr().out


def test_missing_index_fails(tmp_path: Path) -> None:
    root = make_book(tmp_path)
    (root / "index.html").unlink()
    assert check_book.main([str(root)]) == 1


@pytest.mark.parametrize(
    "head",
    [
        '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>',
        '<script defer src="//unpkg.com/thebe@0.8.2/lib/index.js"></script>',
        '<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Lato">',
        '<link rel="preload" as="script" href="http://example.org/require.min.js">',
    ],
)
def test_external_resource_fails(
    tmp_path: Path, head: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_book(tmp_path, head=head)
    problems = check_book.check_book(root)
    assert len(problems) == 1 and "notebooks/01.html: external resource" in problems[0]
    assert check_book.main([str(root)]) == 1
    assert "external resource" in capsys.readouterr().err


def test_error_output_fails(tmp_path: Path) -> None:
    traceback = (
        '<div class="output traceback highlight-ipythontb notranslate"><pre>'
        "ValueError: boom</pre></div>"
    )
    root = make_book(tmp_path, output=traceback)
    problems = check_book.check_book(root)
    assert problems and all("notebooks/01.html: error output" in p for p in problems)
    assert check_book.main([str(root)]) == 1


def drawing_book(tmp_path: Path, with_image: bool) -> tuple[Path, Path]:
    """A built book (html) and its notebooks folder, whose 01.ipynb draws in cell 1."""
    root = make_book(tmp_path / "html")
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    cell = new_code_cell("fig, ax = report.figure()\nreport.show(fig)")
    if with_image:
        cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})]
    nb = new_notebook(cells=[new_code_cell("x = 1"), cell])
    nbformat.write(nb, notebooks / "01.ipynb")
    return root, notebooks


def test_drawing_cell_without_image_fails(tmp_path: Path) -> None:
    root, notebooks = drawing_book(tmp_path, with_image=False)
    problems = check_book.check_figures(root, notebooks)
    assert problems and "cell 1 draws but stores no image" in problems[0]
    assert check_book.main([str(root), "--notebooks", str(notebooks)]) == 1


def test_stored_image_must_reach_the_page(tmp_path: Path) -> None:
    root, notebooks = drawing_book(tmp_path, with_image=True)
    problems = check_book.check_figures(root, notebooks)
    assert problems == ["notebooks/01.html: shows 0 images, notebook stores 1"]
    page = root / "notebooks" / "01.html"
    page.write_text(page.read_text().replace("</body>", '<img src="../_images/a.png"></body>'))
    assert check_book.check_figures(root, notebooks) == []
    assert check_book.main([str(root), "--notebooks", str(notebooks)]) == 0


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_stores_its_figures(notebook: Path) -> None:
    """Every cell of a committed notebook that draws holds its image/png (see check_book)."""
    assert check_book.check_notebook_figures(notebook) == []
