"""What several subcommands share: their parser, argument types, help formatting, the option
blocks more than one of them offers, the --out check and the device default."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from slimllm.data.sources import DATA_ENV
from slimllm.measure.lm_eval_tasks import SEVEN_TASKS
from slimllm.models.loaders import EMBEDDED, TINY
from slimllm.models.precision import DTYPE_CHOICES

MODELS_HELP = ", ".join([*EMBEDDED, *TINY])


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: X)" only where the help text does not already state a default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def command_parser(
    sub: Any,
    name: str,
    summary: str,
    description: str,
    formatter_class: type[argparse.HelpFormatter] = HelpFormatter,
    epilog: str | None = None,
) -> argparse.ArgumentParser:
    """The parser of subcommand `name`: `summary` in `slimllm --help`, `description` in its own."""
    return sub.add_parser(
        name, help=summary, formatter_class=formatter_class, description=description, epilog=epilog
    )


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


def name_list(
    allowed: Sequence[str], complaint: Callable[[str, list[str]], str]
) -> Callable[[str], list[str]]:
    """An argument type: comma-separated names, each one of `allowed`, at least one.

    `complaint(text, unknown_names)` is the error message otherwise.
    """

    def names(text: str) -> list[str]:
        given = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in given if n not in allowed]
        if unknown or not given:
            raise argparse.ArgumentTypeError(complaint(text, unknown))
        return given

    return names


task_list = name_list(
    SEVEN_TASKS,
    lambda text, unknown: (
        f"unknown task(s) {', '.join(unknown) or repr(text)}; choose from {', '.join(SEVEN_TASKS)}"
    ),
)


def add_model(parser: argparse.ArgumentParser, accepts: str, default: str | None = None) -> None:
    """The MODEL positional; `accepts` says what it may name. With a default it may be left out."""
    if default is None:
        parser.add_argument("model", help=accepts)
    else:
        parser.add_argument("model", nargs="?", default=default, help=accepts)


def add_out(parser: argparse.ArgumentParser, what: str) -> None:
    """--out, the directory a subcommand saves the `what` model to; see `add_overwrite`."""
    parser.add_argument(
        "--out", type=Path, required=True, help=f"directory to write the {what} model to"
    )


def add_overwrite(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def out_taken(args: argparse.Namespace) -> str | None:
    """Why --out may not be written (it holds files and --overwrite is off), or None."""
    if args.out.exists() and any(args.out.iterdir()) and not args.overwrite:
        return f"--out {args.out} exists and is not empty (pass --overwrite)"
    return None


def config_values(args: argparse.Namespace, *fields: str) -> dict[str, Any]:
    """`{field: args.field}` for options whose destination is named as the config field they set."""
    return {field: getattr(args, field) for field in fields}


def add_task_options(parser: argparse.ArgumentParser) -> None:
    """--tasks, --limit, --seed: of `slimllm tasks` and `slimllm eval --zeroshot`."""
    parser.add_argument(
        "--tasks",
        type=task_list,
        default=list(SEVEN_TASKS),
        help=f"comma-separated zero-shot tasks (default: all of {', '.join(SEVEN_TASKS)})",
    )
    parser.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        help="a seeded subset of this many items per task, the same for every model "
        "(default: every item)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the --limit subset (default: 0)"
    )


def add_dtype(
    parser: argparse.ArgumentParser,
    summary: str,
    choices: Sequence[str] = DTYPE_CHOICES,
    default: str = "auto",
) -> None:
    parser.add_argument("--dtype", choices=choices, default=default, help=summary)


def add_json(parser: argparse.ArgumentParser, summary: str) -> None:
    parser.add_argument("--json", type=Path, default=None, help=summary)


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        default=None,
        help=f"data directory (default: ${DATA_ENV}, else ../shared/data beside the checkout, "
        "else the hub)",
    )


def add_device(parser: argparse.ArgumentParser, summary: str | None = None) -> None:
    """--device; `summary` replaces the help text that states the default."""
    parser.add_argument(
        "--device", default=None, help=summary or "default: cuda if available, else cpu"
    )


def device_or_default(name: str | None) -> str:
    return name or ("cuda" if torch.cuda.is_available() else "cpu")
