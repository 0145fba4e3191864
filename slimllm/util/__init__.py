"""Layer 0: what every result records (software versions, the CPU, a model fingerprint) and
atomic, strict JSON files. Imports nothing from slimllm."""
