"""Export to other runtimes: `gguf.export_gguf` writes a pruned (or dense) LLaMA-family model as
a GGUF file of llama.cpp's `deci` architecture, whose per-layer head counts and MLP widths let
every pruned layer keep its own shape; `llamacpp` serves such a file in llama.cpp in this process
(the `xllamacpp` wheel) and times it; `page` renders the book's deploy page from its records.
Imports `util`, `data`, `models` and the layers before it in `slimllm.LAYERS`, never
`experiments`, `book` or `cli`.
"""
