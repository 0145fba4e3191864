"""Execute notebooks in place with papermill, so that their outputs can be committed.

    python -m slimllm.book.run_notebooks --preset cpu notebooks/*.ipynb -p eval_windows 8
    python -m slimllm.book.run_notebooks --preset paper --dry-run     # resolve and check only
    python -m slimllm.book.run_notebooks --preset smoke --output-dir /tmp/smoke

Each notebook runs with kernel "python3" in its own folder. A preset (`slimllm.book.presets`) sets
the names the notebook's `parameters` cell declares; `-p` values win over it. The executed copy
goes to a temporary folder and replaces the original only on success: a failed or interrupted
run leaves the committed notebook untouched. With `--output-dir` the executed copies go there
instead, with their own results store (DIR/results) and figures (DIR/figures), so a scratch
run never touches committed files. The first failure stops the run.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat
import papermill as pm
from papermill.exceptions import PapermillExecutionError

from slimllm.book import budget, presets
from slimllm.experiments.store import RESULTS_ENV
from slimllm.models.loaders import ModelNotAvailableError

KERNEL = "python3"


#: Where `slimllm.book.report.show` writes figure files (read by the kernel, which inherits it).
FIGURES_ENV = "SLIMLLM_FIGURES_DIR"


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


def declared_parameters(path: Path) -> dict[str, Any]:
    """The names and literal values assigned in the notebook's cell tagged `parameters`."""
    tagged = [c for c in _fresh(path).cells if "parameters" in c.metadata.get("tags", [])]
    if len(tagged) != 1:
        raise ValueError(f"{path.name}: expected one cell tagged 'parameters', found {len(tagged)}")
    values: dict[str, Any] = {}
    for node in ast.parse(tagged[0].source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                values[target.id] = ast.literal_eval(node.value)
    return values


def preset_parameters(
    path: Path, preset: str | None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What papermill injects into `path`: the preset's values for the names it declares, then
    `overrides`. A per-notebook override or `-p` name the notebook does not declare is an error."""
    declared = declared_parameters(path)
    chosen: dict[str, Any] = {}
    if preset is not None:
        values = presets.resolve(preset, path)
        specific = set(presets.OVERRIDES.get(path.stem, {}).get(preset, {}))
        chosen = {k: v for k, v in values.items() if k in declared}
        unknown = sorted(specific - set(declared))
        if unknown:
            raise ValueError(f"{path.name}: preset {preset!r} sets undeclared parameters {unknown}")
    unknown = sorted(set(overrides or {}) - set(declared))
    if unknown:
        raise ValueError(f"{path.name}: -p names parameters it does not declare: {unknown}")
    chosen.update(overrides or {})
    presets.validate(chosen)
    # Values equal to the cell's own need no injected cell (a cpu run then injects nothing).
    return {k: v for k, v in chosen.items() if declared[k] != v}


def dry_run(plan: dict[Path, dict[str, Any]]) -> dict[str, Any]:
    """Every notebook's parameters (all, and those injected) and what it will need on one GPU
    (`slimllm.book.budget`: from the model's config on the meta device, no weights read)."""
    notebooks = {}
    for path, injected in plan.items():
        values = {**declared_parameters(path), **injected}
        notebooks[str(path)] = {
            "injected": injected,
            "parameters": values,
            "needs": budget.estimate(path.stem, values),
        }
    needs = [n["needs"] for n in notebooks.values() if n["needs"] is not None]
    total = {
        "minutes": round(sum(n["minutes"] for n in needs), 1),
        "peak_gib": max((n["peak_gib"] for n in needs), default=0.0),
    }
    return {"assumptions": budget.assumptions(), "total": total, "notebooks": notebooks}


def checkout_root(path: Path) -> Path | None:
    """The checkout holding a notebook: the nearest parent with pyproject.toml and slimllm/."""
    for parent in path.resolve().parents:
        if (parent / "pyproject.toml").is_file() and (parent / "slimllm").is_dir():
            return parent
    return None


def kernel_environment(path: Path) -> None:
    """Make the kernel import `slimllm` from the notebook's own checkout.

    The kernel runs in notebooks/, where a shared or editable install could resolve `slimllm`
    to another checkout; the checkout's root goes first on PYTHONPATH, which the kernel inherits.
    """
    root = checkout_root(path)
    if root is None:
        return
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(root) not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(root), *parts])


def run_notebook(
    path: Path,
    parameters: dict[str, Any] | None = None,
    progress: bool = True,
    output: Path | None = None,
) -> None:
    """Execute `path` (in place, or into `output`); raise NotebookError if a cell fails.

    A failed run leaves both the original and any earlier `output` untouched.
    """
    path = path.resolve()
    target = path if output is None else output.resolve()
    kernel_environment(path)
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
        # Write beside the target, then rename: the swap itself is atomic.
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.with_name(f".{target.name}.new")
        nbformat.write(executed, staged)
        os.replace(staged, target)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "notebooks",
        nargs="*",
        type=Path,
        help="default: notebooks/*.ipynb, then the Results pages notebooks/results/*.ipynb",
    )
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "VALUE"),
        help="override a value of the notebook's `parameters` cell (repeatable)",
    )
    parser.add_argument(
        "--preset",
        choices=presets.names(),
        default=None,
        help="named parameter set (slimllm/book/presets.py); default: the values stored in the "
        "cells, "
        "which are the cpu preset's",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="resolve and check every notebook's parameters on the model's config (no weights), "
        "print them with the GPU memory and time each will need as JSON, run nothing",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help="write executed copies here (with DIR/results and DIR/figures) instead of in place",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide papermill's progress bar")
    args = parser.parse_args(argv)
    notebooks: list[Path] = args.notebooks or [
        *sorted(Path("notebooks").glob("[!.]*.ipynb")),
        *sorted(Path("notebooks/results").glob("[!.]*.ipynb")),
    ]
    if not notebooks:
        print("run_notebooks: no notebooks given or found in notebooks/", file=sys.stderr)
        return 2
    missing = [str(p) for p in notebooks if not p.is_file()]
    if missing:
        print(f"run_notebooks: not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    given = {key: parse_value(value) for key, value in args.parameter}
    if args.preset == "smoke" and args.output_dir is None and not args.dry_run:
        # Tiny random models must never replace the committed outputs, records or figures.
        print("run_notebooks: the smoke preset needs --output-dir", file=sys.stderr)
        return 2
    if args.output_dir is not None:
        scratch = args.output_dir.resolve()
        # The kernel inherits these: a notebook's Store() and report.show() write under DIR.
        os.environ[RESULTS_ENV] = str(scratch / "results")
        os.environ[FIGURES_ENV] = str(scratch / "figures")
    plan: dict[Path, dict[str, Any]] = {}
    for path in notebooks:
        try:
            plan[path] = preset_parameters(path, args.preset, given)
        except ValueError as err:
            print(f"run_notebooks: {err}", file=sys.stderr)
            return 2
    if args.dry_run:
        try:
            print(json.dumps(dry_run(plan), indent=1))
        except (ValueError, OSError, ModelNotAvailableError) as err:
            print(f"run_notebooks: {err}", file=sys.stderr)
            return 2
        return 0
    for i, path in enumerate(notebooks, 1):
        print(f"[{i}/{len(notebooks)}] {path}", file=sys.stderr, flush=True)
        output = None if args.output_dir is None else args.output_dir / path.name
        try:
            start = time.perf_counter()
            run_notebook(path, plan[path], progress=not args.no_progress, output=output)
            print(f"  {path.name}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
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
