"""What recomputing the store costs: the time its records took, and an estimate for the cells
the Results tables still lack.

Every record carries the seconds its own measurement took (`Record.seconds`), so the store
itself says how long it took to produce. The table records (`TABLE_KINDS`, written by
`benchmarks/table1.py`, `ablations.py` and `other_models.py`) list every cell their tables need,
None where no record exists yet; a missing cell is estimated at the median time of the cells of
the same model and measure that were measured, plus one pruning run (the model's median prune
record) for a pruned recipe none of whose cells exists. A cell of a model with no measured cell
of that measure is counted, not estimated.

A timed recompute into an empty store (`benchmarks/recompute_book.py --summary`) is compared
with the book's records by `agreement`: the same configurations, measured again from scratch.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from slimllm.experiments import recipes
from slimllm.experiments.store import Record, Store, config_key, differences

#: The records whose rows name every cell of a Results table, measured or not.
TABLE_KINDS = ("table1", "ablation_table", "other_models_table")
#: The cells of a table row: full-set perplexities and the zero-shot subset.
MEASURES = ("wikitext2", "ptb", "zeroshot")
#: Records of a run of other records: their seconds count those records' measurements again.
SUMMARY_KINDS = ("recompute_run",)


@dataclass
class KindTime:
    """The records of one kind: how many, how many carry a time, their hours, where measured."""

    kind: str
    records: int = 0
    timed: int = 0
    hours: float = 0.0
    #: "CPU model, N threads" (or the GPU) -> records measured there.
    machines: dict[str, int] = field(default_factory=dict)


@dataclass
class Hours:
    """The store's measured hours: on CPUs (and the share of them on one thread) and on GPUs,
    whose CPU time is unknown."""

    records: int = 0
    cpu: float = 0.0
    one_thread: float = 0.0
    gpu: float = 0.0
    gpu_records: int = 0
    gpus: set[str] = field(default_factory=set)


@dataclass
class Missing:
    """The cells the table records lack, and what measuring them is estimated to take."""

    #: (model, measure) -> cells missing.
    cells: dict[tuple[str, str], int] = field(default_factory=dict)
    #: (model, measure) -> the median seconds of that model's measured cells of the measure.
    seconds: dict[tuple[str, str], float] = field(default_factory=dict)
    #: model -> pruned recipes with no cell measured yet (each needs its pruning run first).
    prunes: dict[str, int] = field(default_factory=dict)
    #: model -> the median seconds of its prune records.
    prune_seconds: dict[str, float] = field(default_factory=dict)

    def estimated_hours(self) -> float:
        cells = sum(n * self.seconds[k] for k, n in self.cells.items() if k in self.seconds)
        prunes = sum(n * self.prune_seconds.get(m, 0.0) for m, n in self.prunes.items())
        return (cells + prunes) / 3600

    def unestimated(self) -> int:
        """Missing cells of a model and measure no measured cell gives a time for."""
        return sum(n for k, n in self.cells.items() if k not in self.seconds)


def machine(rec: Record) -> str:
    """Where a record was measured, in a few words."""
    env = rec.environment
    if env.get("gpu"):
        return str(env["gpu"])
    cpu = env.get("cpu")
    name = cpu.get("model", "?") if isinstance(cpu, dict) else "?"
    threads = env.get("torch_threads")
    return f"{name}, {threads} thread{'' if threads == 1 else 's'}" if threads else name


def _measurements(store: Store) -> Iterator[Record]:
    """The store's records of a measurement, summaries of runs (`SUMMARY_KINDS`) left out."""
    return (r for r in store.records() if r.kind not in SUMMARY_KINDS)


def time_by_kind(store: Store) -> list[KindTime]:
    """Every kind of measurement in the store with the hours its records took, largest first."""
    kinds: dict[str, KindTime] = {}
    for rec in _measurements(store):
        entry = kinds.setdefault(rec.kind, KindTime(rec.kind))
        entry.records += 1
        if rec.seconds is not None:
            entry.timed += 1
            entry.hours += rec.seconds / 3600
        where = machine(rec)
        entry.machines[where] = entry.machines.get(where, 0) + 1
    return sorted(kinds.values(), key=lambda k: (-k.hours, k.kind))


def measured_hours(store: Store) -> Hours:
    """The hours the store's records took, split by where they ran."""
    out = Hours()
    for rec in _measurements(store):
        out.records += 1
        if rec.seconds is None:
            continue
        hours = rec.seconds / 3600
        if rec.environment.get("gpu"):
            out.gpu, out.gpu_records = out.gpu + hours, out.gpu_records + 1
            out.gpus.add(str(rec.environment["gpu"]))
        else:
            out.cpu += hours
            if rec.environment.get("torch_threads") == 1:
                out.one_thread += hours
    return out


def table_cells(result: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Each seed's cells of a table record's rows: a dict holding `recipe` and its measures (a
    measure that row does not ask for is absent; None where it is not measured yet)."""
    for row in result.get("rows", []):
        if row.get("refused"):
            continue  # a method that refuses the model has nothing to measure
        yield from row.get("seeds", [row])


@dataclass
class TableTime:
    """What the table records' measured cells took (each cell once, however many tables show
    it), and the pruning of their models: the work `make results` redoes from an empty store."""

    cells: int = 0
    cell_hours: float = 0.0
    prunes: int = 0
    prune_hours: float = 0.0

    @property
    def hours(self) -> float:
        return self.cell_hours + self.prune_hours


def table_time(store: Store) -> TableTime:
    """The recorded seconds of every measured cell of the table records, and of the pruning
    record of each pruned model they show (a tuned row's model is its untuned recipe's)."""
    out = TableTime()
    seen: set[tuple[str, str]] = set()
    pruned: set[str] = set()
    for kind in TABLE_KINDS:
        for rec in store.records(kind) if (store.root / kind).is_dir() else []:
            for cell in table_cells(rec.result):
                recipe = cell["recipe"]
                key = config_key("recipe", recipe)
                for name in MEASURES:
                    found = cell.get(name)
                    if found is None or (key, name) in seen or found.get("seconds") is None:
                        continue
                    seen.add((key, name))
                    out.cells += 1
                    out.cell_hours += found["seconds"] / 3600
                untuned = recipes.untuned(recipe)
                prune_key = config_key("recipe", untuned)
                if "prune" not in recipe or prune_key in pruned:
                    continue
                found_prune = store.get("prune", {"model": untuned})
                if found_prune is not None and found_prune.seconds is not None:
                    pruned.add(prune_key)
                    out.prunes += 1
                    out.prune_hours += found_prune.seconds / 3600
    return out


def missing_cells(store: Store) -> Missing:
    """The cells the table records lack, once each (a recipe shared by two tables counts once),
    with the median times of measured cells to estimate them."""
    measured: dict[tuple[str, str], list[float]] = {}
    absent: dict[tuple[str, str], str] = {}
    built: set[str] = set()
    pruned: dict[str, str] = {}
    for kind in TABLE_KINDS:
        for rec in store.records(kind) if (store.root / kind).is_dir() else []:
            for cell in table_cells(rec.result):
                recipe = cell["recipe"]
                key, model = config_key("recipe", recipe), recipe["base"]
                for name in MEASURES:
                    if name not in cell:
                        continue
                    if cell[name] is None:
                        absent[(key, name)] = model
                    else:
                        built.add(key)
                        if cell[name].get("seconds") is not None:
                            measured.setdefault((model, name), []).append(cell[name]["seconds"])
                if "prune" in recipe:
                    pruned[key] = model
    out = Missing()
    for (_, name), model in sorted(absent.items()):
        out.cells[(model, name)] = out.cells.get((model, name), 0) + 1
    for key, model in sorted(pruned.items()):
        if key not in built:
            out.prunes[model] = out.prunes.get(model, 0) + 1
    out.seconds = {k: statistics.median(v) for k, v in measured.items() if k in out.cells}
    prune_times: dict[str, list[float]] = {}
    if (store.root / "prune").is_dir():
        for rec in store.records("prune"):
            model = rec.config.get("model", {}).get("base")
            if model in out.prunes and rec.seconds is not None:
                prune_times.setdefault(model, []).append(rec.seconds)
    out.prune_seconds = {m: statistics.median(v) for m, v in prune_times.items()}
    return out


@dataclass
class Agreement:
    """How a recomputed store's numbers compare with the reference store's records of the same
    configuration (records of one store only are not compared)."""

    #: Perplexities compared, and those inside the reference record's bootstrap interval.
    perplexity: int = 0
    ppl_inside: int = 0
    #: The largest |new / reference - 1| over the compared perplexities.
    ppl_worst: float = 0.0
    #: Zero-shot records compared, those with every task's accuracy equal, and the largest
    #: difference of the mean accuracy in points.
    zeroshot: int = 0
    zeroshot_equal: int = 0
    zeroshot_worst: float = 0.0
    #: Pruning records compared, those that keep the same structure (every layer's kept heads
    #: and channel count, the parameter count), and those equal in every number (times and
    #: versions aside; a regression coefficient off in the ninth digit counts as a difference).
    prune: int = 0
    prune_same_structure: int = 0
    prune_equal: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def agreement(reference: Store, new: Store) -> Agreement:
    """Compare every perplexity, zero-shot and pruning record of `new` with the record of the
    same configuration (the same key) in `reference`."""
    out = Agreement()
    for kind in ("perplexity", "zeroshot", "prune"):
        if not (new.root / kind).is_dir():
            continue
        for rec in new.records(kind):
            old = reference.get(kind, rec.config)
            if old is None:
                continue
            a, b = old.result, rec.result
            if kind == "perplexity":
                out.perplexity += 1
                out.ppl_inside += a["ci_low"] <= b["ppl"] <= a["ci_high"]
                out.ppl_worst = max(out.ppl_worst, abs(b["ppl"] / a["ppl"] - 1))
            elif kind == "zeroshot":
                out.zeroshot += 1
                out.zeroshot_equal += all(
                    b["tasks"][t]["value"] == a["tasks"][t]["value"] for t in a["tasks"]
                )
                out.zeroshot_worst = max(out.zeroshot_worst, 100 * abs(b["mean"] - a["mean"]))
            else:
                out.prune += 1
                out.prune_same_structure += structure(a) == structure(b)
                out.prune_equal += not differences(a, b)
    return out


#: What a pruning record's layer says about the pruned model's shape.
STRUCTURE = ("attention_mode", "heads_kept", "channels_kept")


def structure(prune_result: dict[str, Any]) -> tuple[Any, ...]:
    """The parameter count and every layer's kept heads and channel count of a pruning record."""
    layers = [tuple(layer.get(k) for k in STRUCTURE) for layer in prune_result.get("layers", [])]
    return prune_result.get("params_after"), tuple(layers)
