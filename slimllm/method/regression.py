"""Per-dimension linear recovery of a pruned sub-layer output (paper Section 4.3).

After pruning, each output dimension i of o_proj / down_proj is refitted as
full_i ~ A_i * pruned_i + B_i by least squares over calibration tokens, and the fit is folded
into the projection: its rows are scaled by A and B becomes its bias.
"""

from __future__ import annotations

import torch
from torch import Tensor

from slimllm.method.streaming import TokenStream, gram_dtype

# A pruned output whose variance is at or below this fraction of its mean square is constant up
# to rounding; a slope fitted to it would be noise.
_CONSTANT_RTOL = 1e-12


def _check_pair(
    pruned: Tensor,
    full: Tensor,
    names: tuple[str, str] = ("pruned", "full"),
    finite: bool = True,
) -> None:
    for name, t in zip(names, (pruned, full), strict=True):
        if not isinstance(t, Tensor) or t.ndim != 2 or not t.is_floating_point():
            raise ValueError(f"{name} must be a 2-D floating tensor [N, D]")
        if finite and not torch.isfinite(t).all():
            raise ValueError(f"{name} must be finite")
    if pruned.shape != full.shape:
        raise ValueError(
            f"{names[1]} must have the shape of {names[0]} {tuple(pruned.shape)}, "
            f"got {tuple(full.shape)}"
        )
    if pruned.shape[0] < 1:
        raise ValueError(f"{names[0]} must hold at least one token (row)")


def _line(mean_x: Tensor, mean_y: Tensor, var_x: Tensor, cov_xy: Tensor) -> tuple[Tensor, Tensor]:
    """Least-squares slope and intercept per dimension, with the constant-x rule."""
    varying = var_x > _CONSTANT_RTOL * (var_x + mean_x**2)
    a = torch.where(varying, cov_xy / torch.where(varying, var_x, 1.0), 1.0)
    return a, mean_y - a * mean_x


def relative_output_error(
    pruned: Tensor, full: Tensor, a: Tensor | None = None, b: Tensor | None = None
) -> float:
    """||full - (A * pruned + B)||_F^2 / ||full||_F^2 over tokens [N, D], in float64.

    Without ``a`` and ``b`` it is the error of the pruned output itself (A = 1, B = 0), i.e. the
    error before regression; with the fit of :func:`fit_output_regression`, the error after.
    A zero ``full`` gives 0 for an exact match and inf otherwise.
    """
    _check_pair(pruned, full)
    x = pruned.to(torch.float64)
    y = full.to(torch.float64)
    d = x.shape[1]
    a64 = torch.ones(d, dtype=torch.float64) if a is None else a.to(torch.float64).cpu()
    b64 = torch.zeros(d, dtype=torch.float64) if b is None else b.to(torch.float64).cpu()
    if a64.shape != (d,) or b64.shape != (d,):
        raise ValueError(f"a and b must have shape ({d},) like the outputs' columns")
    residual = float((y - (a64.to(y.device) * x + b64.to(y.device))).pow(2).sum())
    return _ratio(residual, float(y.pow(2).sum()))


def _ratio(residual: float, total: float) -> float:
    if total > 0:
        return residual / total
    return 0.0 if residual == 0 else float("inf")


def fit_output_regression(pruned: Tensor, full: Tensor) -> tuple[Tensor, Tensor]:
    """Eq. 9: per-dimension least squares full_i = A_i * pruned_i + B_i, float64 (A [D], B [D]).

    A = cov(x, y) / var(x), B = mean(y) - A mean(x). Where the pruned output is constant
    (var(x) <= 1e-12 mean(x^2), e.g. every contributing channel removed) no slope is
    identifiable: A = 1 and B = mean(y) - mean(x), the best fit with the scale left alone.
    """
    _check_pair(pruned, full)
    x = pruned.to(torch.float64)
    y = full.to(torch.float64)
    mean_x = x.mean(dim=0)
    mean_y = y.mean(dim=0)
    xc = x - mean_x
    return _line(mean_x, mean_y, (xc * xc).mean(dim=0), (xc * (y - mean_y)).mean(dim=0))


class RegressionAccumulator(TokenStream):
    """Streams the moments of :func:`fit_output_regression` over token chunks."""

    def __init__(self) -> None:
        super().__init__()
        self._shift: tuple[Tensor, Tensor] | None = None
        # Rows: sum x, sum y, sum x^2, sum x*y, sum y^2, each [D] and taken about the shifts.
        self._sums: Tensor | None = None

    def update(self, pruned_chunk: Tensor, full_chunk: Tensor) -> None:
        """Add matching chunks [n, D] of the pruned and the full output."""
        # The full scan for NaN and inf is replaced by a check of the chunk's sums below.
        _check_pair(pruned_chunk, full_chunk, ("pruned_chunk", "full_chunk"), finite=False)
        # The chunk's products in float32 (float64 for float64 chunks), their sums in float64:
        # the Gram matrices' rule (streaming.gram_dtype), for the same reason.
        dtype = gram_dtype(pruned_chunk)
        x = pruned_chunk.detach().to(dtype)
        y = full_chunk.detach().to(dtype)
        if self._shift is None or self._sums is None:
            # Moments about the first chunk's means avoid cancellation on large offsets; the
            # shift is kept as subtracted (in the chunk's dtype), so the moments add back exactly.
            sx, sy = (t.mean(dim=0, dtype=torch.float64).to(dtype).double() for t in (x, y))
            self._shift = (sx, sy)
            self._sums = x.new_zeros((5, x.shape[1]), dtype=torch.float64)
        if x.shape[1] != self._sums.shape[1]:
            raise ValueError(f"pruned_chunk must have {self._sums.shape[1]} columns like before")
        xs = x - self._shift[0].to(dtype)
        ys = y - self._shift[1].to(dtype)
        sums = torch.stack(
            [t.sum(dim=0, dtype=torch.float64) for t in (xs, ys, xs * xs, xs * ys, ys * ys)]
        )
        for name, row in (("pruned_chunk", sums[0]), ("full_chunk", sums[1])):
            if not torch.isfinite(row).all():
                raise ValueError(f"{name} must be finite")
        self._sums += sums
        self._count += x.shape[0]

    def solve(self) -> tuple[Tensor, Tensor]:
        """Return (A, B) as :func:`fit_output_regression` would on all chunks at once."""
        if self._shift is None or self._sums is None:
            raise ValueError("no tokens accumulated: call update() first")
        off_x, off_y, sq_x, cross, _ = self._sums / self._count
        var_x = (sq_x - off_x**2).clamp_min(0.0)
        cov_xy = cross - off_x * off_y
        return _line(self._shift[0] + off_x, self._shift[1] + off_y, var_x, cov_xy)

    def relative_error(self, a: Tensor | None = None, b: Tensor | None = None) -> float:
        """:func:`relative_output_error` of all chunks so far, from the streamed moments.

        Without ``a`` and ``b``: the error before regression; with :meth:`solve`'s: after.
        """
        if self._shift is None or self._sums is None:
            raise ValueError("no tokens accumulated: call update() first")
        d = self._sums.shape[1]
        a64 = self._sums.new_ones(d) if a is None else a.to(self._sums)
        b64 = self._sums.new_zeros(d) if b is None else b.to(self._sums)
        if a64.shape != (d,) or b64.shape != (d,):
            raise ValueError(f"a and b must have shape ({d},) like the outputs' columns")
        m_x, m_y, sq_x, cross, sq_y = self._sums / self._count
        # With x = xs + sx and y = ys + sy, the residual is ys - a xs + c, c = sy - a sx - b.
        c = self._shift[1] - a64 * self._shift[0] - b64
        residual = sq_y - 2 * a64 * cross + a64**2 * sq_x + 2 * c * (m_y - a64 * m_x) + c**2
        full_sq = sq_y + 2 * self._shift[1] * m_y + self._shift[1] ** 2
        return _ratio(float(residual.clamp_min(0.0).sum()), float(full_sq.sum()))


def fold_regression(
    weight: Tensor, bias: Tensor | None, a: Tensor, b: Tensor
) -> tuple[Tensor, Tensor]:
    """Eq. 10: fold the fit into a projection, y' = A * (x W^T + bias) + B.

    ``weight`` is [D, K] (nn.Linear layout), ``bias`` [D] or None. Returns the new weight
    (rows scaled by A) and bias A * bias + B (B when there was none), in ``weight``'s dtype.
    """
    if not isinstance(weight, Tensor) or weight.ndim != 2 or not weight.is_floating_point():
        raise ValueError("weight must be a 2-D floating tensor [D, K]")
    d = weight.shape[0]
    for name, t in (("a", a), ("b", b), ("bias", bias)):
        if name == "bias" and t is None:
            continue
        if not isinstance(t, Tensor) or t.shape != (d,) or not t.is_floating_point():
            raise ValueError(f"{name} must be a floating tensor of shape ({d},) like weight rows")
    a64 = a.to(device=weight.device, dtype=torch.float64)
    new_weight = (weight.to(torch.float64) * a64[:, None]).to(weight.dtype)
    new_bias = b.to(device=weight.device, dtype=torch.float64)
    if bias is not None:
        new_bias = new_bias + a64 * bias.to(device=weight.device, dtype=torch.float64)
    return new_weight, new_bias.to(weight.dtype)
