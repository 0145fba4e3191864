"""The prune_cost runner on a tiny model: it prunes, and it times tokenisation apart."""

import pytest

from slimllm.experiments.prune_cost import prune_cost_config, run_prune_cost
from slimllm.experiments.recipes import pruned
from slimllm.peers.registry import method_config
from tests.helpers import write_novels


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    text = "the tide came in over the sand and went out again " * 80
    return str(write_novels(tmp_path_factory.mktemp("data"), text))


@pytest.mark.parametrize("method", ["slimllm", "flap", "random"])
def test_prune_cost_record(method: str, data_dir: str) -> None:
    config = method_config(
        method, ratio=0.3, ratio_of="decoder", calib_samples=4, calib_seq_len=32, batch_size=4
    )
    recipe = pruned(config, base="tiny-gqa", method=method)
    result = run_prune_cost(prune_cost_config(recipe), {"threads": 1, "data_dir": data_dir})
    assert result["method"] == method
    assert result["seconds"] > 0 and result["calibration_tokenize_seconds"] >= 0
    assert abs(result["achieved"] - 0.3) < 0.1
    assert result["params_after"] < result["params_before"]
    assert result["peak_rss_mib"] >= result["rss_after_load_mib"] >= result["rss_before_load_mib"]
