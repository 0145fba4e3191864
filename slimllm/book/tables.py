"""The notebooks' tables: compact (rounded, no NaN, no hashes), narrow enough for the page.

    tables.compact(frame, digits=3)            # a Styler: rounded, missing cells as "-"
    tables.compact(frame.T, digits=3)          # a wide frame transposed

Record hashes and paths never enter a table: the page states its setting in one sentence
(`slimllm.book.prose.setting`), and `report.provenance` lines stay in the cell output.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

from slimllm.book import prose, report
from slimllm.method.ratios import RatioSolution

#: Wider than this many columns a table is cut off in the page: transpose or split it.
MAX_COLUMNS = 8


def cell(value: Any, digits: int) -> str:
    """One cell: numbers to `digits` significant figures, missing values as a dash."""
    if value is None or (isinstance(value, numbers.Real) and math.isnan(value)):
        return "\u2013"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        value = float(value)
        if value != 0 and abs(value) < 1e-3:
            return f"{value:.1e}"
        return prose.sig(value, digits) if abs(value) < 10 ** digits else f"{value:,.0f}"
    return str(value)


def compact(frame: pd.DataFrame, digits: int = 3, caption: str | None = None,
            hide_index: bool = False) -> Styler:
    """`frame` as a page table: rounded cells, dashes for missing values, at most MAX_COLUMNS."""
    if frame.shape[1] > MAX_COLUMNS:
        raise ValueError(
            f"{frame.shape[1]} columns would be cut off in the page (at most {MAX_COLUMNS}): "
            "transpose or split the table"
        )
    shown = frame.map(lambda v: cell(v, digits))
    return report.table(shown, caption=caption, hide_index=hide_index)


def from_rows(rows: Mapping[str, Mapping[str, Any]], digits: int = 3,
              caption: str | None = None) -> Styler:
    """A compact table from {row name: {column: value}}."""
    return compact(pd.DataFrame.from_dict(dict(rows), orient="index"), digits, caption)


def solution_row(solution: RatioSolution, cap: float) -> dict[str, Any]:
    """The numbers of a layer-ratio solution a table shows: base, achieved, spread, clamp."""
    pruned = solution.ratios[solution.ratios > 0]
    return {
        "base": solution.base,
        "achieved": solution.achieved,
        "layers pruned": int(pruned.numel()),
        "min ratio": float(pruned.min()) if pruned.numel() else 0.0,
        "max ratio": float(solution.ratios.max()),
        "at the clamp": int((solution.ratios >= cap - 1e-9).sum()),
    }
