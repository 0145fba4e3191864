"""FLAP at 50 % closer to its authors' set-up, beside Table 1's FLAP row.

FLAP's README puts it ahead of LLM-Pruner and of SlimLLM's LLaMA-7B numbers; in Table 1 here it
is far behind both. These rows separate our harness from the method (tables.FLAP_HARNESS):

- 1024 x 128 calibration windows of BookCorpus (FLAP's count; Table 1 gives every method 32);
- 1024 x 128 windows of in-domain WikiText-2 text: the validation split, standing in for the
  train split FLAP sampled, which the offline data folder lacks (`--calib-data wikitext2-valid`);
- `flap-uniform`: FLAP's scores and bias with one ratio on every layer, against its global
  allocation at Table 1's 32 windows.

Each row's cells are Table 1's (benchmarks/_cells.py): full-set WikiText-2 and PTB perplexity,
lineage-128, bfloat16, and the 7-task zero-shot accuracy on the seeded 500-item subset. The
Table 1 page and the claims page read them from the store. An interrupted run resumes from its
records; `--part K/N` splits the rows between processes (give each `--threads 1` on a 2-core
machine) and `--dry-run` lists the cells, "+" where a record exists.

    python benchmarks/flap_harness.py --measure ppl     # the perplexities of the three rows
    python benchmarks/flap_harness.py --dry-run
"""

from __future__ import annotations

import torch
from _cells import (
    Clock,
    cell_configs,
    cell_parser,
    in_part,
    measure,
    measure_groups,
    only_labels,
    parse_part,
    status,
)

from slimllm.experiments import tables
from slimllm.experiments.store import Store


def main() -> None:
    parser = cell_parser(__doc__, tables.BASE)
    args = parser.parse_args()
    if args.assemble:
        parser.error("--assemble: this script writes no table record (the pages read its cells)")
    what = measure_groups(parser, args.measure)
    k, n = parse_part(parser, args.part)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = {
        label: tables.recipe(method, 0.5, base=args.model, **options)
        for label, (method, options) in tables.FLAP_HARNESS.items()
    }
    only = only_labels(parser, args.only, rows)
    chosen = {
        label: recipe
        for label, recipe in rows.items()
        if (not only or label in only) and in_part(recipe, k, n)
    }
    store = Store.book()
    settings = {"device": args.device, "batch_size": args.batch_size, "progress": False}
    clock = Clock()
    for i, (label, recipe) in enumerate(chosen.items(), 1):
        configs = cell_configs(recipe, args.max_windows, args.limit)
        if args.dry_run:
            print(f"{label}: {status(store, configs, what)}")
        else:
            measure(store, f"({i}/{len(chosen)}) flap 50% {label}", configs, what, settings, clock)


if __name__ == "__main__":
    main()
