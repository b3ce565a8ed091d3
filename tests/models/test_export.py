"""``pulse export``: a request, a run's request, an adapter or a model, as a checkpoint that plain
transformers loads with identical logits; bad input is one line and exit code 2."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForImageTextToText, AutoProcessor

from pulse.data.schema import TrainPair, encode_png
from pulse.errors import ConfigError
from pulse.methods.request import load_unlearned, run_request
from pulse.models.chat import ChatCollator, ChatExample
from pulse.models.export import export, resolve_source
from pulse.models.settings import UNLEARN_DEFAULTS
from pulse.models.template import template_problem
from tests.fixtures.tiny import shaded

PAIRS = [
    TrainPair("p1", "Who is this person?", "Alice Moreau", encode_png(shaded(10))),
    TrainPair("p1", "Where was Alice Moreau born?", "Lyon"),
    TrainPair("p2", "Where does Bruno Keller live?", "Basel", encode_png(shaded(200))),
]
BATCH = [
    ChatExample("Who is this person?", "Alice Moreau", shaded(10)),
    ChatExample("Where does Bruno Keller live?", "Basel"),
]


@pytest.fixture(scope="module")
def request_dir(tiny_dir, tmp_path_factory):
    """A finished request (two steps of ga at a high rate: the adapter moves the weights),
    inside a run directory's requests/ folder."""
    run = tmp_path_factory.mktemp("run")
    (run / "config.yaml").write_text("seed: 0\n")
    (run / "manifest.json").write_text("{}")
    train = UNLEARN_DEFAULTS.model_copy(update={"max_steps": 2, "lr": 5e-2, "batch_size": 2})
    out = run / "requests" / "0123abcd"
    result = run_request(tiny_dir, PAIRS[:2], PAIRS[2:], "ga", {}, out, train=train, progress=False)
    assert result.status == "ok"
    return out


def _logits(model, processor) -> torch.Tensor:
    with torch.no_grad():
        return model(**ChatCollator(processor)(BATCH)).logits


def test_merged_export_round_trips_through_plain_transformers(request_dir, tiny_dir, tmp_path):
    out = export(resolve_source(request_dir), tmp_path / "merged").out
    model = AutoModelForImageTextToText.from_pretrained(out).eval()
    processor = AutoProcessor.from_pretrained(out)
    merged, _ = load_unlearned(request_dir, merged=True)
    on_top, _ = load_unlearned(request_dir)
    base = AutoModelForImageTextToText.from_pretrained(tiny_dir).eval()
    assert torch.equal(_logits(model, processor), _logits(merged, processor))
    torch.testing.assert_close(_logits(model, processor), _logits(on_top, processor))
    assert not torch.allclose(_logits(model, processor), _logits(base, processor))
    # Everything a tool needs is in the directory, and the template renders the training text.
    assert template_problem(processor) is None
    assert (out / "chat_template.jinja").is_file() and (out / "generation_config.json").is_file()
    assert model.generation_config.eos_token_id == processor.tokenizer.eos_token_id
    assert not any(out.glob("adapter_*"))
    assert json.loads((out / "pulse_export.json").read_text())["method"] == "ga"


def test_run_state_exports_the_same_model(request_dir, tmp_path):
    run = request_dir.parent.parent
    out = export(resolve_source(run, state="request:0123abcd"), tmp_path / "state").out
    direct = export(resolve_source(request_dir), tmp_path / "direct").out
    a = AutoModelForImageTextToText.from_pretrained(out).eval()
    b = AutoModelForImageTextToText.from_pretrained(direct).eval()
    processor = AutoProcessor.from_pretrained(out)
    assert torch.equal(_logits(a, processor), _logits(b, processor))


def test_adapter_export_has_a_portable_base(request_dir, tiny_dir, tmp_path):
    out = tmp_path / "adapter"
    export(resolve_source(request_dir), out, adapter_only=True, base_ref="tiny-llava")
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "tiny-llava"
    assert str(tmp_path.anchor) not in json.dumps(config)
    # The base found by the user's own path; the processor travels with the adapter.
    processor = AutoProcessor.from_pretrained(out)
    base = AutoModelForImageTextToText.from_pretrained(tiny_dir)
    model = PeftModel.from_pretrained(base, out).eval()
    on_top, _ = load_unlearned(request_dir)
    assert torch.equal(_logits(model, processor), _logits(on_top, processor))
    assert template_problem(processor) is None
    # An adapter directory exports merged with --base.
    merged = export(resolve_source(out, base=tiny_dir), tmp_path / "from-adapter").out
    reloaded = AutoModelForImageTextToText.from_pretrained(merged).eval()
    torch.testing.assert_close(_logits(reloaded, processor), _logits(on_top, processor))


def test_cli_export_and_its_bad_input_in_one_line(pulse, request_dir, tmp_path):
    done = pulse("export", str(request_dir), "--out", str(tmp_path / "m"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "m" / "model.safetensors").is_file()
    run = request_dir.parent.parent
    bad = pulse("export", str(run), "--out", str(tmp_path / "x"))
    assert bad.returncode == 2
    # The last line (libraries may warn on import before it), and no traceback.
    assert "Traceback" not in bad.stderr
    forget = json.loads((request_dir / "result.json").read_text())["forget_ids"]
    assert bad.stderr.strip().splitlines()[-1] == (
        f"error: {run}: a run directory: name the request to export with --state "
        f"(finished requests: 0123abcd (ga, {len(forget)} to forget))"
    )


def test_bad_input_names_what_is_wrong(request_dir, tiny_dir, tmp_path):
    run = request_dir.parent.parent
    portable = tmp_path / "portable"
    export(resolve_source(request_dir), portable, adapter_only=True, base_ref="tiny-llava")
    export(resolve_source(request_dir), tmp_path / "again", adapter_only=True)
    export(resolve_source(request_dir), tmp_path / "again", adapter_only=True)  # replaced
    shutil.copytree(tiny_dir, tmp_path / "occupied")
    for source, options, needle in [
        (tmp_path / "nowhere", {}, "not found"),
        (tmp_path, {}, "not a run, request, adapter or model directory"),
        (run, {"state": "request:nope"}, "not a finished request"),
        (request_dir, {"state": "0123abcd"}, "not a run directory"),
        (portable, {}, "give its base model with --base"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(needle)):
            resolve_source(source, **options)
    for source, options, needle in [
        (request_dir, {"adapter_only": True, "base_ref": "/abs/base"}, "not portable"),
        (request_dir, {"base_ref": "tiny-llava"}, "only with --adapter-only"),
        (tiny_dir, {"adapter_only": True}, "has no adapter"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(needle)):
            export(resolve_source(source), tmp_path / "x", **options)
    with pytest.raises(ConfigError, match="not an earlier export"):
        export(resolve_source(tiny_dir), tmp_path / "occupied")


def test_a_request_on_an_earlier_merged_adapter_exports_its_whole_chain(
    request_dir, tiny_dir, tmp_path
):
    """A second request with reference "previous" applies on the first's adapter merged: the
    export merges the chain as load_unlearned rebuilds it; alone, its adapter is refused."""
    train = UNLEARN_DEFAULTS.model_copy(update={"max_steps": 2, "lr": 5e-2, "batch_size": 2})
    second = tmp_path / "requests" / "second"
    result = run_request(
        tiny_dir, PAIRS[2:], PAIRS[:2], "ga", {}, second, train=train, progress=False,
        adapter=request_dir / "adapter", reference="previous",
    )  # fmt: skip
    assert result.status == "ok"
    source = resolve_source(second)
    assert len(source.merged) == 1
    out = export(source, tmp_path / "chain").out
    model = AutoModelForImageTextToText.from_pretrained(out).eval()
    processor = AutoProcessor.from_pretrained(out)
    rebuilt, _ = load_unlearned(second, merged=True)
    assert torch.equal(_logits(model, processor), _logits(rebuilt, processor))
    with pytest.raises(ConfigError, match="earlier adapter"):
        export(source, tmp_path / "alone", adapter_only=True)
