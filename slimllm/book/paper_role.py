"""The `{paper}` role: a number quoted from the paper, not measured here.

    the paper reports {paper}`15.95` with and {paper}`16.78` without the regression

renders the number in italics with a tooltip saying where it comes from. The book's digits test
(tests/book/test_prose.py) accepts digits in markdown only inside glued values, these roles
(checked against the paper's text) and equation or table numbers.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from docutils.parsers.rst.states import Inliner
from sphinx.application import Sphinx


def paper_role(
    name: str,
    rawtext: str,
    text: str,
    lineno: int,
    inliner: Inliner,
    options: dict[str, Any] | None = None,
    content: list[str] | None = None,
) -> tuple[list[nodes.Node], list[nodes.system_message]]:
    """Inline emphasis with the class `paper-number` and a title naming the source."""
    node = nodes.emphasis(rawtext, text, classes=["paper-number"])
    node["title"] = "quoted from the paper, not measured here"
    return [node], []


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_role("paper", paper_role)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
