"""MANU, the training-free method: its importances and scores recomputed independently on the
tiny model, its edit unlearns, and a request that edits weights is saved, sealed and loaded back
by everything that loads a finished request (evaluation, export, sequential chains)."""

from __future__ import annotations

import json

import pytest
import torch

from pulse.errors import ConfigError, DataError, ModelError
from pulse.methods import MethodContext, get_method
from pulse.methods.losses import mean_nll, select_answers
from pulse.methods.manu import collect, neuron_modules, text_only
from pulse.methods.request import RequestResult, load_unlearned, run_unlearning
from pulse.models.adapters import load_adapter, merge
from pulse.models.chat import ChatCollator, ChatExample
from pulse.models.edits import apply_edit, load_edit
from pulse.models.export import export, resolve_source
from pulse.models.loading import load_model
from pulse.models.settings import UNLEARN_DEFAULTS
from tests.fixtures.tiny import FORGET, RETAIN

FAST = {
    "train": UNLEARN_DEFAULTS.model_copy(update={"max_steps": 2, "batch_size": 2, "lr": 1e-2}),
    "progress": False,
    "report_to": (),
}


def nll(model, processor, rows) -> float:
    batch = ChatCollator(processor)(rows)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        return float(mean_nll(select_answers(model(**inputs).logits, batch["labels"])))


def context(model, processor, batch_size=3) -> MethodContext:
    return MethodContext(
        model=model,
        sources={"forget": FORGET, "retain": RETAIN},
        collate=ChatCollator(processor),
        batch_size=batch_size,
        seed=0,
    )


def intermediate(model, processor, rows):
    """Each LLM layer's MLP intermediate activation act(gate(x)) * up(x) at attended
    positions, from the MLP's own input (no pre-hook on the output linear)."""
    acts, mlps = {}, {}
    for name, module in model.named_modules():
        if name.endswith(".mlp") and "language_model" in name:
            mlps[name] = module
    captured = {}
    handles = [
        m.register_forward_hook(lambda mod, args, out, n=n: captured.__setitem__(n, args[0]))
        for n, m in mlps.items()
    ]
    batch = ChatCollator(processor)(rows)
    with torch.no_grad():
        model(**{k: v for k, v in batch.items() if k != "labels"})
    for handle in handles:
        handle.remove()
    mask = batch["attention_mask"].bool()
    for n, m in mlps.items():
        x = captured[n]
        acts[f"{n}.down_proj"] = (m.act_fn(m.gate_proj(x)) * m.up_proj(x))[mask]
    return acts


def test_importances_and_scores_are_the_documented_functions(tiny):
    model, processor = tiny
    modules = neuron_modules(model, "llm")
    rows = text_only(FORGET)
    stats = collect(model, modules, [ChatCollator(processor)(rows)], 0.1)
    for name, a in intermediate(model, processor, rows).items():
        got = stats[name].importances()
        a = a.double()
        assert torch.allclose(got["abs"], a.abs().mean(0), atol=1e-6)
        assert torch.allclose(got["freq"], (a.abs() > 0.1).double().mean(0))
        assert torch.allclose(got["var"], a.std(0, unbiased=False), atol=1e-6)
        assert torch.allclose(got["rms"], a.pow(2).mean(0).sqrt(), atol=1e-6)

    # The edit prunes, in each LLM MLP, the top ⌈2 % · width⌉ of the text-only score (with
    # equal weights) among the neurons it zeroes.
    edit = get_method("manu", {"components": "llm"}).edit(model, context(model, processor, 8))
    f = intermediate(model, processor, text_only(FORGET))
    r = intermediate(model, processor, text_only(RETAIN))
    for name in modules:
        fi, ri = f[name].double(), r[name].double()
        score = sum(
            fn(fi) / (fn(ri) + 1e-5) - 1
            for fn in (
                lambda a: a.abs().mean(0),
                lambda a: (a.abs() > 0.1).double().mean(0),
                lambda a: a.std(0, unbiased=False),
                lambda a: a.pow(2).mean(0).sqrt(),
            )
        )
        k = -(-2 * score.numel() // 100)  # ⌈2 % of the width⌉
        top = set(torch.topk(score, k).indices.tolist())
        assert top <= set(edit.columns[name].tolist())
    assert edit.info["manu_modalities"] == "text+multimodal"
    assert 0 < edit.info["manu_pruned_fraction"] < 0.1


def test_the_edit_forgets_more_than_it_retains_and_zeroes_only_its_columns(tiny):
    model, processor = tiny
    edited = load_model_copy(model)
    edit = get_method("manu", {"fraction": 0.1}).edit(edited, context(edited, processor))
    before_f, before_r = nll(model, processor, FORGET), nll(model, processor, RETAIN)
    apply_edit(edited, edit)
    after_f, after_r = nll(edited, processor, FORGET), nll(edited, processor, RETAIN)
    assert after_f - before_f > after_r - before_r and after_f > before_f * 1.2
    for name, module in edited.named_modules():
        if name in edit.columns:
            assert not module.weight[:, edit.columns[name]].any()
            rest = torch.ones(module.weight.shape[1], dtype=torch.bool)
            rest[edit.columns[name]] = False
            original = model.get_submodule(name).weight
            assert torch.equal(module.weight[:, rest], original[:, rest])
    with pytest.raises(ModelError, match="training-free"):
        get_method("manu")(model, None, None)


def load_model_copy(model):
    import copy

    return copy.deepcopy(model)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"fraction": 1.0}, "a share < 1"),
        ({"w_abs": 0, "w_freq": 0, "w_var": 0, "w_rms": 0}, "at least one weight > 0"),
    ],
)
def test_bad_parameters_are_one_line(overrides, message):
    with pytest.raises(ConfigError, match=message):
        get_method("manu", overrides)


@pytest.fixture(scope="module")
def mllmu(small_world):
    return small_world / "mllmu"


def test_an_edit_request_is_saved_sealed_and_loaded_back_everywhere(model_dir, mllmu, tmp_path):
    out = tmp_path / "manu"
    result = run_unlearning(
        model_dir, mllmu, "f002", "f007", "manu", ["fraction=0.05"], out, **FAST
    )
    assert result.ok and result.steps == 0 and result.adapter_dir == out / "edit"
    record = json.loads((out / "result.json").read_text())
    assert record["edit"] == "edit" and record["adapter"] is None
    assert set(record["edit_sha256"]) == {"edit.safetensors", "edit.json"}
    assert record["info"]["manu_pruned_neurons"] > 0 and not (out / "adapter").exists()

    # evaluation: the base model with the edit's columns zeroed
    model, processor = load_unlearned(out, dtype="float32")
    base = load_model(model_dir, dtype="float32")
    expected = apply_edit(base, load_edit(out / "edit"))
    rows = [ChatExample("Where was Alice born?", "Lyon")]
    assert nll(model, processor, rows) == pytest.approx(nll(expected, processor, rows), abs=1e-6)
    # `pulse eval --adapter OUT/edit` loads the same model
    by_path = load_model(model_dir, dtype="float32", adapter=out / "edit")
    assert nll(by_path, processor, rows) == pytest.approx(nll(model, processor, rows), abs=1e-6)

    # export: merged it is the edited model; an adapter alone it has not
    exported = export(resolve_source(out), tmp_path / "exported", dtype="float32")
    plain = load_model(exported.out, dtype="float32")
    assert nll(plain, processor, rows) == pytest.approx(nll(model, processor, rows), abs=1e-5)
    with pytest.raises(ConfigError, match="no adapter; export it merged"):
        export(resolve_source(out), tmp_path / "alone", adapter_only=True)

    # a sequential chain: the next request trains an adapter on the edited model
    second = run_unlearning(
        model_dir, mllmu, "f009", "f007", "ga", [], tmp_path / "next", adapter=out / "edit", **FAST
    )
    assert second.ok
    assert second.record["applies_on"]["merged"] == [str((out / "edit").resolve())]
    chained, _ = load_unlearned(tmp_path / "next", dtype="float32", merged=True)
    by_hand = apply_edit(load_model(model_dir, dtype="float32"), load_edit(out / "edit"))
    by_hand = merge(load_adapter(by_hand, tmp_path / "next" / "adapter"))
    assert nll(chained, processor, rows) == pytest.approx(nll(by_hand, processor, rows), abs=1e-5)

    # sealed: a changed edit is not taken for the finished request
    (out / "edit" / "edit.json").write_text("{}")
    with pytest.raises(DataError, match=r"edit\.json differs"):
        RequestResult.read(out)
    assert RequestResult.finished(out) is None
