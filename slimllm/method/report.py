"""What a pruning run did: one LayerReport per decoder layer, the PruneReport of the whole run
(config, target and achieved ratios, parameter counts, time, versions), and its text table.
SlimLLM and every peer return the same report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class LayerReport:
    """What happened to one layer."""

    index: int
    #: Eq. 11's cosine (None for methods that do not measure it).
    similarity: float | None
    ratio: float
    attention_mode: str = "none"
    heads_kept: list[int] = field(default_factory=list)
    heads_before: int = 0
    channels_kept: int = 0
    channels_before: int = 0
    search_initial: float | None = None
    search_final: float | None = None
    swaps: int = 0
    attn_a_mean: float | None = None
    attn_b_mean: float | None = None
    mlp_a_mean: float | None = None
    mlp_b_mean: float | None = None
    #: Relative squared error of the sub-layer's output against the unpruned sub-layer on the
    #: same calibration inputs, before and after the Eq. 9-10 fit (None without regression).
    attn_error_before: float | None = None
    attn_error_after: float | None = None
    mlp_error_before: float | None = None
    mlp_error_after: float | None = None
    #: A and B at the quantiles FIT_QUANTILES over the output dimensions (their distribution).
    attn_a_quantiles: list[float] | None = None
    attn_b_quantiles: list[float] | None = None
    mlp_a_quantiles: list[float] | None = None
    mlp_b_quantiles: list[float] | None = None


@dataclass
class PruneReport:
    """The pruning record: configuration, target and achieved ratio, per-layer details."""

    config: dict[str, Any]
    target: float
    achieved: float
    base_ratio: float
    alpha: float
    params_before: int
    params_after: int
    decoder_params_before: int
    decoder_params_after: int
    calibration: str
    seconds: float
    layers: list[LayerReport]
    versions: dict[str, str]
    method: str = "slimllm"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summary_table(report: PruneReport) -> str:
    """Per-layer ratios, heads and channels kept, then totals and time."""
    lines = [
        f"{'layer':>5} {'cos':>6} {'ratio':>6} {'heads':>7} {'channels':>11} {'mode':>6} "
        f"{'search':>15}"
    ]
    for r in report.layers:
        search = "" if r.search_final is None else f"{r.search_initial:.3f}->{r.search_final:.3f}"
        cos = "" if r.similarity is None else f"{r.similarity:.3f}"
        lines.append(
            f"{r.index:>5} {cos:>6} {r.ratio:>6.3f} "
            f"{len(r.heads_kept):>3}/{r.heads_before:<3}"
            f" {r.channels_kept:>5}/{r.channels_before:<5} {r.attention_mode:>6} {search:>15}"
        )
    lines.append(
        f"parameters {report.params_before:,} -> {report.params_after:,} "
        f"(decoder {report.decoder_params_before:,} -> {report.decoder_params_after:,}); "
        f"target {report.target:.1%} of the {report.config['ratio_of']}, "
        f"achieved {report.achieved:.2%}; "
        f"{report.seconds:.1f} s"
    )
    return "\n".join(lines)
