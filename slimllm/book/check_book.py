"""Check a built book: it exists, it loads nothing from the network, no notebook shows an error,
and every figure a notebook draws is stored in it and shown on its page.

    python -m slimllm.book.check_book _build/html [--notebooks notebooks]

The book must work offline (MathJax and every script and stylesheet served from `_static`), and
a committed notebook with an error output means `make notebooks` was not clean. A code cell that
draws (calls matplotlib or `report.show`) must store an image/png output: under MPLBACKEND=Agg a
bare `plt.show()` stores nothing, and the page would silently lose the figure.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path

import nbformat

# Tags whose URL attribute the browser fetches on page load (plain <a href> links are fine).
FETCHING = {"script": "src", "link": "href", "img": "src", "iframe": "src", "source": "src"}


# Classes myst-nb gives to error outputs (tracebacks) of notebook cells.
ERROR_CLASSES = {"traceback", "output_error"}


# Source that makes a figure: matplotlib calls, the report helpers, pandas plotting.
DRAWS = re.compile(r"\bplt\.|\breport\.(show|figure)\(|\.plot\(|\bsavefig\(|\bimshow\(")


def is_external(url: str) -> bool:
    return url.strip().lower().startswith(("http://", "https://", "//"))


class PageScanner(HTMLParser):
    """Collects external resource URLs and error outputs of one HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.external: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        url = values.get(FETCHING.get(tag, ""), "")
        if url and is_external(url):
            self.external.append(f"<{tag}> {url}")
        classes = set(values.get("class", "").split())
        if classes & ERROR_CLASSES or {"output", "error"} <= classes:
            self.errors.append(f"<{tag} class={values['class']!r}>")


def stored_images(cell: nbformat.NotebookNode) -> int:
    return sum("image/png" in out.get("data", {}) for out in cell.get("outputs", []))


def check_notebook_figures(path: Path) -> list[str]:
    """Problems of one executed notebook: a drawing cell without a stored image/png."""
    nb = nbformat.read(path, as_version=4)
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and DRAWS.search(cell.source) and not stored_images(cell):
            first = cell.source.strip().splitlines()[0][:60] if cell.source.strip() else ""
            problems.append(f"{path.name}: cell {i} draws but stores no image ({first!r})")
    return problems


def notebook_images(path: Path) -> int:
    nb = nbformat.read(path, as_version=4)
    return sum(stored_images(c) for c in nb.cells if c.cell_type == "code")


class ImageCounter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.images = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images += 1


def check_figures(root: Path, notebooks: Path) -> list[str]:
    """Every drawing cell stores an image, and each notebook's page shows at least as many."""
    problems = []
    for path in sorted(p for p in notebooks.glob("*.ipynb") if not p.name.startswith(".")):
        problems += check_notebook_figures(path)
        page = root / notebooks.name / f"{path.stem}.html"
        if not page.is_file():
            problems.append(f"{path.name}: no page {page.relative_to(root)} in the built book")
            continue
        counter = ImageCounter()
        counter.feed(page.read_text(encoding="utf-8", errors="replace"))
        stored = notebook_images(path)
        if counter.images < stored:
            problems.append(
                f"{page.relative_to(root)}: shows {counter.images} images, notebook stores {stored}"
            )
    return problems


def check_book(root: Path) -> list[str]:
    """Problems found under a built HTML folder (empty when the book is fine)."""
    if not (root / "index.html").is_file():
        return [f"{root / 'index.html'} is missing (was the book built?)"]
    problems = []
    for page in sorted(root.rglob("*.html")):
        scanner = PageScanner()
        scanner.feed(page.read_text(encoding="utf-8", errors="replace"))
        rel = page.relative_to(root)
        problems += [f"{rel}: external resource {item}" for item in scanner.external]
        problems += [f"{rel}: error output {item}" for item in scanner.errors]
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html_dir", type=Path, nargs="?", default=Path("_build/html"))
    parser.add_argument(
        "--notebooks",
        type=Path,
        default=None,
        help="folder of the executed notebooks whose figures must be stored and shown "
        "(default: notebooks/ of the checkout that holds _build/html, if there is one)",
    )
    args = parser.parse_args(argv)
    notebooks = args.notebooks
    if notebooks is None:
        beside = args.html_dir.resolve().parents[1] / "notebooks"
        notebooks = beside if beside.is_dir() else None
    elif not notebooks.is_dir():
        print(f"check_book: --notebooks {notebooks} is not a folder", file=sys.stderr)
        return 2
    problems = check_book(args.html_dir)
    if not problems and notebooks is not None:
        problems = check_figures(args.html_dir, notebooks)
    for problem in problems:
        print(f"check_book: {problem}", file=sys.stderr)
    if problems:
        print(f"check_book: {len(problems)} problem(s) in {args.html_dir}", file=sys.stderr)
        return 1
    pages = sum(1 for _ in args.html_dir.rglob("*.html"))
    print(
        f"check_book: {args.html_dir} OK ({pages} HTML files, no external resources, no errors, "
        "every figure stored and shown)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
