"""Per-layer measurements for notebooks 5-7 (slimllm.analysis.probes) on the tiny random models."""

from __future__ import annotations

import json

import pytest
import torch

from slimllm.analysis import probes
from slimllm.experiments import studies
from slimllm.experiments.recipes import pruned, recipe_cache_dir
from slimllm.experiments.store import Store, config_key
from slimllm.method.calibration import LayerWalker
from slimllm.method.config import PruneConfig
from slimllm.method.pruner import layer_similarities
from slimllm.models.adapters import get_adapter
from slimllm.models.loaders import tiny_model

IDS = torch.randint(0, 256, (4, 20), generator=torch.Generator().manual_seed(5))


def first_layer_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Layer 0's MLP input, down_proj input and MLP output, from one ordinary forward pass."""
    mlp = model.model.layers[0].mlp
    seen: dict[str, torch.Tensor] = {}
    handles = [
        mlp.gate_proj.register_forward_hook(lambda _m, i, _o: seen.__setitem__("x_in", i[0])),
        mlp.down_proj.register_forward_hook(lambda _m, i, o: seen.update(x_down=i[0], y=o)),
    ]
    with torch.no_grad():
        model(input_ids=IDS)
    for h in handles:
        h.remove()
    return {k: v.reshape(-1, v.size(-1)).double() for k, v in seen.items()}


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-gqa"])
def test_mlp_statistics_and_scores_match_a_direct_computation(name: str) -> None:
    model = tiny_model(name)
    step = next(iter(LayerWalker(model, IDS, batch_size=3, progress=False)))
    stats = probes.mlp_statistics(step, get_adapter(model))
    seen = first_layer_tensors(model)
    d, f = seen["y"].shape[1], seen["x_down"].shape[1]
    assert stats.eigenvalues.shape == (d,) and stats.basis.shape == (d, d)
    assert stats.in_norm.shape == (d,) and stats.down_norm.shape == (f,)
    # Slow reference: the scatter matrix's eigenvalues and the norms, straight from the tensors.
    centred = seen["y"] - seen["y"].mean(dim=0)
    expected_eigs = torch.linalg.eigvalsh(centred.T @ centred).flip(0).clamp_min(0)
    # Products of float32 activations are formed in float32 (summed in float64): eigenvalues
    # agree to float32 rounding relative to the largest one.
    top = float(expected_eigs[0])
    torch.testing.assert_close(stats.eigenvalues, expected_eigs, atol=1e-5 * top, rtol=1e-5)
    torch.testing.assert_close(stats.down_norm, seen["x_down"].norm(dim=0), rtol=1e-6, atol=0)
    torch.testing.assert_close(stats.in_norm, seen["x_in"].norm(dim=0), rtol=1e-6, atol=0)

    scores = probes.channel_scores(step.layer, stats, get_adapter(model))
    assert list(scores) == list(probes.CRITERIA)
    assert all(s.shape == (f,) and s.dtype == torch.float64 for s in scores.values())
    mlp = step.layer.mlp
    w_down = mlp.down_proj.weight.detach().double()
    c = torch.sigmoid(stats.eigenvalues / stats.eigenvalues.mean())
    for j in (0, f // 2, f - 1):
        feature = float(((w_down[:, j] @ stats.basis) * c).norm())
        gate = float((mlp.gate_proj.weight.detach().double()[j] * stats.in_norm).norm())
        up = float((mlp.up_proj.weight.detach().double()[j] * stats.in_norm).norm())
        expected = float(stats.down_norm[j]) * feature + gate + up
        assert float(scores["feature_space"][j]) == pytest.approx(expected, rel=1e-9)
        plain = float(stats.down_norm[j]) * float(w_down[:, j].norm()) + gate + up
        assert float(scores["no_feature_space"][j]) == pytest.approx(plain, rel=1e-9)
    torch.testing.assert_close(scores["activation"], stats.down_norm)


def test_compare_rankings_values_and_errors() -> None:
    scores = {
        "feature_space": torch.arange(10.0),
        "same": torch.arange(10.0) * 2,
        "reversed": -torch.arange(10.0),
    }
    out = probes.compare_rankings(scores, (0.5, 0.2))
    assert set(out) == {"same", "reversed"}
    assert out["same"] == {"spearman": pytest.approx(1.0), "overlap@0.5": 1.0, "overlap@0.2": 1.0}
    assert out["reversed"]["spearman"] == pytest.approx(-1.0)
    assert out["reversed"]["overlap@0.5"] == 0.0
    with pytest.raises(ValueError, match="reference"):
        probes.compare_rankings(scores, (0.5,), reference="nope")
    with pytest.raises(ValueError, match="keep fractions"):
        probes.compare_rankings(scores, (1.5,))


def test_channel_study_covers_every_layer_and_is_json() -> None:
    model = tiny_model("tiny-gqa")
    study = probes.channel_study(model, IDS, (0.8, 0.5), spectrum_layers=(1,), batch_size=2)
    layers = study["layers"]
    assert [entry["index"] for entry in layers] == [0, 1, 2]
    d = model.config.hidden_size
    for entry in layers:
        shares = list(entry["explained_at"].values())
        assert shares == sorted(shares) and 0 < shares[0] <= shares[-1] <= 1 + 1e-12
        assert 1 <= entry["directions_90"] <= d
        assert set(entry["rankings"]) == set(probes.CRITERIA) - {"feature_space"}
        for row in entry["rankings"].values():
            assert -1 <= row["spearman"] <= 1 and 0 <= row["overlap@0.5"] <= 1
    assert "spectrum_over_mean" in layers[1] and "spectrum_over_mean" not in layers[0]
    assert len(layers[1]["spectrum_over_mean"]) == d
    assert sum(layers[1]["spectrum_over_mean"]) == pytest.approx(d)
    json.dumps(study)


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-gqa"])
def test_similarity_samples_average_to_the_pruner_scores(name: str) -> None:
    model = tiny_model(name)
    per_sample = probes.layer_similarity_samples(model, IDS, batch_size=3)
    assert per_sample.shape == (3, 4) and per_sample.dtype == torch.float64
    sims = layer_similarities(model, IDS, batch_size=3, device=torch.device("cpu"))
    torch.testing.assert_close(per_sample.mean(dim=1), sims, rtol=1e-9, atol=1e-12)
    # Slow reference for sample 2 of layer 1: mean cosine of its token rows.
    with torch.no_grad():
        hidden = model(input_ids=IDS, output_hidden_states=True).hidden_states
    x, y = hidden[1][2].double(), hidden[2][2].double()
    cosines = [float(torch.dot(x[t], y[t]) / (x[t].norm() * y[t].norm())) for t in range(20)]
    assert float(per_sample[1, 2]) == pytest.approx(sum(cosines) / 20, rel=1e-5)


def test_prune_record_is_stored_once_and_refreshed_for_new_fields(
    tmp_path, monkeypatch, shared_data_dir
) -> None:
    monkeypatch.setenv("SLIMLLM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SLIMLLM_RESULTS_DIR", str(tmp_path / "results"))
    store = Store()
    config = PruneConfig(ratio=0.3, calib_samples=4, calib_seq_len=32, ratio_of="decoder")
    recipe = pruned(config, base="tiny-gqa")
    record = studies.prune_record(recipe, data_dir=str(shared_data_dir), store=store)
    assert record.config == {"model": recipe} and record.path is not None
    report = record.result
    assert abs(report["achieved"] - 0.3) <= 0.005 + 1e-9
    fitted = [row for row in report["layers"] if row["mlp_error_after"] is not None]
    assert fitted, "some layer's MLP was pruned and refitted"
    for row in fitted:
        assert row["mlp_error_after"] <= row["mlp_error_before"] + 1e-12
        assert len(row["mlp_a_quantiles"]) == 7
        assert row["mlp_a_quantiles"] == sorted(row["mlp_a_quantiles"])
    # The model is cached where recipes.build looks: building it does not prune again.
    assert (recipe_cache_dir() / config_key("recipe", recipe) / "config.json").is_file()
    again = studies.prune_record(recipe, store=store, fields=("mlp_error_after",))
    assert again.loaded and again.result == report
    # A record made before a field existed is measured again.
    stale = {**report, "layers": [{"index": r["index"]} for r in report["layers"]]}
    store.put("prune", {"model": recipe}, stale)
    fresh = studies.prune_record(
        recipe, data_dir=str(shared_data_dir), store=store, fields=("mlp_error_after",)
    )
    assert "mlp_error_after" in fresh.result["layers"][0]
    with pytest.raises(ValueError, match="pruned with slimllm"):
        studies.prune_record({"base": "tiny-gqa"}, store=store)


def test_study_runners_return_json(shared_data_dir) -> None:
    config = {
        "model": "tiny-llama",
        "dtype": "float32",
        "calib_samples": 3,
        "calib_seq_len": 16,
        "seed": 1,
    }
    settings = {"data_dir": str(shared_data_dir), "batch_size": 2}
    sims = studies.run_nb_similarity(config, settings)
    assert len(sims["mean"]) == 3 and len(sims["per_sample"][0]) == 3
    study = studies.run_nb_channels(
        {**config, "keep_fractions": [0.5], "spectrum_layers": [0]}, settings
    )
    assert len(study["layers"]) == 3 and study["keep_fractions"] == [0.5]
    json.dumps([sims, study])


def test_variant_recipe_spells_out_the_config() -> None:
    recipe = studies.variant_recipe("tiny-gqa", 0.5, calib_samples=4, regression=False)
    assert recipe == pruned(
        PruneConfig(ratio=0.5, calib_samples=4, regression=False), base="tiny-gqa"
    )
    with pytest.raises(ValueError, match="ratio must be in"):
        studies.variant_recipe("tiny-gqa", 1.5)
    with pytest.raises(TypeError):
        studies.variant_recipe("tiny-gqa", 0.5, no_such_option=True)


def test_layer_channel_scores_equal_the_walk_at_that_layer() -> None:
    model = tiny_model("tiny-gqa")
    adapter = get_adapter(model)
    steps = iter(LayerWalker(model, IDS, batch_size=2, progress=False))
    next(steps)
    step = next(steps)
    expected = probes.channel_scores(step.layer, probes.mlp_statistics(step, adapter), adapter)
    got = probes.layer_channel_scores(model, IDS, 1, batch_size=2)
    for name in probes.CRITERIA:
        torch.testing.assert_close(got[name], expected[name])
    stats = probes.layer_mlp_statistics(model, IDS, 1, batch_size=2)
    torch.testing.assert_close(stats.eigenvalues, probes.mlp_statistics(step, adapter).eigenvalues)
    with pytest.raises(ValueError, match="layer_index must be in"):
        probes.layer_channel_scores(model, IDS, 3)


def test_calibration_ids_shape(shared_data_dir) -> None:
    from slimllm.models.loaders import byte_tokenizer

    ids = probes.calibration_ids(
        tiny_model("tiny-llama"), byte_tokenizer(), 3, 16, 0, shared_data_dir
    )
    assert ids.shape == (3, 16) and ids.dtype == torch.long
