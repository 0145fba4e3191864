"""The notebooks' first cell imports slimllm.book.report first: nothing may reach stderr then.

nbval compares stderr too, so a warning printed while report's own imports load (before it can
silence them) fails every notebook's first cell.
"""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient


def test_importing_report_in_a_kernel_prints_nothing() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from slimllm.book import report\nreport.setup()")]
    NotebookClient(nb, kernel_name="python3", timeout=300).execute()
    assert nb.cells[0].outputs == []
