"""What several subcommands share: argument types, help formatting, device and model loading."""

from __future__ import annotations

import argparse

import torch

from slimllm.data.sources import DATA_ENV
from slimllm.models.loaders import EMBEDDED, TINY

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
