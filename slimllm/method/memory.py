"""Device memory of the streaming prune, estimated from the model's shapes.

`method.streaming_prune` with a GPU holds one decoder layer on it at a time. The hidden states
between layers stay in CPU memory (the skeleton's embeddings are there, so `LayerWalker`
captures them there and `run_layer` moves one batch at a time to the device and each output
back), but a pruned layer keeps on the device what its sub-layers' hooks stored for every
calibration window (o_proj's and down_proj's inputs and outputs), its float64 statistics and
the float64 products of the channel scores. `streaming_phases` counts, for the moments of one
layer's pruning where most is alive at once, the bytes of every tensor alive then; the largest
moment is the layer's peak. Every layer of a LLaMA model has one shape, so that is the run's.
tests/method/test_memory.py compares it with the tensor bytes measured alive while a small
LLaMA is pruned on the CPU.
"""

from __future__ import annotations

import torch
from transformers import PretrainedConfig

from slimllm.method.config import PruneConfig

#: Assumed, not measured: what a CUDA context (driver state, cuBLAS and cuSOLVER handles,
#: loaded kernels) takes on the device before any tensor, about 0.5 GiB on recent GPUs.
CUDA_CONTEXT_BYTES = 512 * 2**20

_F64 = 8
_F32 = 4


def streaming_phases(
    config: PretrainedConfig,
    prune: PruneConfig,
    weight_dtype: torch.dtype,
    calib_dtype: torch.dtype | None,
) -> dict[str, dict[str, int]]:
    """Bytes alive on the device at five moments of one layer's pruning, term by term.

    - "attention_forward": the attention pass's last batch (it stops at o_proj), with o_proj's
      inputs and outputs of every window stored;
    - "attention_statistics": `InputMomentsAccumulator.finalize`, whose per-head loop holds the
      Gram matrix, the covariance, o_proj's weight in float64 and two [D, H*d] float64 products,
      besides the per-dimension head covariances [H, H, D];
    - "attention_fit": the regression of the pruned o_proj (Eq. 9-10): its kept inputs, its
      outputs before and after the fit and o_proj's weight in float64 twice;
    - "mlp_forward": the MLP pass's last batch, with the attention's (replayed) outputs and
      down_proj's inputs and outputs stored, the output covariance being summed and one batch's
      down_proj input in float64 twice (its squared norms);
    - "mlp_statistics": the regression of the pruned down_proj, with the float64 Gram matrix,
      eigenvectors and W_down^T Q (Eq. 5) and the fold's two float64 copies of down_proj. The
      eigendecomposition before it holds about six [D, D] float64 matrices with LAPACK's
      workspace, less than this whenever I >= D (every LLaMA), so it is not a moment here.

    `prune` runs without gradients, so the kept columns sliced for a pruned projection and the
    float64 products of the channel scores go as soon as their results are made.

    Upper bounds where the pruning decides: the layer's weights are counted unpruned and every
    kept-width term at the full width, as in a layer that loses one head and one channel. The
    copy the forwards run on exists when `calib_dtype` is not `weight_dtype`. The SDPA scores
    are counted as the math backend holds them (2 B H T^2 elements; fused kernels hold none).
    """
    d = config.hidden_size
    inter = config.intermediate_size
    heads = config.num_attention_heads
    kv = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or d // heads
    width = heads * head_dim
    w = weight_dtype.itemsize
    c = (calib_dtype or weight_dtype).itemsize
    tokens = prune.calib_samples * prune.calib_seq_len
    windows = min(prune.batch_size, prune.calib_samples)
    batch = windows * prune.calib_seq_len
    params = 2 * d * width + 2 * d * kv * head_dim + 3 * d * inter + 2 * d
    layer = {
        "layer_weights": params * w,
        "work_copy": params * c if calib_dtype not in (None, weight_dtype) else 0,
    }
    o_proj = {"o_proj_inputs": tokens * width * c, "o_proj_outputs": tokens * d * c}
    mlp = {
        "attention_outputs": tokens * d * c,
        "down_proj_inputs": tokens * inter * c,
        "down_proj_outputs": tokens * d * c,
    }
    # One batch's input, norm, q/k/v, rotated q/k and attention output, and the scores.
    attention_batch = batch * (2 * d + 3 * width + 3 * kv * head_dim) * c
    scores = 2 * windows * heads * prune.calib_seq_len**2 * c
    return {
        "attention_forward": {**layer, **o_proj, "batch_forward": attention_batch + scores},
        "attention_statistics": {
            **layer,
            **o_proj,
            "o_proj_inputs_joined": tokens * width * c,
            "head_statistics": (2 * width * width + 3 * d * width + heads * heads * d) * _F64,
        },
        "attention_fit": {
            **layer,
            **o_proj,
            "o_proj_inputs_joined": tokens * width * c,
            "head_statistics": (width * width + heads * heads * d) * _F64,
            "fit_outputs": 2 * tokens * d * c,
            "regression_fold": 2 * d * width * _F64,
        },
        "mlp_forward": {
            **layer,
            **mlp,
            # The float64 sum, one batch's float32 product and its float64 copy.
            "output_covariance": d * d * (2 * _F64 + _F32),
            "batch_forward": 2 * batch * inter * _F64,
        },
        "mlp_statistics": {
            **layer,
            **mlp,
            "fit_outputs": tokens * d * c,
            "mlp_statistics": (2 * d * d + d * inter) * _F64,
            "regression_fold": 2 * d * inter * _F64,
        },
    }


def streaming_peak_bytes(
    config: PretrainedConfig,
    prune: PruneConfig,
    weight_dtype: torch.dtype,
    calib_dtype: torch.dtype | None,
) -> dict[str, int]:
    """The device peak of `streaming_prune.prune_checkpoint` on `device="cuda"` while one layer
    of the model of `config` is pruned, in bytes: the terms of the largest moment of
    `streaming_phases`, `cuda_context` and their `total`.

    An estimate from shapes, of the tensors alive at once; it leaves out the caching
    allocator's rounding and fragmentation, the per-batch copies of the rotary tables and mask,
    and vectors (norms, means, importances) of a few [D] or [I] floats. `cuda_context` is an
    assumption (CUDA_CONTEXT_BYTES), not a measurement.
    """
    phases = streaming_phases(config, prune, weight_dtype, calib_dtype)
    terms = max(phases.values(), key=lambda t: sum(t.values()))
    return {
        **terms,
        "cuda_context": CUDA_CONTEXT_BYTES,
        "total": sum(terms.values()) + CUDA_CONTEXT_BYTES,
    }
