"""Print the latency table and the rounding verdict from the stored records (no measuring).

Reads the newest "latency" record and the matching 256-window WikiText-2 "perplexity" records
written by benchmarks/latency.py: `.venv/bin/python benchmarks/latency_summary.py`.
"""

from __future__ import annotations

from slimllm.experiments.store import Store
from slimllm.measure.latency import table


def main() -> None:
    store = Store.book()
    records = sorted(store.records("latency"), key=lambda r: r.environment.get("measured_at", ""))
    if not records:
        raise SystemExit("no latency records in the store: run benchmarks/latency.py first")
    record = records[-1]
    result = record.result
    print(table(result))
    print(
        f"dtype {result['dtype']}, {result['threads']} threads, {result['cpu']['model']}; "
        f"{record.where}"
    )
    print(f"\n{'model':<22} {'prefill ms':>10} {'decode s':>9} {'params':>7} {'ppl@256':>8}")
    for label, recipe in record.config["models"].items():
        found = store.find(
            "perplexity", model=recipe, dataset="wikitext2", dtype=result["dtype"], max_windows=256
        )
        ppl = f"{found[0].result['ppl']:.3f}" if found else "-"
        entry = result["models"][label]
        print(
            f"{label:<22} {entry['prefill']['median'] * 1e3:>10.1f} "
            f"{entry['decode']['median']:>9.3f} {entry['ratios']['parameters']:>7.3f} {ppl:>8}"
        )


if __name__ == "__main__":
    main()
