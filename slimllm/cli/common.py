"""What several subcommands share: their parser, argument types, help formatting, the option
blocks more than one of them offers, and the checks every run makes before any work (model
folders, output paths, the device, windows against the model's positions, the results store)."""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import torch
from transformers import AutoConfig

from slimllm.data.sources import DATA_ENV
from slimllm.experiments.store import RESULTS_ENV, Store, resolve_results_dir
from slimllm.measure.lm_eval_tasks import SEVEN_TASKS
from slimllm.models.loaders import EMBEDDED, TINY, TINY_DEFAULTS, cache_dir, convert_embedded
from slimllm.models.precision import DTYPE_CHOICES
from slimllm.util.files import non_finite

MODELS_HELP = ", ".join([*EMBEDDED, *TINY])


class Parser(argparse.ArgumentParser):
    """An argument error is one line on stderr; the usage it would print is in --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


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


def number(text: str) -> float:
    """An argument type: a finite number (no option takes NaN or infinity)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def in_range(rule: str, holds: Callable[[float], bool]) -> Callable[[str], float]:
    """An argument type: a finite number for which `holds` is true; `rule` says which."""

    def parse(text: str) -> float:
        value = number(text)
        if not holds(value):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {value}")
        return value

    return parse


ratio = in_range("in [0, 1)", lambda v: 0 <= v < 1)
positive = in_range("> 0", lambda v: v > 0)
fraction = in_range("in (0, 1]", lambda v: 0 < v <= 1)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {value}")
    return value


def folder(text: str) -> str:
    """An argument type: an existing directory."""
    if not Path(text).expanduser().is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not a directory")
    return text


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
    """--out, the directory a subcommand saves the `what` model to; see `check_out`."""
    parser.add_argument(
        "--out", type=Path, required=True, help=f"directory to write the {what} model to"
    )


def add_overwrite(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def model_config(name: str, what: str = "MODEL") -> dict[str, Any] | None:
    """The config.json of the model folder `name`, read strictly, or None where `name` is not a
    folder with one (the loader then says what it lacks). One that is not JSON, not an object or
    holds NaN or infinity fails here, naming the file; `what` names the argument."""
    file = Path(name) / "config.json"
    if not file.is_file():
        return None
    try:
        config = json.loads(file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{what}: {file} is not valid JSON ({err})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{what}: {file} is not a JSON object")
    bad = non_finite(config)
    if bad is not None:
        raise ValueError(f"{what}: {file} holds NaN or infinity at {bad}")
    return config


def check_writable(path: Path, what: str, is_folder: bool, into: bool = False) -> None:
    """Fail now rather than after a long run where `path` cannot be written: a file where a
    folder goes (or the reverse), or a place no file can be created in. Outputs are written
    beside their target and renamed (or, `into` a folder, inside it), so the nearest existing
    folder there must take a new entry; a probe folder is made there and removed."""
    kind, other = ("folder", "file") if is_folder else ("file", "folder")
    if path.exists() and path.is_dir() != is_folder:
        raise ValueError(f"{what} {path} is a {other}; expected a {kind}")
    places = [path.absolute()] if into else []
    above = next(p for p in [*places, *path.absolute().parents] if p.exists())
    if not above.is_dir():
        raise ValueError(f"{what} {path} cannot be written: {above} is a file")
    try:
        tempfile.TemporaryDirectory(dir=above, prefix=".slimllm-probe-").cleanup()
    except OSError as err:
        raise ValueError(
            f"{what} {path} cannot be written: nothing can be created in {above} ({err.strerror})"
        ) from None


def model_path(name: str) -> Path | None:
    """Where the model `name` lives on disk, if anywhere: a folder, or an embedded model's
    converted copy."""
    if name in EMBEDDED:
        return cache_dir() / name
    return Path(name) if Path(name).exists() else None


def check_out(args: argparse.Namespace, model: str) -> None:
    """--out: writable; not the model's folder, inside it or around it (replacing --out would
    take the model with it, --overwrite or not); holding files only with --overwrite."""
    out = args.out
    check_writable(out, "--out", is_folder=True)
    source = model_path(model)
    if source is not None:
        target, origin = out.resolve(), source.resolve()
        if target == origin or origin in target.parents or target in origin.parents:
            where = (
                "holds" if target in origin.parents else "is inside" if target != origin else "is"
            )
            raise ValueError(f"--out {out} {where} the model folder {model}; write elsewhere")
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise ValueError(f"--out {out} exists and is not empty (pass --overwrite)")


def add_results_dir(parser: argparse.ArgumentParser) -> None:
    """--results-dir and --replace: where a command's records go."""
    default = f"${RESULTS_ENV}, else the user folder ~/.cache/slimllm/results"
    parser.add_argument(
        "--results-dir", type=Path, help=f"folder the records are written to (default: {default})"
    )
    parser.add_argument(
        "--replace",
        action="store_true",
        help="replace a record of the same configuration whose numbers differ (the checkout's "
        "results/, the book's evidence, refuses without it)",
    )


def results_store(args: argparse.Namespace) -> Store:
    """The store of --results-dir, checked writable; the checkout's results/ is protected."""
    root = resolve_results_dir(args.results_dir)
    check_writable(root, "--results-dir", is_folder=True, into=True)
    return Store(root)


def records_note(store: Store) -> str:
    return f"{store.root} (another folder: --results-dir or ${RESULTS_ENV})"


def positions(name: str) -> int | None:
    """The max_position_embeddings of the model `name`, read from its config without loading
    the weights (so a bad length is refused before any work); None where there is no config to
    read, which the loader then reports."""
    if name in TINY:
        return int({**TINY_DEFAULTS, **TINY[name]}["max_position_embeddings"])
    if name in EMBEDDED:
        name = str(convert_embedded(name))  # what loading does first, once
    config = model_config(name)
    if config is None:
        try:
            config = AutoConfig.from_pretrained(name).to_dict()
        except (OSError, ValueError):
            return None
    return config.get("max_position_embeddings")


def check_positions(name: str, tokens: int, what: str) -> None:
    """Refuse a window longer than the model's positions: it would be scored past what the
    model was built for, or fail midway."""
    limit = positions(name)
    if limit is not None and tokens > limit:
        raise ValueError(
            f"{what} is {tokens} tokens, more than the model's {limit} positions "
            "(config.max_position_embeddings)"
        )


def config_values(args: argparse.Namespace, *fields: str) -> dict[str, Any]:
    """`{field: args.field}` for options whose destination is named as the config field they set."""
    return {field: getattr(args, field) for field in fields}


def refuse_given(args: argparse.Namespace, options: dict[str, str], why: str) -> None:
    """Refuse the options of `options` (destination -> flag) that were given: they would be
    ignored."""
    given = [flag for dest, flag in options.items() if getattr(args, dest) is not None]
    if given:
        raise ValueError(f"{', '.join(given)} {why}")


def add_task_options(parser: argparse.ArgumentParser) -> None:
    """--tasks, --limit, --seed: of `slimllm tasks` and `slimllm eval --zeroshot` (defaults None,
    so a command can tell them given; `task_options` fills them in)."""
    parser.add_argument(
        "--tasks",
        type=task_list,
        default=None,
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
        "--seed", type=int, default=None, help="seed of the --limit subset (default: 0)"
    )


def task_options(args: argparse.Namespace) -> tuple[list[str], int | None, int]:
    """--tasks, --limit and --seed with their defaults filled in."""
    return args.tasks or list(SEVEN_TASKS), args.limit, 0 if args.seed is None else args.seed


def add_dtype(
    parser: argparse.ArgumentParser,
    summary: str,
    choices: Sequence[str] = DTYPE_CHOICES,
    default: str = "auto",
) -> None:
    parser.add_argument("--dtype", choices=choices, default=default, help=summary)


def add_json(parser: argparse.ArgumentParser, summary: str) -> None:
    parser.add_argument("--json", type=Path, default=None, help=summary)


def check_json(args: argparse.Namespace) -> None:
    if args.json is not None:
        check_writable(args.json, "--json", is_folder=False)


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=folder,
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
    """--device, checked now (a missing GPU fails here, not deep inside torch), else cuda if
    available, else cpu."""
    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {name!r}: expected cpu, cuda or cuda:N")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device.type == "cuda" and (device.index or 0) >= count:
        here = f"only {count} CUDA device(s)" if count else "no CUDA device"
        raise ValueError(f"--device {name}: this machine has {here}; use --device cpu")
    return name
