"""Numbers in the notebooks' prose, computed from their outputs and glued into the page.

A markdown cell never types a measured number: it writes {glue:text}`name` and a hidden cell
glues `name` with a string formatted here, so a re-run under any preset rewrites the sentence.

    prose.glue_all({"base": prose.num(solution.base, 3), "word": prose.compare(a, b)})

Qualitative words that depend on a number ("higher", "inside the interval") are glued too.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from myst_nb import glue

from slimllm.book import presets
from slimllm.experiments.store import Record


def num(value: float, digits: int = 2) -> str:
    """`value` rounded to `digits` decimals, with a true minus sign and no "-0.00"."""
    if not math.isfinite(value):
        raise ValueError(f"a glued number must be finite, got {value}")
    text = f"{value:.{digits}f}"
    if float(text) == 0:
        text = text.lstrip("-")
    return text.replace("-", "\u2212")


def sig(value: float, digits: int = 3) -> str:
    """`value` to `digits` significant figures, thousands separated (142,471 or 0.0027)."""
    if not math.isfinite(value):
        raise ValueError(f"a glued number must be finite, got {value}")
    if value == 0:
        return "0"
    exponent = math.floor(math.log10(abs(value)))
    decimals = max(digits - 1 - exponent, 0)
    return f"{round(value, decimals):,.{decimals}f}".replace("-", "\u2212")


def pct(fraction: float, digits: int = 1) -> str:
    """A fraction as a percentage: 0.406 -> "40.6 %"."""
    return f"{num(100 * fraction, digits)} %"


def points(fraction: float, digits: int = 1) -> str:
    """A difference of two fractions in percentage points: 0.004 -> "0.4 points"."""
    return f"{num(100 * fraction, digits)} points"


def integers(values: Iterable[int]) -> str:
    """1, 2 and 29 (an English list of integers)."""
    items = [str(int(v)) for v in values]
    if not items:
        return "none"
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def span(low: float, high: float, digits: int = 2) -> str:
    """A range, low to high, as "0.81 to 0.98" (one number when they round equal)."""
    a, b = num(low, digits), num(high, digits)
    return a if a == b else f"{a} to {b}"


def compare(
    value: float,
    reference: float,
    more: str = "higher",
    less: str = "lower",
    same: str = "the same as",
    tolerance: float = 0.0,
) -> str:
    """The word for `value` against `reference` ("higher", "lower", or `same` within tolerance)."""
    if abs(value - reference) <= tolerance:
        return same
    return more if value > reference else less


def glue_all(values: Mapping[str, str]) -> None:
    """Glue each string under its name, without displaying it in the cell."""
    for name, text in values.items():
        if not isinstance(text, str):
            raise TypeError(f"glue {name!r}: format it to a string first (got {type(text)})")
        glue(name, text, display=False)


def measured_on(records: Sequence[Record]) -> dict[str, str]:
    """Device, dates and versions of the records a page reads (from their environment)."""
    devices, dates = set(), set()
    for record in records:
        env = record.environment
        devices.add(env.get("gpu") or env.get("cpu", {}).get("model", "an unrecorded device"))
        when = env.get("measured_at")
        if when:
            dates.add(str(when)[:10])
    ordered = sorted(dates)
    if not ordered:
        when = "at an unrecorded date"
    elif len(ordered) == 1:
        when = f"on {ordered[0]}"
    else:
        when = f"between {ordered[0]} and {ordered[-1]}"
    return {"devices": " and ".join(sorted(devices)) or "an unrecorded device", "when": when}


def setting(
    params: Mapping[str, Any], records: Sequence[Record], preset: str, evaluates: bool = False
) -> str:
    """The sentence a page states its setting with: preset, model, device, dtypes, records."""
    recorded = measured_on(records)
    windows = params.get("eval_windows")
    evaluation = ""
    if evaluates:
        evaluation = (
            "; perplexity on the full test sets"
            if windows is None
            else f"; perplexity on the first {windows} windows of each test set"
        )
    eval_dtype = params.get("eval_dtype")
    if eval_dtype is not None:
        evaluation += f", evaluated in {eval_dtype}"
    return (
        f"preset {preset}: model {params['model']} in {params['dtype']} on "
        f"{params['device']}, {params['calib_samples']} calibration windows of "
        f"{params['calib_seq_len']} tokens, seed {params['seed']}{evaluation}. "
        f"The {len(records)} stored record{'s' if len(records) != 1 else ''} it reads "
        f"{'were' if len(records) != 1 else 'was'} measured {recorded['when']} on "
        f"{recorded['devices']}"
    )


GLUE_ROLE = re.compile(r"\{glue(?::text|:md)?\}`([^`:]+)(?::[^`]*)?`")


def render(markdown: str, glued: Mapping[str, str]) -> str:
    """`markdown` with its glue roles replaced by the glued strings (what the page shows)."""
    return GLUE_ROLE.sub(lambda m: glued[m.group(1)], markdown)


def preset_of(notebook: str, params: Mapping[str, Any]) -> str:
    """The preset whose values `params` (a notebook's parameters) carry, or "custom"."""
    for name in presets.names():
        values = presets.resolve(name, notebook)
        if all(params.get(k) == v for k, v in values.items() if k in params):
            return name
    return "custom"


def live_setting(params: Mapping[str, Any], preset: str, records: Sequence[Record] = ()) -> str:
    """The setting sentence of a page that computes its numbers when it runs: as `setting` for
    the stored records it also reads (if any), then the date of this run."""
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    if records:
        return f"{setting(params, records, preset)}; everything else was computed on {today}"
    return (
        f"preset {preset}: model {params['model']} in {params['dtype']} on {params['device']}, "
        f"{params['calib_samples']} calibration windows of {params['calib_seq_len']} tokens, "
        f"seed {params['seed']}. Every number on it was computed when it ran, on {today}"
    )
