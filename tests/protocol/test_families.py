"""One code path for every model: the protocol runs on tiny LLaVA-NeXT and Idefics3 models
(random weights, the world's tokenizer) exactly as on the tiny LLaVA."""

from __future__ import annotations

import pytest
from tests.fixtures.families import idefics3, llava_next
from transformers import AutoTokenizer

from pulse.models.adapters import save_merged
from pulse.protocol.config import parse_config
from pulse.protocol.results import RESULTS_FILE, read_results
from pulse.protocol.runner import run_protocol

BUILDERS = {"llava_next": llava_next, "idefics3": idefics3}


@pytest.mark.parametrize("family", sorted(BUILDERS))
def test_protocol_on_another_family(family, small_world, tiny_models, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_models / "base")
    built = BUILDERS[family](tokenizer)
    model_dir = tmp_path / family
    save_merged(built.model, model_dir, built.processor)
    config = {
        "models": {"base": str(model_dir), "finetuned": str(model_dir)},
        "data": {
            "mllmu": str(small_world / "mllmu"),
            "mmbench": str(small_world / "mmbench" / "dev.tsv"),
        },
        "train": {"max_steps": 1, "batch_size": 2},
        "eval": {"general_questions": 3},
        "methods": [{"method": "ga_kl"}],
        "scenarios": {
            "finetuned": {"people": 4},
            "pretrained": {"enabled": False},
            "sequential": {"requests": 2, "batch": False},
            "scope": {"scopes": ["vision+projector+llm"]},
        },
    }
    store = run_protocol(parse_config(config), tmp_path / "run", progress=False)
    rows = read_results(store.root / RESULTS_FILE)
    assert store.manifest["finished"]
    assert all(r.status == "ok" for r in rows)
    cells = {(r.scenario, r.method, r.setting, r.request) for r in rows}
    assert ("sequential", "ga_kl", "sequential", 2) in cells
    assert ("scope", "ga", "vision+projector+llm", 1) in cells
    modalities = {r.modality for r in rows if r.split == "forget" and r.metric == "accuracy"}
    assert modalities == {"multimodal", "text", "all"}
