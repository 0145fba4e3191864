"""`slimllm rerun RECORD`: measure a stored record again from its configuration and compare."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import torch

from slimllm.cli import common
from slimllm.experiments import recipes
from slimllm.experiments.runners import runner_for
from slimllm.experiments.store import Record, Store
from slimllm.models.io import load_pruned, state_digest
from slimllm.util.files import non_finite

HELP = "measure a results record again from its configuration"
DESCRIPTION = (
    "Rebuild the model from the record's recipe, measure again, and print the "
    "stored and new numbers side by side. The store is left as it was unless --write, which "
    "replaces the record with the new measurement (in the record's own store, the book's "
    "results/ included: this is how its evidence is measured again on purpose)."
)


def add_parser(sub: Any) -> None:
    p = common.command_parser(sub, "rerun", HELP, DESCRIPTION)
    p.add_argument("record", type=Path, help="a JSON record under results/<kind>/")
    common.add_device(p, "override the recorded device")
    p.add_argument(
        "--write", action="store_true", help="replace the stored record with the new measurement"
    )


def numbers(value: Any, prefix: str = "") -> dict[str, float]:
    """The top-level and nested scalar numbers of a result, by dotted name (lists skipped)."""
    out: dict[str, float] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            if key != "record":
                out.update(numbers(item, f"{prefix}{key}."))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        out[prefix.rstrip(".")] = float(value)
    return out


#: Fields that say how a run went, not what it found.
VOLATILE = frozenset({"seconds", "versions", "cache_key", "weights_sha256"})


def other_differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two results differ outside their top-level and nested-dict numbers
    (which `numbers` lists): text, and lists compared element by element (a pruning report's
    per-layer entries, floats included, so equal means equal to the last bit)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(old.keys() & new.keys()):
            if key not in VOLATILE:
                out += other_differences(old[key], new[key], f"{prefix}{key}.")
        return out
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [f"{prefix.rstrip('.')} (length {len(old)} against {len(new)})"]
        return [
            d for i, (a, b) in enumerate(zip(old, new, strict=True))
            for d in other_differences(a, b, f"{prefix.rstrip('.')}[{i}].")
        ]  # fmt: skip
    if isinstance(old, (int, float)) and isinstance(new, (int, float)) and not prefix.count("["):
        return []  # shown in the table above
    return [] if old == new else [prefix.rstrip(".")]


def stored_weights(old: Record) -> tuple[str | None, str]:
    """The digest a re-pruned model's weights should match, and where it comes from: the
    record's own, or the recipe cache's copy of the model (opened, not rebuilt)."""
    if "weights_sha256" in old.result:
        return old.result["weights_sha256"], "the stored record"
    folder = recipes.cached_folder(old.config["model"])
    if not (folder / "config.json").is_file():
        return None, ""
    model, _ = load_pruned(folder, dtype=torch.float32)
    return state_digest(model), f"the cached model in {folder}"


def _store_of(record: Path, kind: str) -> Store:
    """The store `record` lies in, as <root>/<kind>/<key>.json; the book's is no exception, as
    --write asks for the replacement."""
    if record.parent.name != kind:
        raise ValueError(
            f"RECORD {record} is not in a store's {kind}/ folder, so --write has no store to "
            "write to"
        )
    return Store(record.parent.parent)


def run(args: argparse.Namespace) -> int:
    if not args.record.is_file():
        raise ValueError(f"RECORD {str(args.record)!r} is not a file")
    old = Store.read(args.record)
    bad = non_finite(old.config)
    if bad is not None:
        raise ValueError(f"RECORD {args.record}: its config's {bad} is NaN or infinite")
    runner = runner_for(old.kind)
    store = _store_of(args.record, old.kind) if args.write else None
    settings = dict(old.settings)
    if args.device is not None:
        settings["device"] = common.device_or_default(args.device)
    elif str(settings.get("device", "cpu")).startswith("cuda") and not torch.cuda.is_available():
        settings["device"] = "cpu"
        print(f"recorded on {old.settings['device']}; no GPU here, measuring on the CPU")
    print(f"{old.kind} record {old.key}, {old.where}")
    try:
        if store is not None:
            new = store.run(
                old.kind, old.config, lambda: runner(old.config, settings), settings, recompute=True
            )
            result = new.result
        else:
            result = runner(old.config, settings)
    except KeyError as err:
        raise ValueError(
            f"RECORD {args.record} lacks {err}, which its {old.kind} run reads"
        ) from err
    before, after = numbers(old.result), numbers(result)
    print(f"{'value':<32} {'stored':>14} {'now':>14} {'rel. diff':>10}")
    for name in sorted(before.keys() & after.keys()):
        a, b = before[name], after[name]
        rel = abs(b - a) / abs(a) if a else (0.0 if b == a else math.inf)
        print(f"{name:<32} {a:>14.6g} {b:>14.6g} {rel:>10.2e}")
    changed = other_differences(old.result, result)
    print(
        "lists and text (per-layer reports included): "
        + ("identical" if not changed else f"{len(changed)} differ: {', '.join(changed[:8])}")
    )
    if old.kind == "prune":
        digest, source = stored_weights(old)
        if digest is None:
            print("weights: no digest stored and no cached copy of the model to compare with")
        else:
            same = "bit-identical to" if digest == result["weights_sha256"] else "DIFFERENT from"
            print(f"weights: {same} {source} (sha256 {result['weights_sha256'][:16]})")
    if store is not None:
        print(f"record replaced: {new.path}")
    return 0


def left_as_it_was(args: argparse.Namespace) -> str:
    return f"RECORD {args.record} left as it was"
