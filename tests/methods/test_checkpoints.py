"""Resuming inside a request: a loop stopped after k steps and resumed from its checkpoint
reaches bit for bit the weights of a loop never stopped (data order, retain stream, RNG states,
optimizer and schedule restored); a damaged checkpoint is found, said in one line, and the
previous one (or the first step) used instead."""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import pytest
import torch
from transformers import TrainerCallback

from pulse.methods import LoopConfig, UnlearnData, get_method, train_method
from pulse.methods.checkpoints import STATE_FILE, CheckpointPlan
from pulse.models.adapters import UpdateScope, apply_scope
from tests.fixtures.tiny import FORGET, RETAIN

LOOP = LoopConfig(batch_size=2, learning_rate=1e-2, progress=False, report_to=())


class Killed(Exception):
    pass


class _KillAt(TrainerCallback):
    """Stops the loop (as a kill would) when step ``step`` ends, before any later work."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise Killed(f"killed after step {self.step}")


def _fresh(tiny, dropout: float = 0.0):
    torch.manual_seed(0)
    return apply_scope(copy.deepcopy(tiny[0]), UpdateScope(rank=4, alpha=8, dropout=dropout))


def _trained(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def _plan(tmp_path, steps: int = 2) -> CheckpointPlan:
    return CheckpointPlan(tmp_path / "request" / "checkpoints", "request-a", steps=steps)


# (method, loop, LoRA dropout, checkpoint every, killed after): 4 forget examples in batches
# of 2 are 2 steps an epoch.
CASES = {
    # Three epochs: resumed in the middle of the second (its data order drawn again).
    "ga-epochs": ("ga", dict(epochs=3.0), 0.0, 3, 5),
    # A retain stream drawn per batch, gradient accumulation, LoRA dropout (the RNG states);
    # resumed at an epoch's start.
    "ga_kl-accum-dropout": ("ga_kl", dict(max_steps=7, grad_accum=2), 0.1, 2, 5),
    # Reference log-probs cached per request; batches grouped by length, resumed mid-epoch.
    "npo-grouped": ("npo", dict(max_steps=6, group_by_length=True), 0.0, 3, 5),
}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_resumed_loop_reaches_the_weights_of_an_uninterrupted_one(
    tiny, processor, tmp_path, case
):
    method, loop, dropout, every, kill = CASES[case]
    cfg = replace(LOOP, **loop)
    data = UnlearnData(FORGET, RETAIN, seed=0)

    whole = _fresh(tiny, dropout)
    expected = train_method(whole, processor, get_method(method), data, cfg)
    assert expected.ok and expected.steps > kill

    plan = _plan(tmp_path, every)
    stopped = _fresh(tiny, dropout)
    with pytest.raises(Killed):
        train_method(
            stopped,
            processor,
            get_method(method),
            data,
            replace(cfg, checkpoint=plan),
            callbacks=[_KillAt(kill)],
        )
    last = (kill // plan.steps) * plan.steps
    kept = [f"checkpoint-{k}" for k in (last - every, last) if k > 0]  # the newest two
    assert sorted(p.name for p in plan.folder.iterdir()) == kept

    resumed = _fresh(tiny, dropout)
    result = train_method(
        resumed, processor, get_method(method), data, replace(cfg, checkpoint=plan)
    )
    assert result.ok and result.resumed_from == last and result.steps == expected.steps
    want, got = _trained(whole), _trained(resumed)
    assert want.keys() == got.keys()
    for name in want:
        assert torch.equal(want[name], got[name]), name
    assert [e["step"] for e in result.history] == [e["step"] for e in expected.history]
    assert [e["loss"] for e in result.history] == [e["loss"] for e in expected.history]


def _stopped_with_checkpoints(tiny, processor, tmp_path) -> tuple[CheckpointPlan, LoopConfig]:
    plan = _plan(tmp_path)
    cfg = replace(LOOP, max_steps=6, checkpoint=plan)
    with pytest.raises(Killed):
        train_method(
            _fresh(tiny),
            processor,
            get_method("ga"),
            UnlearnData(FORGET),
            cfg,
            callbacks=[_KillAt(5)],
        )
    assert sorted(p.name for p in plan.folder.iterdir()) == ["checkpoint-2", "checkpoint-4"]
    return plan, cfg


DAMAGE = {
    "truncated-optimizer": (
        lambda f: (f / "optimizer.pt").write_bytes((f / "optimizer.pt").read_bytes()[:100]),
        "optimizer.pt differs from what was written",
    ),
    "unsealed": (lambda f: (f / STATE_FILE).unlink(), "incomplete"),
    "seal-cut": (
        lambda f: (f / STATE_FILE).write_text('{"fingerprint": "req', encoding="utf-8"),
        "not valid JSON",
    ),
    "weights-missing": (lambda f: (f / "adapter_model.safetensors").unlink(), "is missing"),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=str)
def test_a_damaged_checkpoint_falls_back_to_the_previous_one(
    tiny, processor, tmp_path, capsys, damage
):
    plan, cfg = _stopped_with_checkpoints(tiny, processor, tmp_path)
    edit, said = DAMAGE[damage]
    edit(plan.folder / "checkpoint-4")
    capsys.readouterr()
    model = _fresh(tiny)
    result = train_method(model, processor, get_method("ga"), UnlearnData(FORGET), cfg)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("pulse:")]
    assert len(lines) == 1, lines
    assert "checkpoint-4" in lines[0] and said in lines[0], lines
    assert lines[0].endswith("resuming from checkpoint-2"), lines
    assert result.ok and result.resumed_from == 2
    whole = _fresh(tiny)
    train_method(
        whole, processor, get_method("ga"), UnlearnData(FORGET), replace(cfg, checkpoint=None)
    )
    want, got = _trained(whole), _trained(model)
    assert all(torch.equal(want[name], got[name]) for name in want)


def test_every_checkpoint_damaged_starts_from_the_first_step(tiny, processor, tmp_path, capsys):
    plan, cfg = _stopped_with_checkpoints(tiny, processor, tmp_path)
    for folder in plan.folder.iterdir():
        (folder / "scheduler.pt").write_bytes(b"")
    capsys.readouterr()
    result = train_method(_fresh(tiny), processor, get_method("ga"), UnlearnData(FORGET), cfg)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("pulse:")]
    assert len(lines) == 1 and lines[0].endswith("starts again from its first step"), lines
    assert "checkpoint-4" in lines[0] and "checkpoint-2" in lines[0]
    assert result.ok and result.resumed_from is None and result.steps == 6


def test_a_checkpoint_of_another_request_is_not_resumed(tiny, processor, tmp_path, capsys):
    plan, cfg = _stopped_with_checkpoints(tiny, processor, tmp_path)
    other = replace(cfg, checkpoint=replace(plan, fingerprint="request-b"))
    capsys.readouterr()
    result = train_method(_fresh(tiny), processor, get_method("ga"), UnlearnData(FORGET), other)
    err = capsys.readouterr().err
    assert "of another request" in err and result.resumed_from is None
    seal = json.loads((plan.folder / "checkpoint-4" / STATE_FILE).read_text(encoding="utf-8"))
    assert seal["fingerprint"] == "request-b"  # the loop checkpointed itself anew


def test_a_request_killed_mid_training_resumes_to_the_same_adapter(
    model_dir, small_world, tmp_path, capsys, monkeypatch
):
    """run_unlearning stopped after step 5 (checkpoints every 2 steps), then run again in the
    same folder: it resumes at step 4, writes the adapter an uninterrupted request writes, and
    leaves no checkpoint behind."""
    from safetensors.torch import load_file

    from pulse.methods import trainer as loop
    from pulse.methods.request import run_unlearning
    from pulse.models.settings import UNLEARN_DEFAULTS

    train = UNLEARN_DEFAULTS.model_copy(
        update={"max_steps": 7, "batch_size": 2, "lr": 1e-2, "checkpoint_every": "2 steps"}
    )
    args = (model_dir, small_world / "mllmu", "f002,f007", "f009,f011", "ga_kl", None)
    keywords = {"train": train, "progress": False, "report_to": ()}
    whole = run_unlearning(*args, tmp_path / "whole", **keywords)
    assert whole.ok and whole.record["resumed_from_step"] is None

    original = loop._Checkpoints.on_step_end

    def killing(self, args, state, control, **kwargs):
        original(self, args, state, control, **kwargs)
        if state.global_step == 5:
            raise Killed("killed after step 5")

    monkeypatch.setattr(loop._Checkpoints, "on_step_end", killing)
    out = tmp_path / "killed"
    with pytest.raises(Killed):
        run_unlearning(*args, out, **keywords)
    assert not (out / "result.json").exists()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "checkpoint-2",
        "checkpoint-4",
    ]
    monkeypatch.setattr(loop._Checkpoints, "on_step_end", original)
    capsys.readouterr()
    resumed = run_unlearning(*args, out, **keywords)
    assert "resuming from its checkpoint at step 4" in capsys.readouterr().err
    assert resumed.ok and resumed.record["resumed_from_step"] == 4 and resumed.steps == 7
    assert not (out / "checkpoints").exists()
    want = load_file(whole.adapter_dir / "adapter_model.safetensors")
    got = load_file(resumed.adapter_dir / "adapter_model.safetensors")
    assert want.keys() == got.keys()
    assert all(torch.equal(want[k], got[k]) for k in want)
    assert [e["loss"] for e in resumed.history] == [e["loss"] for e in whole.history]


def test_a_schedule_in_minutes_checkpoints_by_the_clock(tiny, processor, tmp_path):
    """Due whenever that much training time passed since the last one (here: every step),
    never after the last step; the newest two are kept."""
    plan = CheckpointPlan(tmp_path / "checkpoints", "request-a", seconds=1e-6)
    cfg = replace(LOOP, max_steps=4, checkpoint=plan)
    with pytest.raises(Killed):
        train_method(
            _fresh(tiny),
            processor,
            get_method("ga"),
            UnlearnData(FORGET),
            cfg,
            callbacks=[_KillAt(3)],
        )
    # Killed as step 3 ended, before its checkpoint.
    assert sorted(p.name for p in plan.folder.iterdir()) == ["checkpoint-1", "checkpoint-2"]
    result = train_method(_fresh(tiny), processor, get_method("ga"), UnlearnData(FORGET), cfg)
    assert result.resumed_from == 2 and result.steps == 4
    # Step 3 checkpointed, step 4 (the last) not.
    assert sorted(p.name for p in plan.folder.iterdir()) == ["checkpoint-2", "checkpoint-3"]
