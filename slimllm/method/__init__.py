"""SlimLLM itself: one module per part of the paper (heads and the greedy search, Eq. 4 and
Algorithm 1; channels in the feature space, Eq. 1-2 and 5-8; regression, Eq. 9-10; layer
ratios, Eq. 11), how a ratio becomes heads and channels (`plan`), the layer-by-layer
calibration walk, the configuration and report, the harness shared with the peers, and the
pruner that orchestrates them. Imports `util`, `data`, `models` and `measure`."""
