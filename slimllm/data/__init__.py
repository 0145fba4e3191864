"""Data: the data folder and the hub, perplexity texts, calibration windows, the commonsense
task rows and the alpaca-cleaned records. Imports only `slimllm.util`."""
