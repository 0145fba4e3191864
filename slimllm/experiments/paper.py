# ruff: noqa: E501  (one line per row of the paper's tables, as printed there)
"""The paper's own numbers, as data: Tables 1-9 of SlimLLM (ICML 2025), and FLAP's README.

Every value here was transcribed from the paper's text (Guo et al., "SlimLLM: Accurate Structured
Pruning for Large Language Models", ICML 2025) and is **the paper's**, measured on the model it
names (LLaMA-7B, LLaMA2-7B, Vicuna-7B, LLaMA-13B) with its protocol (128-token perplexity
windows, lm-eval 0.3.0, decapoda LLaMA weights). Nothing here was measured in this repository;
the book prints these beside its own numbers, labelled with the table and model they come from.

In the paper's Table 1 the third method of each block is LoRAP (its text: "surpasses that of
the LoRAP by 2.85 %" at 50 %, 50.10 - 47.25); a text extraction of the table shows that row as
"w/o tune" / "w/ tune". FLAP and Wanda-sp are not in the paper's tables: their LLaMA-7B numbers
(`FLAP_README`) come from FLAP's own README, with its 7-task mean and no PTB.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from slimllm.measure.lm_eval_tasks import SEVEN_TASKS

#: Column keys, as `slimllm.experiments.tables` names them: two perplexities, seven tasks, mean.
COLUMNS = ("wikitext2", "ptb", *SEVEN_TASKS, "mean")

#: Table 9 (LLaMA-13B) has no PTB column.
NO_PTB = tuple(c for c in COLUMNS if c != "ptb")

#: The three columns of the ablation tables 4-7: two perplexities and the 7-task mean.
ABLATION = ("wikitext2", "ptb", "mean")


@dataclass(frozen=True)
class PaperRow:
    """One row of one of the paper's tables: what was measured, on which model, and its values.

    `ratio` is the fraction of the model's parameters removed (0 for the dense model); `setting`
    names the ablation or the varied value ("w/o greedy search", "alpha=4", "32 samples").
    Accuracies are in percent, as the paper prints them.
    """

    table: int | str
    model: str
    ratio: float
    method: str
    tuned: bool
    values: dict[str, float]
    setting: str = ""
    source: str = field(default="the paper")

    @property
    def label(self) -> str:
        """E.g. "the paper's Table 4, LLaMA-7B, SlimLLM w/o greedy search, 50 %"."""
        what = f"{self.method} {self.setting}".strip()
        tune = ", w/ tune" if self.tuned else ""
        where = "the paper's" if self.source == "the paper" else f"{self.source}'s"
        table = f"Table {self.table}, " if isinstance(self.table, int) else ""
        return f"{where} {table}{self.model}, {what}, {self.ratio:.0%}{tune}"


def _row(
    table: int | str,
    model: str,
    ratio: float,
    method: str,
    tuned: bool,
    numbers: Sequence[float | None],
    columns: Sequence[str] = COLUMNS,
    setting: str = "",
    source: str = "the paper",
) -> PaperRow:
    if len(numbers) != len(columns):
        raise ValueError(f"Table {table} {method}: {len(numbers)} numbers for {len(columns)}")
    values = {c: float(v) for c, v in zip(columns, numbers, strict=True) if v is not None}
    return PaperRow(table, model, ratio, method, tuned, values, setting, source)


L7 = "LLaMA-7B"

#: The paper's Table 1: LLaMA-7B, 20 % and 50 %, without and with LoRA tuning.
TABLE1 = (
    _row(1, L7, 0.0, "dense", False, [12.62, 22.14, 73.18, 78.35, 72.99, 67.01, 67.45, 41.38, 42.4, 63.25]),
    _row(1, L7, 0.2, "LLM-Pruner", False, [19.09, 34.21, 57.06, 75.68, 66.8, 59.83, 60.94, 36.52, 40.0, 56.69]),
    _row(1, L7, 0.2, "LoRAPrune", False, [20.67, 34.12, 57.98, 75.11, 65.81, 59.90, 62.14, 34.59, 39.98, 56.50]),
    _row(1, L7, 0.2, "LoRAP", False, [15.69, 25.86, 71.93, 76.44, 69.98, 65.9, 60.56, 38.48, 40.4, 60.53]),
    _row(1, L7, 0.2, "SlimLLM", False, [15.95, 26.09, 72.72, 75.95, 69.82, 66.06, 64.48, 39.33, 40.2, 61.22]),
    _row(1, L7, 0.2, "LLM-Pruner", True, [17.58, 30.11, 64.62, 77.2, 68.8, 63.14, 64.31, 36.77, 39.8, 59.23]),
    _row(1, L7, 0.2, "LoRAPrune", True, [16.80, 28.75, 65.62, 79.31, 70.00, 62.76, 65.87, 37.69, 39.14, 60.05]),
    _row(1, L7, 0.2, "LoRAP", True, [16.35, 27.06, 72.94, 76.93, 70.9, 65.75, 64.31, 39.93, 41.2, 61.7]),
    _row(1, L7, 0.2, "SlimLLM", True, [15.55, 26.66, 74.71, 76.61, 71.23, 66.54, 66.96, 40.61, 40.2, 62.41]),
    _row(1, L7, 0.5, "LLM-Pruner", False, [112.44, 255.38, 52.32, 59.63, 35.64, 53.20, 33.50, 27.22, 33.40, 42.13]),
    _row(1, L7, 0.5, "LoRAPrune", False, [121.96, 260.14, 51.78, 56.90, 36.76, 53.80, 33.82, 26.93, 33.10, 41.87]),
    _row(1, L7, 0.5, "LoRAP", False, [56.96, 87.71, 57.8, 63.82, 46.96, 57.3, 40.36, 27.73, 36.80, 47.25]),
    _row(1, L7, 0.5, "SlimLLM", False, [37.89, 67.68, 63.33, 65.40, 49.94, 58.80, 45.83, 30.38, 37.00, 50.10]),
    _row(1, L7, 0.5, "LLM-Pruner", True, [38.12, 66.35, 60.28, 69.31, 47.06, 53.43, 45.96, 29.18, 35.60, 48.69]),
    _row(1, L7, 0.5, "LoRAPrune", True, [30.12, 50.30, 61.88, 71.53, 47.86, 55.01, 45.13, 31.62, 34.98, 49.71]),
    _row(1, L7, 0.5, "LoRAP", True, [30.90, 48.84, 63.00, 69.64, 54.42, 58.41, 51.94, 32.00, 35.80, 52.17]),
    _row(1, L7, 0.5, "SlimLLM", True, [26.71, 42.19, 62.78, 68.99, 54.73, 61.01, 54.55, 33.28, 36.80, 53.16]),
)  # fmt: skip

L2 = "LLaMA2-7B"

#: The paper's Table 2: LLaMA2-7B, SlimLLM against LoRAP.
TABLE2 = (
    _row(2, L2, 0.0, "dense", False, [12.18, 47.25, 71.04, 78.40, 72.96, 67.17, 69.32, 40.53, 40.80, 62.89]),
    _row(2, L2, 0.2, "LoRAP", False, [15.02, 58.44, 69.24, 76.39, 69.15, 65.11, 61.99, 35.58, 38.60, 59.44]),
    _row(2, L2, 0.2, "SlimLLM", False, [15.70, 56.33, 69.79, 76.28, 68.88, 63.54, 65.74, 39.08, 39.80, 60.44]),
    _row(2, L2, 0.2, "LoRAP", True, [14.67, 57.52, 70.89, 78.13, 69.93, 65.67, 65.99, 38.48, 39.60, 61.24]),
    _row(2, L2, 0.2, "SlimLLM", True, [15.28, 55.46, 72.29, 78.02, 70.95, 64.88, 67.17, 38.99, 39.60, 61.70]),
    _row(2, L2, 0.5, "LoRAP", False, [60.89, 282.22, 61.86, 62.23, 43.98, 55.41, 38.51, 27.65, 33.00, 46.09]),
    _row(2, L2, 0.5, "SlimLLM", False, [38.64, 141.06, 62.69, 64.74, 45.91, 53.28, 39.73, 29.01, 33.2, 46.93]),
    _row(2, L2, 0.5, "LoRAP", True, [26.26, 101.22, 63.27, 70.78, 55.14, 57.85, 52.15, 30.97, 36.00, 52.31]),
    _row(2, L2, 0.5, "SlimLLM", True, [27.29, 88.28, 64.19, 69.04, 53.60, 55.33, 52.53, 32.08, 37.40, 52.02]),
)  # fmt: skip

#: Table 3's columns: parameters (billions), prefill seconds (256 tokens in, one out), decoding
#: seconds (batch 8, 256 new tokens); 20 repeats on one NVIDIA V100, the mean.
LATENCY = ("params_b", "prefill_s", "decode_s")

#: The paper's Table 3: LLaMA-7B latency.
TABLE3 = (
    _row(3, L7, 0.0, "dense", False, [6.7, 0.3008, 13.12], LATENCY),
    _row(3, L7, 0.2, "SlimLLM", False, [5.4, 0.1429, 11.48], LATENCY),
    _row(3, L7, 0.5, "SlimLLM", False, [3.4, 0.1034, 9.38], LATENCY),
)

#: The paper's Table 4: LLaMA-7B at 50 %, each strategy removed in turn (no tuning).
TABLE4 = (
    _row(4, L7, 0.5, "SlimLLM", False, [37.89, 67.68, 50.10], ABLATION),
    _row(4, L7, 0.5, "SlimLLM", False, [40.89, 82.60, 48.35], ABLATION, "w/o greedy search"),
    _row(4, L7, 0.5, "SlimLLM", False, [38.26, 71.21, 49.74], ABLATION, "w/o feature space"),
    _row(4, L7, 0.5, "SlimLLM", False, [66.37, 123.52, 42.16], ABLATION, "uniform ratios"),
)

#: The paper's Table 5: LLaMA-7B at 50 %, Eq. 11's alpha.
TABLE5 = tuple(
    _row(5, L7, 0.5, "SlimLLM", False, values, ABLATION, f"alpha={alpha}")
    for alpha, values in (
        (1, [54.17, 96.57, 44.42]),
        (4, [43.36, 83.91, 44.95]),
        (7, [37.89, 67.68, 50.10]),
        (10, [44.82, 75.80, 46.86]),
    )
)

#: The paper's Table 6: LLaMA-7B, with and without the regression of the output matrices.
TABLE6 = (
    _row(6, L7, 0.2, "SlimLLM", False, [15.95, 26.09, 61.22], ABLATION, "w/ regression"),
    _row(6, L7, 0.2, "SlimLLM", False, [16.78, 26.98, 60.89], ABLATION, "w/o regression"),
    _row(6, L7, 0.5, "SlimLLM", False, [37.89, 67.68, 50.10], ABLATION, "w/ regression"),
    _row(6, L7, 0.5, "SlimLLM", False, [48.66, 81.64, 46.66], ABLATION, "w/o regression"),
)


def samples(n: int) -> str:
    """Table 7's setting label: "1 sample", "32 samples"."""
    return f"{n} sample{'s' if n != 1 else ''}"


#: The paper's Table 7: LLaMA-7B at 50 %, number of 128-token calibration samples.
TABLE7 = tuple(
    _row(7, L7, 0.5, "SlimLLM", False, values, ABLATION, samples(n))
    for n, values in (
        (1, [58.8, 129.95, 46.50]),
        (4, [45.89, 99.64, 49.14]),
        (8, [45.98, 99.25, 47.89]),
        (16, [44.3, 80.06, 45.06]),
        (32, [37.89, 67.68, 50.10]),
        (64, [39.56, 72.05, 49.31]),
    )
)

V7 = "Vicuna-7B"

#: The paper's Table 8: Vicuna-7B, SlimLLM.
TABLE8 = (
    _row(8, V7, 0.0, "dense", False, [16.23, 58.12, 75.69, 77.91, 71.04, 67.80, 68.98, 40.70, 42.20, 63.47]),
    _row(8, V7, 0.2, "SlimLLM", False, [20.24, 68.75, 74.92, 76.12, 67.98, 65.82, 67.09, 39.33, 42.60, 61.98]),
    _row(8, V7, 0.5, "SlimLLM", False, [43.96, 131.49, 61.31, 67.25, 48.91, 56.35, 48.48, 31.06, 36.00, 49.91]),
    _row(8, V7, 0.2, "SlimLLM", True, [17.15, 59.03, 76.15, 76.39, 69.32, 64.72, 68.56, 39.25, 41.80, 62.31]),
    _row(8, V7, 0.5, "SlimLLM", True, [29.98, 87.93, 62.60, 69.53, 53.66, 57.77, 55.30, 31.91, 37.40, 52.60]),
)  # fmt: skip

L13 = "LLaMA-13B"

#: The paper's Table 9: LLaMA-13B, SlimLLM without tuning (no PTB column).
TABLE9 = (
    _row(9, L13, 0.0, "dense", False, [11.58, 68.47, 78.89, 76.24, 70.09, 74.58, 44.54, 42.00, 64.97], NO_PTB),
    _row(9, L13, 0.2, "SlimLLM", False, [13.35, 74.13, 77.53, 74.73, 69.30, 70.45, 42.32, 41.00, 64.21], NO_PTB),
    _row(9, L13, 0.5, "SlimLLM", False, [25.64, 62.31, 72.20, 60.84, 60.62, 55.60, 33.87, 37.80, 54.75], NO_PTB),
)  # fmt: skip

#: FLAP's README (LLaMA-7B, the same 128-token WikiText-2 protocol, its own 7-task mean).
FLAP_README = (
    _row("FLAP", L7, 0.2, "FLAP", False, [14.62, 62.08], ("wikitext2", "mean"), source="FLAP"),
    _row("FLAP", L7, 0.2, "Wanda-sp", False, [22.12, 63.35], ("wikitext2", "mean"), source="FLAP"),
    _row("FLAP", L7, 0.5, "FLAP", False, [31.80, 50.37], ("wikitext2", "mean"), source="FLAP"),
    _row("FLAP", L7, 0.5, "Wanda-sp", False, [366.43, 37.83], ("wikitext2", "mean"), source="FLAP"),
)

TABLES: dict[int | str, tuple[PaperRow, ...]] = {
    1: TABLE1,
    2: TABLE2,
    3: TABLE3,
    4: TABLE4,
    5: TABLE5,
    6: TABLE6,
    7: TABLE7,
    8: TABLE8,
    9: TABLE9,
    "FLAP": FLAP_README,
}


def find(
    table: int | str, method: str, ratio: float, tuned: bool = False, setting: str = ""
) -> PaperRow:
    """The one row of `table` with this method, ratio, tuning and setting (KeyError if none)."""
    for row in TABLES[table]:
        key = (row.method, row.ratio, row.tuned, row.setting)
        if key == (method, ratio, tuned, setting):
            return row
    raise KeyError(f"the paper's Table {table} has no row {method!r} {ratio} {tuned} {setting!r}")


def dense(table: int | str) -> PaperRow:
    """The dense row of `table` (Tables 4-7 share Table 1's dense LLaMA-7B)."""
    source = table if any(r.method == "dense" for r in TABLES[table]) else 1
    return find(source, "dense", 0.0)


def change(row: PaperRow, column: str) -> float | None:
    """`row`'s value of `column` relative to its dense model: ratio - 1 (0.25 = 25 % higher)."""
    base = dense(row.table).values.get(column)
    value = row.values.get(column)
    return None if base is None or value is None else value / base - 1
