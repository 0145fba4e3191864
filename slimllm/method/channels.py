"""FFN channel importance in the feature space of the MLP output (paper Sections 3 and 4.2).

A channel j of a gated MLP is the triple (row j of gate_proj, row j of up_proj, column j of
down_proj). Its down_proj column is scored after projection onto the principal directions of
the MLP output, each direction weighted by a smoothed eigenvalue; activation-weighted norms of
its gate and up rows are added (LoRAP style). All statistics are computed in float64, but for
the output scatter matrix of float32 (or narrower) activations, which is summed in float64 over
chunks of float32 products (see `streaming.gram_dtype`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from slimllm.method.streaming import ShiftedGram, check_float


def output_covariance(y: Tensor) -> Tensor:
    """Eq. 1: centred scatter matrix (Y - mu)^T (Y - mu) of an output [N, D], float64 [D, D].

    As in the paper it is not divided by N: the scale changes neither the eigenvectors nor the
    weights of :func:`eigen_weights`.
    """
    check_float("y", y, 2)
    if y.shape[0] < 1:
        raise ValueError("y must hold at least one token (row)")
    centred = y.to(torch.float64) - y.to(torch.float64).mean(dim=0)
    return centred.T @ centred


class CovarianceAccumulator(ShiftedGram):
    """Streams the scatter matrix of :func:`output_covariance` over token chunks [n, D]; each
    chunk's products in `streaming.gram_dtype`, their sum in float64."""

    name = "y"

    def finalize(self) -> Tensor:
        """Return the centred scatter matrix [D, D] (float64)."""
        if self._moments is None:
            raise ValueError("no tokens accumulated: call update() first")
        _, total, outer = self._moments
        return outer - torch.outer(total, total) / self._count


class FeatureNormAccumulator:
    """Streams per-feature L2 norms over tokens, ||X_{:, j}||_2, from chunks [n, F]."""

    def __init__(self) -> None:
        self._sum_sq: Tensor | None = None

    def update(self, x: Tensor) -> None:
        """Add a chunk of activations [n, F]."""
        check_float("x", x, 2, finite=False)
        sq = x.detach().to(torch.float64).pow(2).sum(dim=0)
        if not torch.isfinite(sq).all():
            raise ValueError("x must be finite")
        if self._sum_sq is None:
            self._sum_sq = sq
        elif sq.shape != self._sum_sq.shape:
            raise ValueError(f"x must have {self._sum_sq.shape[0]} columns like earlier chunks")
        else:
            self._sum_sq += sq

    def finalize(self) -> Tensor:
        """Return the norms [F] (float64)."""
        if self._sum_sq is None:
            raise ValueError("no tokens accumulated: call update() first")
        return self._sum_sq.sqrt()


def feature_space_basis(cov: Tensor) -> tuple[Tensor, Tensor]:
    """Eq. 2: eigenvalues M [D] (descending) and eigenvectors Q [D, D] (columns) of ``cov``.

    A covariance is symmetric positive semi-definite, so the symmetric solver (``eigh``) is exact
    here: it returns real eigenvalues and an orthonormal Q, where a general solver (used by the
    authors) may return complex values and non-orthogonal vectors for repeated eigenvalues.
    Negative eigenvalues are rounding noise and are clipped to 0.
    """
    check_float("cov", cov, 2)
    if cov.shape[0] != cov.shape[1]:
        raise ValueError(f"cov must be square, got shape {tuple(cov.shape)}")
    c64 = cov.to(torch.float64)
    evals, evecs = torch.linalg.eigh((c64 + c64.T) / 2)
    return evals.flip(0).clamp_min(0.0), evecs.flip(1)


def eigen_weights(eigenvalues: Tensor) -> Tensor:
    """Eq. 6: C_i = sigmoid(M_i / mean(M)), float64 [D].

    If mean(M) <= 0 (a constant output has no principal direction) every weight is
    sigmoid(0) = 0.5, i.e. all directions count equally.
    """
    check_float("eigenvalues", eigenvalues, 1)
    if eigenvalues.numel() == 0:
        raise ValueError("eigenvalues must not be empty")
    m = eigenvalues.to(torch.float64)
    mean = m.mean()
    if mean <= 0:
        return torch.full_like(m, 0.5)
    return torch.sigmoid(m / mean)


def project_down_proj(w_down: Tensor, q: Tensor) -> Tensor:
    """Eq. 5: W' = W_down^T Q, float64 [F, D] (row j is channel j in the eigenbasis).

    ``w_down`` is the down_proj weight [D, F] (nn.Linear layout), ``q`` the eigenvectors [D, D].
    """
    check_float("w_down", w_down, 2)
    check_float("q", q, 2)
    d = w_down.shape[0]
    if q.shape != (d, d):
        raise ValueError(f"q must be [{d}, {d}] to match w_down rows, got {tuple(q.shape)}")
    return w_down.to(torch.float64).T @ q.to(torch.float64)


def feature_space_importance(w_projected: Tensor, weights: Tensor) -> Tensor:
    """Eq. 7: I^d_j = || W'_{j,:} * C ||_2, float64 [F].

    ``w_projected`` is W' [F, D] from :func:`project_down_proj`, ``weights`` is C [D].
    """
    check_float("w_projected", w_projected, 2)
    check_float("weights", weights, 1)
    if weights.shape[0] != w_projected.shape[1]:
        raise ValueError(
            f"weights must have {w_projected.shape[1]} entries (columns of w_projected), "
            f"got {weights.shape[0]}"
        )
    return torch.linalg.vector_norm(
        w_projected.to(torch.float64) * weights.to(torch.float64), dim=1
    )


def down_proj_column_norms(w_down: Tensor) -> Tensor:
    """||W_down[:, j]||_2, float64 [F]: the magnitude term of the "no feature space" ablation.

    Passed to :func:`channel_group_importance` instead of I^d it gives a Wanda/LoRAP-style score.
    It equals :func:`feature_space_importance` with every weight C_i = 1, because Q is orthonormal.
    """
    check_float("w_down", w_down, 2)
    return torch.linalg.vector_norm(w_down.to(torch.float64), dim=0)


def channel_group_importance(
    feature_imp: Tensor,
    x_down_norm: Tensor,
    w_gate: Tensor,
    w_up: Tensor,
    x_in_norm: Tensor,
) -> Tensor:
    """Eq. 8: I_j = ||X_j|| I^d_j + || x_in_norm * W_gate[j] ||_2 + || x_in_norm * W_up[j] ||_2.

    ``feature_imp`` [F] is I^d (or :func:`down_proj_column_norms` for the ablation),
    ``x_down_norm`` [F] the L2 norm over calibration tokens of each down_proj input,
    ``w_gate`` / ``w_up`` the [F, D] weights and ``x_in_norm`` [D] the per-feature L2 norm of
    the MLP input. Returns float64 [F].
    """
    check_float("feature_imp", feature_imp, 1)
    check_float("x_down_norm", x_down_norm, 1)
    check_float("w_gate", w_gate, 2)
    check_float("w_up", w_up, 2)
    check_float("x_in_norm", x_in_norm, 1)
    f = feature_imp.shape[0]
    if x_down_norm.shape[0] != f:
        raise ValueError(f"x_down_norm must have {f} entries like feature_imp")
    d = x_in_norm.shape[0]
    for name, w in (("w_gate", w_gate), ("w_up", w_up)):
        if w.shape != (f, d):
            raise ValueError(
                f"{name} must be [{f}, {d}] (channels x MLP input), got {tuple(w.shape)}"
            )
    scale = x_in_norm.to(torch.float64)
    gate = torch.linalg.vector_norm(w_gate.to(torch.float64) * scale, dim=1)
    up = torch.linalg.vector_norm(w_up.to(torch.float64) * scale, dim=1)
    return x_down_norm.to(torch.float64) * feature_imp.to(torch.float64) + gate + up


def select_channels(importance: Tensor, num_keep: int, keep_lowest_fraction: float = 0.0) -> Tensor:
    """Indices (sorted, long) of the ``num_keep`` channels to keep, highest importance first.

    Ties rank the lower index higher. The authors' LoRAP heuristic (``keep_lowest_fraction``,
    0.01 in their code, 0 here by default) also keeps the round(fraction * F) lowest-scoring
    channels; they take the places of the lowest-ranked of the otherwise kept channels, so the
    count stays ``num_keep``.
    """
    check_float("importance", importance, 1)
    f = importance.shape[0]
    if isinstance(num_keep, bool) or not isinstance(num_keep, int) or not 0 <= num_keep <= f:
        raise ValueError(f"num_keep must be an int in [0, {f}], got {num_keep!r}")
    if not 0.0 <= keep_lowest_fraction < 1.0:
        raise ValueError(f"keep_lowest_fraction must be in [0, 1), got {keep_lowest_fraction}")
    protected = min(round(keep_lowest_fraction * f), num_keep)
    order = torch.argsort(-importance.to(torch.float64), stable=True)
    kept = torch.cat([order[: num_keep - protected], order[f - protected :]])
    return torch.sort(kept).values


def weight_magnitude_importance(w_gate: Tensor, w_up: Tensor, w_down: Tensor) -> Tensor:
    """||W_gate[j]||_2 + ||W_up[j]||_2 + ||W_down[:, j]||_2, float64 [F]: weights only.

    The plain magnitude criterion (no activations, no feature space) that Eq. 8 is compared
    with in notebook 5; ``w_gate`` / ``w_up`` are [F, D] and ``w_down`` is [D, F].
    """
    check_float("w_gate", w_gate, 2)
    check_float("w_up", w_up, 2)
    check_float("w_down", w_down, 2)
    f, d = w_gate.shape
    if w_up.shape != (f, d) or w_down.shape != (d, f):
        raise ValueError(
            f"expected w_up [{f}, {d}] and w_down [{d}, {f}] to match w_gate [{f}, {d}], "
            f"got {tuple(w_up.shape)} and {tuple(w_down.shape)}"
        )
    return (
        torch.linalg.vector_norm(w_gate.to(torch.float64), dim=1)
        + torch.linalg.vector_norm(w_up.to(torch.float64), dim=1)
        + down_proj_column_norms(w_down)
    )
