"""slimllm.book.report: figures become PNG outputs whatever the backend, stable tables,
provenance."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pandas as pd
import pytest

from slimllm.book import report
from slimllm.experiments.store import Store

PNG = b"\x89PNG\r\n\x1a\n"


def test_png_bytes_are_deterministic_under_agg() -> None:
    matplotlib.use("Agg")  # the backend `make book` exports, under which plt.show() is a no-op
    report.setup()
    pictures = []
    for _ in range(2):
        fig, ax = report.figure()
        ax.plot([0, 1], [1, 0])
        pictures.append(report.png_bytes(fig))
    assert pictures[0].startswith(PNG) and pictures[0] == pictures[1]


def test_show_writes_the_named_figure_and_closes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(report.FIGURES_ENV, str(tmp_path))
    fig, ax = report.figure(ncols=2)
    assert len(ax) == 2
    report.show(fig, "demo")
    assert (tmp_path / "demo.png").read_bytes().startswith(PNG)
    assert not matplotlib.pyplot.fignum_exists(fig.number)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.png"]  # no temp file left


def test_show_displays_an_image_in_ipython(monkeypatch: pytest.MonkeyPatch) -> None:
    shown = []
    import IPython
    import IPython.display

    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    fig, _ = report.figure()
    report.show(fig)
    assert len(shown) == 1 and isinstance(shown[0], IPython.display.Image)
    assert shown[0].data.startswith(PNG) and shown[0].format == "png"


def test_table_has_a_fixed_id() -> None:
    df = pd.DataFrame({"ppl": [12.3456, 7.0]}, index=["a", "b"])
    first = report.table(df, {"ppl": "{:.2f}"}, caption="c").to_html()
    again = report.table(df, {"ppl": "{:.2f}"}, caption="c").to_html()
    assert first == again and "12.35" in first and "T_slimllm" in first


def test_provenance_names_file_device_and_time(tmp_path: Path) -> None:
    store = Store(tmp_path / "results")
    env = {
        "cpu": {"model": "Some CPU"},
        "gpu": None,
        "measured_at": "2026-01-02T03:04:05+00:00",
        "versions": {"torch": "2.13.0"},
    }
    store.put("perplexity", {"model": {"base": "m"}}, {"ppl": 1.0}, env=env, seconds=2.5)
    record = store.find("perplexity")[0]
    line = report.provenance(record)
    assert line.startswith("loaded from results/perplexity/")
    assert "2026-01-02T03:04:05+00:00 on Some CPU (torch 2.13.0), took 2.5 s" in line
    assert str(tmp_path) not in line


def test_flow_diagram_draws_every_box() -> None:
    fig = report.flow_diagram([("a", "x"), ("b", "y"), ("c", "z")], loop=(2, 1, "again"))
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"a", "b", "c", "x", "again"} <= texts
    with pytest.raises(ValueError, match="empty"):
        report.flow_diagram([])
