"""Every registered method on the tiny LMM: its loss is the documented formula (recomputed here
from full logits, independently of the answer-position shortcut), and a few steps move exactly
the trainable parameters and lower the forget set's likelihood."""

from __future__ import annotations

import pytest
import torch

from pulse.methods import (
    LoopConfig,
    MethodContext,
    UnlearnBatch,
    UnlearnCollator,
    UnlearnData,
    get_method,
    method_names,
    train_method,
)
from pulse.methods.losses import (
    answer_lengths,
    dpo_loss,
    kl_ref_theta,
    masked_mse,
    mean_nll,
    npo_loss,
    prediction_mask,
    select_answers,
    sequence_logprob,
    simnpo_loss,
)
from pulse.methods.siu import load_templates, plan
from pulse.models.chat import ChatCollator
from tests.fixtures.tiny import FORGET, RETAIN

# Methods without a loss the loop trains (training-free weight edits: tests/methods/test_manu.py)
EDITS = {"manu"}


def inputs(sub):
    return {k: v for k, v in sub.items() if k != "labels"}


def full(model, sub):
    """Answer tokens from the full [B, T, V] logits."""
    return select_answers(model(**inputs(sub)).logits, sub["labels"])


def ref(model, sub):
    with torch.no_grad(), model.disable_adapter():
        return full(model, sub)


def hidden(model, sub, layer):
    return model(**inputs(sub), output_hidden_states=True).hidden_states[layer]


@pytest.fixture
def setup(lora, processor):
    """A LoRA model whose adapter is not zero (so policy != reference), a batch and a context."""
    torch.manual_seed(1)
    for name, p in lora.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.05)
    lora.eval()
    data = UnlearnData(FORGET, RETAIN, seed=0)
    data = get_method("viker", {"images": 2}).construct(get_method("siu").construct(data))
    uses = {"forget", "retain", "idk", "siu", "irrelevant0", "irrelevant1"}
    collator = UnlearnCollator(processor, data, uses, seed=0)
    batch = UnlearnBatch.from_inputs(collator([0, 1, 3]))

    def context(method, step=0):
        return MethodContext(
            model=lora,
            cached=method.cached,
            sources=data.sources(),
            collate=collator.chat,
            batch_size=3,
            seed=0,
            step=step,
        )

    return lora, batch, context


def expected(name, m, b, step=0, tokenizer=None):
    F, R, I = b.forget, b.retain, b.idk  # noqa: E741
    if name == "ga":
        return -mean_nll(full(m, F))
    if name == "ga_kl":
        return -mean_nll(full(m, F)) + 0.7 * kl_ref_theta(ref(m, R), full(m, R))
    if name == "gd":
        return -2.0 * mean_nll(full(m, F)) + 0.5 * mean_nll(full(m, R))
    if name == "kl_min":
        if step % 2 == 0:
            return -mean_nll(full(m, F))
        return mean_nll(full(m, R)) + 0.7 * kl_ref_theta(ref(m, R), full(m, R))
    if name == "npo":
        ratio = sequence_logprob(full(m, F)) - sequence_logprob(ref(m, F))
        return npo_loss(ratio, 0.5) + 0.3 * kl_ref_theta(ref(m, R), full(m, R))
    if name == "simnpo":
        a = full(m, F)
        loss = simnpo_loss(sequence_logprob(a), answer_lengths(a), 3.0, 0.2)
        return loss + 0.4 * mean_nll(full(m, R))
    if name == "idk":
        return mean_nll(full(m, I)) + 0.6 * kl_ref_theta(ref(m, R), full(m, R))
    if name == "idk_dpo":
        chosen = sequence_logprob(full(m, I)) - sequence_logprob(ref(m, I))
        rejected = sequence_logprob(full(m, F)) - sequence_logprob(ref(m, F))
        return dpo_loss(chosen, rejected, 0.3)
    if name == "rmu":
        h_f = hidden(m, F, 1)
        u = torch.rand(h_f.shape[-1], generator=torch.Generator().manual_seed(0))
        forget = masked_mse(h_f, 5.0 * u / u.norm(), prediction_mask(F["labels"]))
        with torch.no_grad(), m.disable_adapter():
            h_ref = hidden(m, R, 1)
        return forget + 2.0 * masked_mse(hidden(m, R, 1), h_ref, prediction_mask(R["labels"]))
    if name == "mmunlearner":
        return -mean_nll(full(m, F)) + 0.5 * mean_nll(full(m, R))
    if name == "siu":
        return expected_siu(m, b, tokenizer)
    if name == "viker":
        return expected_viker(m, b)
    raise AssertionError(name)


def token_ids(tokenizer, words):
    ids = set()
    for w in words:
        ids |= set(tokenizer(w, add_special_tokens=False)["input_ids"])
        ids |= set(tokenizer(" " + w, add_special_tokens=False)["input_ids"])
    return ids - set(tokenizer.all_special_ids)


def expected_siu(m, b, tokenizer):
    """0.8·ℓ(B_c) + 0.5·DMK(B_c) + 0.25·ℓ(B_r), the masks rebuilt from the words they mask."""
    C = b.constructed["siu"]
    cur, rf = full(m, C), ref(m, C)
    forgotten = token_ids(tokenizer, ["Alice", "Moreau"])  # FORGET's identification answer
    (target,) = plan(FORGET, 0, load_templates("")).values()
    new = token_ids(tokenizer, target.new_words) - forgotten
    vocab = torch.zeros(rf.logits.shape[-1], dtype=torch.bool)
    vocab[sorted(forgotten)] = True
    kept = rf.logits.softmax(-1)[:, ~vocab]
    p_ref = kept / kept.sum(-1, keepdim=True)  # renormalised without the forgotten name
    log_cur = cur.logits.log_softmax(-1)[:, ~vocab]
    kl = (p_ref * p_ref.log()).sum(-1) - (p_ref * log_cur).sum(-1)
    keep = torch.tensor([int(y) not in new for y in cur.targets])
    assert 0 < keep.sum() < len(keep)  # both masks are at work on this batch
    return 0.8 * mean_nll(cur) + 0.5 * kl[keep].mean() + 0.25 * mean_nll(full(m, b.retain))


def expected_viker(m, b):
    """NPO(β=0.5) + 0.7·entropy-weighted KL to the mean irrelevant-image prediction."""
    cur = full(m, b.forget)
    q = torch.stack([ref(m, b.constructed[f"irrelevant{k}"]).logits.softmax(-1) for k in (0, 1)])
    q = q.mean(0)
    entropy = -(q * q.log()).sum(-1)
    w = entropy / entropy.mean()
    kl = (q * (q.log() - cur.logits.log_softmax(-1))).sum(-1)
    ratio = sequence_logprob(cur) - sequence_logprob(ref(m, b.forget))
    return npo_loss(ratio, 0.5) + 0.7 * (w * kl).mean()


OVERRIDES = {
    "ga": {},
    "ga_kl": {"kl_weight": "0.7"},
    "gd": {"forget_weight": "2", "retain_weight": "0.5"},
    "kl_min": {"kl_weight": "0.7"},
    "npo": {"beta": "0.5", "retain": "kl", "retain_weight": "0.3"},
    "simnpo": {"beta": "3", "margin": "0.2", "retain": "nll", "retain_weight": "0.4"},
    "idk": {"retain": "kl", "retain_weight": "0.6"},
    "idk_dpo": {"beta": "0.3", "retain": "none"},
    "rmu": {"layer": "1", "steering": "5", "alpha": "2"},
    "mmunlearner": {"retain_weight": "0.5"},
    "siu": {"ce_weight": "0.8", "kl_weight": "0.5", "retain_weight": "0.25"},
    "viker": {"beta": "0.5", "reg_weight": "0.7", "images": "2", "retain": "none"},
}


def test_every_registered_method_is_covered():
    assert set(method_names()) == set(OVERRIDES) | EDITS


@pytest.mark.parametrize("name", sorted(OVERRIDES))
def test_loss_is_the_documented_formula(setup, processor, name):
    model, batch, context = setup
    method = get_method(name, [f"{k}={v}" for k, v in OVERRIDES[name].items()])
    for step in (0, 1) if name == "kl_min" else (0,):
        with torch.no_grad():
            loss, logs = method(model, batch, context(method, step))
            want = expected(name, model, batch, step, processor.tokenizer)
        assert float(loss) == pytest.approx(float(want), rel=1e-4, abs=1e-5), (name, step)
        assert logs and all(v.dim() == 0 and not v.requires_grad for v in logs.values())


def test_cached_reference_logprobs_match_live_ones(setup):
    _, batch, context = setup
    method = get_method("idk_dpo")
    cached = context(method)
    assert cached.cached == {"forget", "idk"}
    live = context(get_method("ga"))  # caches nothing
    with torch.no_grad():
        for name in ("forget", "idk"):
            assert torch.allclose(
                cached.reference_logprobs(batch, name),
                live.reference_logprobs(batch, name),
                atol=1e-4,
            )
    assert cached.state["reference_cache_seconds"] > 0


def forget_nll(model, processor) -> float:
    model.eval()
    with torch.no_grad():
        return float(mean_nll(full(model, ChatCollator(processor)(FORGET))))


# Settings under which 3 steps visibly unlearn the tiny model (the defaults are for 7B models).
STEP_OVERRIDES = {"simnpo": {"beta": "1"}, "rmu": {"layer": "2"}}


@pytest.mark.parametrize("name", sorted(OVERRIDES))
def test_a_few_steps_move_exactly_the_trainable_parameters_and_unlearn(lora, processor, name):
    before = {n: p.detach().clone() for n, p in lora.named_parameters()}
    trainable = {n for n, p in lora.named_parameters() if p.requires_grad}
    nll_before = forget_nll(lora, processor)
    method = get_method(name, STEP_OVERRIDES.get(name))
    cfg = LoopConfig(max_steps=3, batch_size=2, learning_rate=2e-2, progress=False, report_to=())
    result = train_method(lora, processor, method, UnlearnData(FORGET, RETAIN), cfg)
    assert result.ok and result.steps == 3
    assert [entry["step"] for entry in result.history] == [1, 2, 3]  # loss terms every step
    changed = {n for n, p in lora.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= trainable
    if name == "mmunlearner":
        # A fresh adapter's A matrices get no gradient (B = 0) on either set: masked out.
        assert not any("lora_A" in n for n in changed)
        assert 0 < result.info["mmunlearner_kept_fraction"] < 1
    else:
        assert changed == trainable
    after = forget_nll(lora, processor)
    assert after > nll_before * 1.2, (nll_before, after)
