"""What several subcommands share: argument types, help formatting, device and model loading."""

from __future__ import annotations

import argparse

import torch

from slimllm.data import DATA_ENV
from slimllm.models import EMBEDDED, TINY
from slimllm.pruner import PruneReport

MODELS_HELP = ", ".join([*EMBEDDED, *TINY])


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: X)" only where the help text does not already state a default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def ratio(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        default=None,
        help=f"data directory (default: ${DATA_ENV}, else ../shared/data beside the checkout, "
        "else the hub)",
    )


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")


def device_or_default(name: str | None) -> str:
    return name or ("cuda" if torch.cuda.is_available() else "cpu")


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
