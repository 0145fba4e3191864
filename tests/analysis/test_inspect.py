"""slimllm.analysis.inspect: dense-model statistics for the stage notebooks, each against a slow
formula."""

from __future__ import annotations

from itertools import combinations

import pytest
import torch

from slimllm.analysis import inspect
from slimllm.method import channels, heads
from slimllm.models.loaders import load_model


def toy_contributions(num_heads: int = 4, tokens: int = 64, dim: int = 5, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    base = torch.randn(tokens, dim, generator=gen, dtype=torch.float64)
    # Heads of different strength and correlation, so that subsets really differ.
    return torch.stack(
        [
            (h + 1) * 0.3 * base * torch.randn(dim, generator=gen, dtype=torch.float64)
            + torch.randn(tokens, dim, generator=gen, dtype=torch.float64) * (0.2 + 0.3 * h)
            for h in range(num_heads)
        ]
    )


@pytest.mark.parametrize("reduction", heads.REDUCTIONS)
def test_exhaustive_search_finds_the_best_subset_by_direct_pearson(reduction: str) -> None:
    contrib = toy_contributions()
    y = contrib.sum(0)
    stats = heads.head_statistics(contrib, reduction)
    found = inspect.exhaustive_head_search(stats, 2)
    direct = {
        subset: heads.pearson_similarity(y, y - contrib[list(subset)].sum(0), reduction)
        for subset in combinations(range(4), 2)
    }
    best = max(direct, key=direct.get)
    assert found.subsets == 6
    assert found.pruned == list(best) and found.kept == [h for h in range(4) if h not in best]
    assert found.score == pytest.approx(direct[best], rel=1e-9)
    # The swap search can never beat the exhaustive optimum.
    greedy = heads.greedy_head_search(stats, 2)
    assert greedy.score_final <= found.score + 1e-9


def test_exhaustive_search_with_groups_takes_equal_counts_per_group() -> None:
    contrib = toy_contributions(num_heads=6)
    stats = heads.head_statistics(contrib)
    groups = heads.kv_group_index(6, 2)
    found = inspect.exhaustive_head_search(stats, 2, groups=groups)
    assert found.subsets == 9  # 3 choices in each of the 2 groups
    assert sorted(int(groups[h]) for h in found.pruned) == [0, 1]
    greedy = heads.greedy_head_search(stats, 2, groups=groups)
    assert greedy.score_final <= found.score + 1e-9
    with pytest.raises(ValueError, match="divisible"):
        inspect.exhaustive_head_search(stats, 3, groups=groups)
    with pytest.raises(ValueError, match="max_subsets"):
        inspect.exhaustive_head_search(stats, 3, max_subsets=10)


@pytest.mark.parametrize("reduction", heads.REDUCTIONS)
def test_group_statistics_equal_statistics_of_summed_groups(reduction: str) -> None:
    contrib = toy_contributions(num_heads=6)
    groups = heads.kv_group_index(6, 3)
    direct = heads.head_statistics(heads.group_contributions(contrib, groups), reduction)
    derived = inspect.group_statistics(heads.head_statistics(contrib, reduction), groups)
    assert derived.cov.shape == direct.cov.shape
    torch.testing.assert_close(derived.cov, direct.cov)
    torch.testing.assert_close(derived.mean, direct.mean)


def test_head_scores_are_negative_single_removal_similarities() -> None:
    stats = [heads.head_statistics(toy_contributions(seed=s)) for s in range(3)]
    scores = inspect.head_scores(stats)
    assert scores.shape == (3, 4)
    contrib = toy_contributions(seed=1)
    y = contrib.sum(0)
    direct = [-heads.pearson_similarity(y, y - contrib[h]) for h in range(4)]
    torch.testing.assert_close(scores[1], torch.tensor(direct, dtype=torch.float64))


def test_explained_variance_and_directions() -> None:
    m = torch.tensor([6.0, 3.0, 1.0, 0.0])
    torch.testing.assert_close(
        inspect.explained_variance(m), torch.tensor([0.6, 0.9, 1.0, 1.0], dtype=torch.float64)
    )
    assert inspect.directions_for(m, 0.5) == 1
    assert inspect.directions_for(m, 0.9) == 2
    assert inspect.directions_for(m, 1.0) == 3
    with pytest.raises(ValueError, match="no variance"):
        inspect.explained_variance(torch.zeros(3))
    with pytest.raises(ValueError, match="fraction"):
        inspect.directions_for(m, 0.0)


def tiny_inputs(n: int = 3, t: int = 16) -> torch.Tensor:
    return torch.randint(0, 256, (n, t), generator=torch.Generator().manual_seed(0))


def test_mlp_output_covariances_match_captured_outputs() -> None:
    model, _ = load_model("tiny-gqa")
    ids = tiny_inputs()
    covs = inspect.mlp_output_covariances(model, ids, batch_size=2)
    assert len(covs) == 3 and covs[0].shape == (96, 96) and covs[0].dtype == torch.float64
    captured = []
    handle = model.model.layers[1].mlp.register_forward_hook(
        lambda _m, _i, out: captured.append(out.reshape(-1, out.shape[-1]))
    )
    with torch.no_grad():
        model(ids)
    handle.remove()
    expected = channels.output_covariance(torch.cat(captured))
    # The accumulator multiplies float32 activations in float32 (summing in float64), so entries
    # carry float32 rounding relative to the matrix's scale.
    scale = float(expected.abs().max())
    torch.testing.assert_close(covs[1], expected, rtol=1e-5, atol=1e-5 * scale)


def test_head_statistics_per_layer_match_direct_contributions() -> None:
    model, _ = load_model("tiny-gqa")
    ids = tiny_inputs()
    accs = inspect.head_statistics_per_layer(model, ids, batch_size=2)
    assert len(accs) == 3 and accs[2].count == ids.numel()
    o_proj = model.model.layers[2].self_attn.o_proj
    captured = []
    handle = o_proj.register_forward_pre_hook(lambda _m, inp: captured.append(inp[0]))
    with torch.no_grad():
        model(ids)
    handle.remove()
    x = torch.cat(captured).reshape(-1, o_proj.in_features)
    direct = heads.head_statistics(heads.head_contributions(x, o_proj.weight, 6))
    torch.testing.assert_close(accs[2].finalize("per_dim").cov, direct.cov)


def test_attention_plans_follow_the_ratios() -> None:
    model, _ = load_model("tiny-gqa")
    plans = inspect.attention_plans(model, [0.0, 0.5, 0.9])
    assert plans[0] is None
    assert all(p is not None and p.heads > 0 for p in plans[1:])
    with pytest.raises(ValueError, match="3 entries"):
        inspect.attention_plans(model, [0.5])


def test_gqa_options_search_both_ways_of_shrinking_a_layer() -> None:
    model, _ = load_model("tiny-gqa")
    accs = inspect.head_statistics_per_layer(model, tiny_inputs(), batch_size=2)
    per_dim = [acc.finalize("per_dim") for acc in accs]
    options = inspect.gqa_options(model, per_dim, [0.0, 0.5, 0.5])
    assert sorted((o.layer, o.mode) for o in options) == [
        (1, "groups"),
        (1, "heads"),
        (2, "groups"),
        (2, "heads"),
    ]
    kv = heads.kv_group_index(6, 2)
    for o in options:
        if o.mode == "groups":
            found = heads.greedy_head_search(
                inspect.group_statistics(per_dim[o.layer], kv), o.groups
            )
        else:
            found = heads.greedy_head_search(per_dim[o.layer], o.heads, groups=kv)
        assert o.similarity == found.score_final and o.gain >= 0
