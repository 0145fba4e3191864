"""Execute notebooks in place with papermill, so that their outputs can be committed.

    python -m slimllm.tools.run_notebooks notebooks/*.ipynb -p max_windows 8

Each notebook runs with kernel "python3" in its own folder. The executed copy goes to a
temporary folder and replaces the original only on success: a failed or interrupted run
leaves the committed notebook untouched. The first failure stops the run.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat
import papermill as pm
from papermill.exceptions import PapermillExecutionError

KERNEL = "python3"


class NotebookError(RuntimeError):
    """A notebook failed; the message names the notebook and the failing cell."""


def parse_value(text: str) -> Any:
    """`-p` values: Python literals (None, 8, 0.5, "x", [1, 2]) or else the plain string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _fresh(path: Path) -> nbformat.NotebookNode:
    """The notebook without cells injected by an earlier papermill run (stale parameters)."""
    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    return nb


def run_notebook(
    path: Path, parameters: dict[str, Any] | None = None, progress: bool = True
) -> None:
    """Execute `path` in place; raise NotebookError (original untouched) if a cell fails."""
    path = path.resolve()
    # Papermill writes its output while it runs; keep that outside notebooks/ so that no tool
    # (nbval, the book, a glob) ever sees a half-executed copy.
    with tempfile.TemporaryDirectory(prefix="run_notebooks-") as tmpdir:
        tmp = Path(tmpdir) / path.name
        try:
            pm.execute_notebook(
                _fresh(path),
                str(tmp),
                parameters=parameters or None,
                kernel_name=KERNEL,
                cwd=str(path.parent),
                progress_bar=progress,
            )
        except PapermillExecutionError as err:
            first_line = next(iter(err.source.strip().splitlines()), "")
            raise NotebookError(
                f"{path.name}: cell {err.cell_index} (In [{err.exec_count}]) failed with "
                f"{err.ename}: {err.evalue}\n    first line: {first_line}"
            ) from err
        executed = nbformat.read(tmp, as_version=4)
        # Papermill records where it read and wrote; temp paths are noise in a committed file.
        meta = executed.metadata.get("papermill", {})
        meta.update(input_path=path.name, output_path=path.name)
        # Write beside the original, then rename: the swap itself is atomic.
        staged = path.with_name(f".{path.name}.new")
        nbformat.write(executed, staged)
        os.replace(staged, path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "VALUE"),
        help="override a value of the notebook's `parameters` cell (repeatable)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide papermill's progress bar")
    args = parser.parse_args(argv)
    notebooks: list[Path] = args.notebooks or sorted(Path("notebooks").glob("[!.]*.ipynb"))
    if not notebooks:
        print("run_notebooks: no notebooks given or found in notebooks/", file=sys.stderr)
        return 2
    missing = [str(p) for p in notebooks if not p.is_file()]
    if missing:
        print(f"run_notebooks: not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    parameters = {key: parse_value(value) for key, value in args.parameter}
    for i, path in enumerate(notebooks, 1):
        print(f"[{i}/{len(notebooks)}] {path}", file=sys.stderr, flush=True)
        try:
            run_notebook(path, parameters, progress=not args.no_progress)
            continue
        except NotebookError as err:
            message = str(err)
        except Exception as err:  # a dead kernel, a bad parameter...: still name the notebook
            message = f"{path.name}: {type(err).__name__}: {err}"
        print(f"run_notebooks: FAILED {message}", file=sys.stderr)
        print(f"run_notebooks: {path} is unchanged", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
