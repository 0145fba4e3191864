"""llama.cpp in this process, through the `xllamacpp` CPU wheel (the `dev` extra): serve a GGUF,
tokenize with llama.cpp's own tokenizer, read next-token log-probs, and time Table 3's protocol.

The server runs inside the Python process; `handle_completions` releases the GIL, so requests
sent from several threads are decoded together, one sequence per server slot (llama.cpp's
continuous batching): that is decoding at batch > 1. A GGUF path goes in; timings come out
(no store: the benchmarks write the records).
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import xllamacpp as xlc
from tqdm.auto import tqdm

from slimllm.measure.latency import LatencySpec, Timing, _prompt

#: Log-prob of a forced token: a bias this large makes it the sampled token whatever the logits.
FORCE_BIAS = 100.0


def server(
    path: str | os.PathLike[str],
    n_ctx: int = 256,
    n_parallel: int = 1,
    threads: int = 1,
    exact: bool = True,
) -> Any:
    """llama.cpp's server on the GGUF at `path`, quiet, in this process, with `n_parallel` slots
    sharing `n_ctx` cells (each slot its own `n_ctx // n_parallel`) and `threads` threads.

    exact: an f32 KV cache and flash attention off, so log-probs match transformers' to ~1e-5;
    otherwise llama.cpp's defaults (f16 KV cache, flash attention where it helps), as served.
    """
    params = xlc.CommonParams()
    params.model.path = str(path)
    params.n_ctx = n_ctx
    params.n_parallel = n_parallel
    params.kv_unified = False
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.warmup = False
    params.verbosity = -1
    if exact:
        params.cache_type_k = params.cache_type_v = xlc.ggml_type.GGML_TYPE_F32
        params.flash_attn_type = xlc.llama_flash_attn_type.LLAMA_FLASH_ATTN_TYPE_DISABLED
    return xlc.Server(params)


def tokenize(srv: Any, text: str) -> list[int]:
    """llama.cpp's own tokenization of `text` (no special tokens added), via /tokenize."""
    request = urllib.request.Request(
        f"{srv.listening_address}/tokenize",
        data=json.dumps({"content": text, "add_special": False}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.load(response)["tokens"]


def forced_token(
    srv: Any, prompt: list[int], forced: int, n_probs: int, cache_prompt: bool = True
) -> dict[str, Any] | None:
    """Generate one token after `prompt`, forcing `forced` with a logit bias, and return its
    log-prob entry: `id`, `logprob` and the `top_logprobs` of the `n_probs` likeliest, all read
    from the raw logits (the bias acts after them). None when the server held the token back as
    an incomplete UTF-8 sequence (it then reports no log-probs): force a plain token instead."""
    result = srv.handle_completions(
        {
            "prompt": prompt,
            "n_predict": 1,
            "n_probs": n_probs,
            "temperature": 0,
            "post_sampling_probs": False,
            "cache_prompt": cache_prompt,
            "logit_bias": [[forced, FORCE_BIAS]],
        }
    )
    logprobs = result["choices"][0]["logprobs"]
    return None if logprobs is None else logprobs["content"][0]


@dataclass(frozen=True)
class ServingSpec:
    """Table 3's protocol in llama.cpp; the lengths mirror `slimllm.measure.latency.LatencySpec`.

    Prefill: a `prefill_len`-token prompt and one generated token (time to first token).
    Decoding: `batch` concurrent requests (one slot each) of a `decode_prompt_len`-token prompt
    and exactly `new_tokens` greedy tokens, for each batch in `batches`.
    """

    prefill_len: int = 256
    decode_prompt_len: int = 32
    new_tokens: int = 256
    batches: tuple[int, ...] = (1, 8)
    repeats: int = 5
    warmup: int = 1
    threads: int = 1
    seed: int = 0

    def latency_spec(self, batch: int) -> LatencySpec:
        """The same protocol for transformers (`measure_latency`), decoding at `batch`."""
        return LatencySpec(
            prefill_len=self.prefill_len,
            decode_batch=batch,
            new_tokens=self.new_tokens,
            decode_prompt_len=self.decode_prompt_len,
            repeats=self.repeats,
            warmup=self.warmup,
            seed=self.seed,
        )

    def validate(self) -> None:
        if not self.batches:
            raise ValueError("batches must name at least one batch size")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        for batch in self.batches:
            self.latency_spec(batch).validate()

    def slot_context(self) -> int:
        """KV cells one slot needs: the longer of the prefill and the decoding request."""
        return max(self.prefill_len + 1, self.decode_prompt_len + self.new_tokens)


@dataclass
class Sample:
    """One timed request (or batch of concurrent requests)."""

    wall: float  # seconds from sending to the last response
    cpu: float  # this process's CPU seconds meanwhile (all threads; the other servers idle)
    server_ms: float  # llama.cpp's own time for the phase (prompt or generation), slowest request
    tokens: int  # tokens the phase processed, all requests


def _complete(srv: Any, prompt: list[int], n_predict: int) -> dict[str, Any]:
    result = srv.handle_completions(
        {
            "prompt": prompt,
            "n_predict": n_predict,
            "ignore_eos": True,
            "temperature": 0,
            "cache_prompt": False,
        }
    )
    if "timings" not in result:
        raise RuntimeError(f"llama.cpp returned no timings: {str(result)[:300]}")
    return result["timings"]


def _timed_batch(srv: Any, prompts: list[list[int]], n_predict: int, phase: str) -> Sample:
    """Send `prompts` at once (one thread each) and time until the last one is answered."""
    timings: list[dict[str, Any] | None] = [None] * len(prompts)
    errors: list[BaseException] = []

    def send(i: int) -> None:
        try:
            timings[i] = _complete(srv, prompts[i], n_predict)
        except BaseException as error:  # re-raised in the caller's thread
            errors.append(error)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(prompts))]
    cpu, start = time.process_time(), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    if errors:
        raise errors[0]
    done = [t for t in timings if t is not None]
    key = "prompt" if phase == "prefill" else "predicted"
    tokens = sum(t[f"{key}_n"] for t in done)
    expected = len(prompts) * (len(prompts[0]) if phase == "prefill" else n_predict)
    if tokens != expected:
        raise RuntimeError(f"{phase}: llama.cpp processed {tokens} tokens, expected {expected}")
    return Sample(wall, cpu, max(t[f"{key}_ms"] for t in done), tokens)


def summary(samples: list[Sample]) -> dict[str, Any]:
    """Wall-time statistics (as `slimllm.measure.latency.Timing`), the median CPU and server
    times, the tokens processed, and every sample."""
    return {
        **asdict(Timing.of([s.wall for s in samples])),
        "cpu_median": statistics.median(s.cpu for s in samples),
        "server_ms_median": statistics.median(s.server_ms for s in samples),
        "tokens": samples[0].tokens,
        "samples": [asdict(s) for s in samples],
    }


def measure_serving(
    paths: Mapping[str, str | os.PathLike[str]],
    vocab: int,
    spec: ServingSpec | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Time prefill and decoding of every GGUF in `paths` ({label: path}) in llama.cpp.

    All servers stay loaded; after `warmup` rounds, each repeat runs every phase of every model
    in a rotating order, so that a neighbour's load falls on all of them alike. `vocab` bounds
    the random prompt tokens. Returns `{"spec", "server", "models": {label: {phase: summary}}}`
    with phases "prefill" and "decode_b{batch}"; times in seconds, `server_ms` in ms.
    """
    spec = spec or ServingSpec()
    spec.validate()
    if not paths:
        raise ValueError("paths must name at least one GGUF file")
    slots = max(spec.batches)
    servers = {
        label: server(path, spec.slot_context() * slots, slots, spec.threads, exact=False)
        for label, path in paths.items()
    }
    # The prompts `measure_latency` feeds transformers: the same seeds, the same tokens.
    prefill = _prompt(vocab, 1, spec.prefill_len, spec.seed).tolist()
    decode = _prompt(vocab, slots, spec.decode_prompt_len, spec.seed + 1).tolist()
    phases: dict[str, Callable[[Any], Sample]] = {
        "prefill": lambda srv: _timed_batch(srv, prefill, 1, "prefill"),
        **{
            f"decode_b{b}": lambda srv, b=b: _timed_batch(
                srv, decode[:b], spec.new_tokens, "decode"
            )
            for b in spec.batches
        },
    }
    labels = list(servers)
    for label in labels:
        for _ in range(spec.warmup):
            for run in phases.values():
                run(servers[label])
    samples: dict[str, dict[str, list[Sample]]] = {m: {p: [] for p in phases} for m in labels}
    for r in tqdm(range(spec.repeats), desc="llama.cpp", disable=not progress):
        shift = r % len(labels)
        for label in labels[shift:] + labels[:shift]:
            for phase, run in phases.items():
                samples[label][phase].append(run(servers[label]))
    return {
        "spec": asdict(spec),
        "server": {
            "slots": slots,
            "n_ctx": spec.slot_context() * slots,
            "kv_unified": False,
            "kv_cache": "llama.cpp default (f16)",
            "flash_attention": "llama.cpp default (auto)",
            "xllamacpp": xlc.__version__,
        },
        "models": {
            label: {phase: summary(s) for phase, s in by_phase.items()}
            for label, by_phase in samples.items()
        },
    }
