"""The notebooks' plumbing: one plotting style, figures stored in the page, tables, provenance.

    from slimllm import report
    report.setup()                      # in the notebook's hidden set-up cell
    fig, ax = report.figure()
    ...
    report.show(fig, "04_head_scores")  # PNG into the cell output (and figures/04_head_scores.png)

Figures are rendered to PNG here and displayed as images, whatever matplotlib backend the
kernel has: `make book` exports MPLBACKEND=Agg, under which `plt.show()` stores nothing.
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

# tqdm.auto warns on stderr (compared by nbval) when it is first imported in a kernel without
# ipywidgets; importing this module first, as the set-up cells do, silences it for good.
warnings.filterwarnings("ignore", message="IProgress not found")

# After the filter: the store's imports load tqdm.auto.
from slimllm.experiments.store import Record  # noqa: E402

FIGURES_ENV = "SLIMLLM_FIGURES_DIR"


#: The checkout's figures folder, where `show(fig, name)` keeps a copy of each figure.
CHECKOUT_FIGURES = Path(__file__).resolve().parents[2] / "figures"


DPI = 110


#: Colour-blind-safe cycle (Okabe-Ito), the same in every figure of the book.
COLORS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")


STYLE: dict[str, Any] = {
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "figure.figsize": (6.4, 3.6),
    "figure.constrained_layout.use": True,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
    "legend.fontsize": 8,
    "image.cmap": "viridis",
    "axes.prop_cycle": mpl.cycler(color=list(COLORS)),
    # Stable SVG/PDF ids and no timestamps, should anyone save those formats.
    "svg.hashsalt": "slimllm",
}


def setup() -> None:
    """Apply the book's plotting style and keep notebook outputs free of noise.

    Progress-bar and hub warnings would land on stderr, which nbval compares, so they are off.
    """
    mpl.rcParams.update(STYLE)
    # Per-layer tables of a 32-layer model must not be cut to "..." in the page.
    pd.set_option("display.max_columns", 40)
    pd.set_option("display.width", 200)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import transformers

        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass
    logging.getLogger("papermill").setLevel(logging.WARNING)


def figure(
    ncols: int = 1, nrows: int = 1, width: float = 6.4, height: float = 3.6, **kwargs: Any
) -> tuple[Figure, Any]:
    """A figure in the book's style: (fig, ax) for one panel, (fig, array of axes) for several."""
    mpl.rcParams.update(STYLE)
    return plt.subplots(nrows, ncols, figsize=(width, height), squeeze=True, **kwargs)


def figures_dir() -> Path:
    """$SLIMLLM_FIGURES_DIR if set, else the checkout's figures/."""
    return Path(os.environ.get(FIGURES_ENV) or CHECKOUT_FIGURES)


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG, without the software/date metadata that would differ between runs."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def save(fig: Figure, name: str | None = None) -> bytes:
    """The figure's PNG, written to figures/<name>.png when named (see :func:`figures_dir`);
    the figure is closed."""
    data = png_bytes(fig)
    plt.close(fig)
    if name is not None:
        target = figures_dir() / f"{name}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.with_name(f".{target.name}.tmp")
        staged.write_bytes(data)
        os.replace(staged, target)
    return data


def show(fig: Figure, name: str | None = None) -> None:
    """Display `fig` as an image/png output of the running cell, and close it.

    With `name`, the same PNG is also written to figures/<name>.png (see :func:`figures_dir`).
    Outside IPython the figure is only saved (when named) and closed.
    """
    data = save(fig, name)
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:  # pragma: no cover - IPython comes with the notebook extras
        return
    if get_ipython() is not None:
        display(Image(data=data, format="png"))


def label_bars(ax: Axes, values: Sequence[float], fmt: str = "{:.2f}") -> None:
    """Write each bar's value above it (bars in the order they were drawn)."""
    for patch, value in zip(ax.patches, values, strict=False):
        ax.annotate(
            fmt.format(value),
            (patch.get_x() + patch.get_width() / 2, patch.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )


def table(
    df: pd.DataFrame,
    formats: Mapping[str, str] | str | None = None,
    caption: str | None = None,
    hide_index: bool = False,
) -> Any:
    """A pandas Styler with the given number formats and a fixed id.

    pandas gives each styled table a random uuid in its HTML; a fixed one keeps the committed
    output identical between runs, so nbval compares the numbers and nothing else.
    """
    styler = df.style.set_uuid("slimllm")
    if formats is not None:
        styler = styler.format(formats)
    if caption:
        styler = styler.set_caption(caption)
    if hide_index:
        styler = styler.hide(axis="index")
    return styler


def provenance(record: Record) -> str:
    """One line on a stored result: read or measured now, where the file is, when and on what."""
    env = record.environment
    device = env.get("gpu") or env.get("cpu", {}).get("model", "unknown device")
    when = env.get("measured_at", "an unknown time")
    versions = env.get("versions", {})
    soft = ", ".join(f"{k} {versions[k]}" for k in ("torch", "transformers") if k in versions)
    where = _relative(record.path) if record.path is not None else "(not written)"
    verb = "loaded from" if record.loaded else "measured now and written to"
    took = f", took {record.seconds:.1f} s" if record.seconds is not None else ""
    note = f" ({record.note})" if record.note else ""
    return (
        f"{verb} {where}: measured {when} on {device}"
        + (f" ({soft})" if soft else "")
        + (took + note)
    )


def _relative(path: Path) -> str:
    """`results/<kind>/<key>.json` relative to the store's parent, not an absolute path."""
    parts = path.parts
    return "/".join(parts[-3:]) if len(parts) >= 3 else str(path)


def flow_diagram(
    boxes: Sequence[tuple[str, str]],
    loop: tuple[int, int, str] | None = None,
    width: float = 6.4,
    title: str | None = None,
) -> Figure:
    """Boxes top to bottom joined by arrows; `loop=(from, to, label)` adds a return arrow.

    Each box is (headline, detail): the headline in bold, the detail (equation, notebook,
    module) below it in a smaller font.
    """
    if not boxes:
        raise ValueError("boxes must not be empty")
    step = 1.0
    height = 0.72
    fig, ax = figure(width=width, height=0.95 * step * len(boxes) + 0.4)
    ax.set_axis_off()
    ax.grid(False)
    tops = []
    for i, (headline, detail) in enumerate(boxes):
        y = -i * step
        tops.append(y)
        inside = loop is not None and min(loop[:2]) <= i <= max(loop[:2])
        ax.add_patch(
            mpl.patches.FancyBboxPatch(
                (0.0, y - height / 2),
                1.0,
                height,
                boxstyle="round,pad=0.02,rounding_size=0.05",
                facecolor="#E8F1FA" if inside else "#F2F2F2",
                edgecolor=COLORS[0] if inside else "#555555",
                linewidth=1.0,
            )
        )
        ax.text(0.5, y + 0.12, headline, ha="center", va="center", fontsize=9.5, weight="bold")
        ax.text(0.5, y - 0.16, detail, ha="center", va="center", fontsize=7.5, color="#333333")
        if i:
            ax.annotate(
                "",
                (0.5, y + height / 2 + 0.02),
                (0.5, tops[i - 1] - height / 2 - 0.02),
                arrowprops={"arrowstyle": "-|>", "color": "#333333", "lw": 1.0},
            )
    if loop is not None:
        start, end, label = loop
        # Out of the right edge of `start`, up (or down) the margin, back into `end`.
        ax.plot([1.02, 1.12, 1.12], [tops[start], tops[start], tops[end]], color=COLORS[0], lw=1.2)
        ax.annotate(
            "",
            (1.02, tops[end]),
            (1.12, tops[end]),
            arrowprops={"arrowstyle": "-|>", "color": COLORS[0], "lw": 1.2},
        )
        ax.text(
            1.17,
            (tops[start] + tops[end]) / 2,
            label,
            rotation=90,
            ha="center",
            va="center",
            color=COLORS[0],
            fontsize=8,
        )
    ax.set_xlim(-0.05, 1.22)
    ax.set_ylim(tops[-1] - step / 2 - 0.05, step / 2)
    if title:
        ax.set_title(title)
    return fig
