"""The peers' score helpers against torch and direct formulas."""

from __future__ import annotations

import torch

from slimllm.peers import scores


def test_column_stats_match_torch() -> None:
    x = torch.randn(50, 7, generator=torch.Generator().manual_seed(0)) + 3
    acc = scores.ColumnStats()
    for chunk in x.split(13):
        acc.update(chunk)
    torch.testing.assert_close(acc.mean(), x.double().mean(0))
    torch.testing.assert_close(acc.variance(), x.double().var(0))
    torch.testing.assert_close(acc.norm(), x.double().norm(dim=0))


def test_standardise_and_flap_bias() -> None:
    s = torch.tensor([1.0, 2.0, 4.0])
    z = scores.standardise(s)
    assert abs(float(z.mean())) < 1e-12 and abs(float(z.std()) - 1) < 1e-12
    assert torch.equal(scores.standardise(torch.ones(4)), torch.zeros(4, dtype=torch.float64))
    w = torch.randn(5, 6, generator=torch.Generator().manual_seed(1))
    mean = torch.randn(6, generator=torch.Generator().manual_seed(2))
    gone = torch.tensor([1, 4])
    want = w[:, 1].double() * mean[1] + w[:, 4].double() * mean[4]
    torch.testing.assert_close(scores.flap_bias(w, mean, gone), want)
