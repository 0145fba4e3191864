"""The book page "Deploy the pruned model", rendered from the records that hold its numbers.

`render` takes the newest "gguf_agreement", "llamacpp_latency" and "round_to" records (as JSON:
`Record.to_json()`) and returns the page's Markdown; no number on the page is typed by hand.
`benchmarks/round_to.py` writes it to book/deploy.md, and a test checks that the committed
page is what the committed records render to. The page's commands are tested too
(tests/deploy/test_page.py runs its export command and its Python snippet on a tiny model).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: The record kinds the page reads, in `render`'s argument order.
PAGE_KINDS = ("gguf_agreement", "llamacpp_latency", "round_to")
MB = 1e6
#: Table 3's decoding length in the paper.
PAPER_NEW_TOKENS = 256

COMMANDS = """\
## Export

Prune, then write the folder as a GGUF file of llama.cpp's `deci` architecture (per-layer head
counts and MLP widths, the regression biases as `attn_output.bias` / `ffn_down.bias`, the
tokenizer and chat template, and the pruning record in `general.slimllm.record`):

```bash
slimllm prune smollm2-135m --ratio 0.5 --out p50
slimllm export p50 --gguf p50-q8_0.gguf --type q8_0
```

`--type` is `f32`, `f16` or `q8_0`. q8_0 stores blocks of 32 weights, so a matrix whose rows
are not a multiple of 32 long stays f16 (the command lists them): in a pruned model that is the
`ffn_down` of most pruned layers. Pruning with `--round-to 32` keeps a multiple of 32 MLP
channels in every pruned layer, so that everything quantizes (see the trade-off below). The
same export in Python: `slimllm.deploy.gguf.export_gguf("p50", "p50-q8_0.gguf", type="q8_0")`.

## Run it with llama.cpp

In Python, through the `xllamacpp` wheel (llama.cpp's server, in this process; installed with
the `dev` extra):

```python
from slimllm.deploy.llamacpp import server

srv = server("p50-q8_0.gguf", n_ctx=512, exact=False)
reply = srv.handle_completions({"prompt": "The capital of France is", "n_predict": 16})
print(reply["choices"][0]["text"])
```

`exact=False` keeps llama.cpp's defaults (f16 KV cache, flash attention where it helps);
`exact=True` (the default) uses an f32 cache and no flash attention, which the agreement
checks below use. Any llama.cpp build that has the `deci` architecture loads the same file,
for example `llama-cli -m p50-q8_0.gguf -p "The capital of France is" -n 16` or
`llama-server -m p50-q8_0.gguf` (these binaries are not part of this package and are not run
by its tests).
"""

LIMITS = """\
## What cannot be exported

`export_gguf` refuses, naming the layer and the reason, what llama.cpp's `deci` architecture
cannot express:

- Gemma 3: its q/k norms, pre/post-feedforward norms and scaled embeddings have no `deci`
  tensors;
- a layer that keeps no attention heads (llama.cpp would treat it as attention-free and drop
  its `o_proj` bias) or no MLP channels (llama.cpp skips such a layer entirely);
- layers with different head sizes (GGUF has one `key_length`), query heads that do not divide
  into the key/value heads, an activation other than SiLU, RoPE scaling, sliding-window
  attention, and tokenizers other than byte-level BPE with a pre-tokenizer llama.cpp
  reproduces exactly (GPT-2's or SmolLM's).
"""


def newest(records: Iterable[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The record measured last (by `environment.measured_at`)."""
    found = list(records)
    if not found:
        raise ValueError("no record of this kind: run its benchmark first")
    return max(found, key=lambda r: r.get("environment", {}).get("measured_at", ""))


def _model(recipe: Mapping[str, Any]) -> str:
    if "prune" not in recipe:
        return f"{recipe['base']} (dense)"
    prune = recipe["prune"]
    text = f"{recipe['base']} pruned by {prune['method']} to {prune['ratio']:.0%}"
    if prune.get("round_channels_to", 1) != 1:
        text += f", channels rounded to {prune['round_channels_to']}"
    return text


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _where(record: Mapping[str, Any]) -> str:
    env = record.get("environment", {})
    cpu = env.get("cpu", {})
    return (
        f"Measured {env.get('measured_at', '?')} on {cpu.get('model', '?')} "
        f"({cpu.get('cores', '?')} cores), record `results/{record['kind']}/{record['key']}.json`"
    )


def agreement_section(record: Mapping[str, Any]) -> str:
    """Perplexity in llama.cpp against transformers, per GGUF type, and the tokenization check."""
    config, result = record["config"], record["result"]
    tokens = result["tokenization"]
    rows = [
        [
            f"`{kind}`",
            f"{entry['ppl']:.4f}",
            f"{entry['relative_difference']:+.4%}",
            f"{entry['bytes'] / MB:.1f}",
            str(len(entry["kept_f16"])),
        ]
        for kind, entry in result["types"].items()
    ]
    return "\n\n".join(
        [
            "## Does llama.cpp run it as transformers does?",
            f"WikiText-2 perplexity of {_model(config['model'])} on the first "
            f"{config['windows']} windows of the `{config['protocol']}` protocol, computed by "
            f"llama.cpp on the exported file and by transformers on the folder "
            f"(transformers: {result['transformers_ppl']:.4f}). llama.cpp's number: "
            f"{result['method']}.",
            _table(
                ["type", "llama.cpp perplexity", "vs transformers", "file (MB)", "left f16"],
                rows,
            ),
            f"Tokenization of the whole test text: "
            f"{'identical' if tokens['identical'] else 'different'} "
            f"({tokens['tokens']:,} tokens in transformers, {tokens['llama_tokens']:,} in "
            f"llama.cpp). {_where(record)}.",
        ]
    )


def _phase_name(phase: str) -> str:
    return "prefill" if phase == "prefill" else f"decode, batch {phase.removeprefix('decode_b')}"


def _short_decode(new_tokens: int) -> str:
    if new_tokens >= PAPER_NEW_TOKENS:
        return ""
    return (
        f" Decoding runs {new_tokens} new tokens, not the paper's {PAPER_NEW_TOKENS}: on this "
        "shared machine the full protocol did not fit in the time the run had."
    )


def latency_section(record: Mapping[str, Any]) -> str:
    """Table 3 in llama.cpp and transformers: time ratios to dense beside FLOP ratios."""
    config, result, settings = record["config"], record["result"], record["settings"]
    spec = config["spec"]
    runtimes = list(result["time_ratios"])
    parts = [
        "## Is it faster? Table 3 in llama.cpp",
        f"{spec['prefill_len']}-token prefill with one new token (time to first token), and "
        f"decoding of {spec['new_tokens']} new tokens after a {spec['decode_prompt_len']}-token "
        f"prompt at batch {' and '.join(str(b) for b in spec['batches'])} (concurrent requests, "
        f"one llama.cpp slot each); {spec['threads']} thread, {spec['warmup']} warm-up round "
        f"and {spec['repeats']} timed rounds with the models interleaved, medians. "
        f"transformers: the same lengths and prompts through `measure_latency` "
        f"(`{config['transformers']['driver']}`, {config['transformers']['dtype']}). "
        f"Ratios are to dense in the same runtime and file type, from the same run; "
        f'"CPU time" is the process\'s CPU seconds, which other jobs on a shared machine inflate '
        f"far less than wall time.{_short_decode(spec['new_tokens'])} {_where(record)}; "
        f"load average {settings['load_average_before'][0]:.1f} when the run began and "
        f"{settings['load_average_after'][0]:.1f} when it ended. Conditions: "
        f"{settings['conditions']}.",
    ]
    for phase in result["phases"]:
        rows = []
        for label, flops in result["flop_ratios"].items():
            times = [f"{result['time_ratios'][r][label][phase]:.3f}" for r in runtimes]
            rows.append([label, f"{flops['parameters']:.3f}", f"{flops[phase]:.3f}", *times])
        parts.append(f"**{_phase_name(phase)}**, ratio to dense:")
        parts.append(_table(["model", "parameters", "FLOPs", *runtimes], rows))
    rows = []
    for kind, models in result["llamacpp"]["models"].items():
        for label, phases in models.items():
            rows.append(
                [f"llama.cpp {kind}", label]
                + [f"{phases[p]['median']:.3f} ({phases[p]['cpu_median']:.3f})" for p in phases]
            )
    transformers = result["transformers"]
    first = next(iter(transformers.values()))
    for label in first["models"]:
        row = [f"transformers {config['transformers']['dtype']}", label]
        row.append(f"{first['models'][label]['prefill']['median']:.3f}")
        row += [f"{t['models'][label]['decode']['median']:.3f}" for t in transformers.values()]
        rows.append(row)
    parts.append(
        "Median seconds (llama.cpp: wall, and CPU in brackets; transformers: wall; the shared "
        "machine makes wall times long):"
    )
    parts.append(_table(["runtime", "model", *map(_phase_name, result["phases"])], rows))
    return "\n\n".join(parts)


def round_to_section(record: Mapping[str, Any]) -> str:
    """What rounding the kept MLP channels to a multiple of 32 costs and buys at 50 %."""
    config, result = record["config"], record["result"]
    ratios = result["q8_0_time_ratios"]
    rows = []
    for label, entry in result["models"].items():
        q8_0 = entry["gguf"]["q8_0"]
        rows.append(
            [
                label,
                f"{entry['ppl']:.3f}",
                f"{entry['parameters']['total']:,}",
                f"{q8_0['bytes'] / MB:.1f}",
                str(len(q8_0["kept_f16"])),
            ]
        )
    phases = list(ratios["median"])
    speed = ", ".join(
        f"{_phase_name(p)} {ratios['median'][p]:.3f} ({ratios['cpu_median'][p]:.3f} in CPU time)"
        for p in phases
    )
    serving = config["serving"]
    return "\n\n".join(
        [
            "## Round the channels to 32?",
            f"`slimllm prune ... --round-to 32` at 50 %, against the default. Perplexity: "
            f"WikiText-2, first {config['max_windows']} windows of `{config['protocol']}`, "
            f"{config['dtype']}.",
            _table(["recipe", "perplexity", "parameters", "q8_0 (MB)", "left f16"], rows),
            f"Rounding changes perplexity by {result['ppl_change']:+.2%} and the q8_0 file by "
            f"{result['q8_0_size_change']:+.2%}. Time of the rounded q8_0 model over the "
            f"default's in llama.cpp (both interleaved, the protocol above with "
            f"{serving['new_tokens']} new tokens and {serving['repeats']} rounds): {speed}. "
            f"{_where(record)}.",
        ]
    )


def render(
    agreement: Mapping[str, Any], latency: Mapping[str, Any], round_to: Mapping[str, Any]
) -> str:
    """The page's Markdown from the three records (see PAGE_KINDS)."""
    latency_spec = latency["config"]["spec"]
    serving = round_to["config"]["serving"]
    measure = f"""\
## Measure

The numbers below come from these commands (each writes its record to `results/`; this page is
rendered from the records by `python benchmarks/round_to.py --page-only`):

```bash
python benchmarks/gguf_agreement.py p50 --windows {agreement["config"]["windows"]}
python benchmarks/llamacpp_latency.py --repeats {latency_spec["repeats"]} \\
    --warmup {latency_spec["warmup"]} --new-tokens {latency_spec["new_tokens"]}
python benchmarks/round_to.py --repeats {serving["repeats"]} --warmup {serving["warmup"]} \\
    --new-tokens {serving["new_tokens"]}
```
"""
    sections = [
        "<!-- Generated from results/ by slimllm.deploy.page.render; do not edit by hand. -->",
        "# Deploy the pruned model",
        "A SlimLLM model keeps a different number of heads and MLP channels in every layer. "
        "llama.cpp runs such a model as its `deci` architecture (made for Nemotron-NAS), which "
        "reads head counts and MLP widths per layer; `slimllm export` writes it.",
        COMMANDS.rstrip(),
        measure.rstrip(),
        agreement_section(agreement),
        latency_section(latency),
        round_to_section(round_to),
        LIMITS.rstrip(),
    ]
    return "\n\n".join(sections) + "\n"
