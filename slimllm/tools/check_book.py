"""Check a built book: it exists, it loads nothing from the network, no notebook shows an error.

    python -m slimllm.tools.check_book _build/html

The book must work offline (MathJax and every script and stylesheet served from `_static`), and
a committed notebook with an error output means `make notebooks` was not clean.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path

# Tags whose URL attribute the browser fetches on page load (plain <a href> links are fine).
FETCHING = {"script": "src", "link": "href", "img": "src", "iframe": "src", "source": "src"}
# Classes myst-nb gives to error outputs (tracebacks) of notebook cells.
ERROR_CLASSES = {"traceback", "output_error"}


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
    args = parser.parse_args(argv)
    problems = check_book(args.html_dir)
    for problem in problems:
        print(f"check_book: {problem}", file=sys.stderr)
    if problems:
        print(f"check_book: {len(problems)} problem(s) in {args.html_dir}", file=sys.stderr)
        return 1
    pages = sum(1 for _ in args.html_dir.rglob("*.html"))
    print(f"check_book: {args.html_dir} OK ({pages} HTML files, no external resources, no errors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
