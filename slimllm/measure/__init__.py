"""Measurement: a model in, numbers out. Perplexity under named protocols, zero-shot accuracy
through lm-eval, latency, FLOPs and the speed of evaluation itself. Nothing here rebuilds a
model from a recipe or writes a record (that is `slimllm.experiments`). Imports `util`, `data`
and `models`."""
