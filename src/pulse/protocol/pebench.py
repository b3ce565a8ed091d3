"""The PEBench scenario: forget a person or an event, measure efficacy (seen images),
generality (unseen images), retain (other persons / events) and scope (the other concept in the
target's images).

The model is ``models.pebench`` (already fine-tuned on the PEBench data), or the base model
fine-tuned here (LoRA, merged) on the seen images when ``finetune_epochs`` > 0. Unlearning data
for a target: its seen images asked its concept's question (forget) and every other seen image
asked the same question (retain).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pulse.data.pebench import PEBenchRow, read_pebench
from pulse.data.schema import TrainPair
from pulse.errors import ConfigError
from pulse.eval.intervals import (
    Interval,
    paired_person_bootstrap_over_seeds,
    person_bootstrap_over_seeds,
)
from pulse.eval.pebench import QUESTIONS, SEEN_SPLITS, pebench_eval
from pulse.eval.pebench_metrics import FORGET_GROUPS
from pulse.eval.records import ItemRecord, records_from_dicts, tally
from pulse.protocol.measure import CellId
from pulse.protocol.results import ResultRow
from pulse.protocol.splits import seeded_order
from pulse.protocol.store import content_key

if TYPE_CHECKING:
    from pulse.protocol.runner import Runner

GROUPS = ("efficacy", "generality", "retain", "scope")


def choose_targets(
    rows: Sequence[PEBenchRow], kind: str, spec: list[str] | int, seed: int
) -> list[str]:
    """Named targets (checked) or ``spec`` of them from a seeded order."""
    present = sorted({getattr(r, kind) for r in rows})
    if isinstance(spec, int):
        if not 0 <= spec < len(present):
            raise ConfigError(
                f"scenarios.pebench: {spec} {kind} targets asked for, the data has {len(present)} "
                "(at least one must remain to measure retain)"
            )
        return sorted(seeded_order(present, seed)[:spec])
    unknown = [t for t in spec if t not in present]
    if unknown:
        raise ConfigError(f"scenarios.pebench: {kind} {unknown[0]!r} is not in the PEBench data")
    return sorted(spec)


def answer(row: PEBenchRow, concept: str) -> str:
    return row.person if concept == "person" else (row.description or row.event)


def concept_pairs(
    rows: Sequence[PEBenchRow], concept: str, seen_only: bool = True
) -> list[TrainPair]:
    seen = {s.lower() for s in SEEN_SPLITS}
    return [
        TrainPair(getattr(r, concept), QUESTIONS[concept], answer(r, concept), r.image)
        for r in rows
        if not seen_only or r.split.strip().lower() in seen
    ]


def finetuned_model(runner: Runner, rows: Sequence[PEBenchRow]) -> Path:
    """The base model fine-tuned on both questions of every seen image (cached in the run)."""
    spec = runner.config.scenarios.pebench
    out = runner.store.path("models", "pebench")
    if (out / "config.json").is_file():
        return out
    from pulse.models.adapters import apply_scope, save_merged
    from pulse.models.loading import load_model_and_processor
    from pulse.models.train import TrainConfig, train_supervised

    assert runner.sources.base is not None
    model, processor = load_model_and_processor(runner.sources.base, dtype="float32")
    model = apply_scope(model, runner.config.train_of("pebench").scope.update_scope())
    pairs = concept_pairs(rows, "person") + concept_pairs(rows, "event")
    cfg = TrainConfig(
        epochs=spec.finetune_epochs,
        batch_size=runner.config.train_of("pebench").batch_size,
        learning_rate=spec.finetune_lr,
        seed=runner.config.seed,
        progress=runner.progress,
    )
    train_supervised(model, processor, pairs, cfg)
    save_merged(model, out, processor)
    return out


def run_pebench(runner: Runner) -> None:
    spec = runner.config.scenarios.pebench
    assert runner.sources.pebench is not None
    rows = read_pebench(runner.sources.pebench)
    model = (
        finetuned_model(runner, rows) if spec.finetune_epochs > 0 else runner.sources.pebench_model
    )
    assert model is not None
    before_state = f"model:{model.resolve()}"
    for kind, wanted in (("person", spec.persons), ("event", spec.events)):
        targets = choose_targets(rows, kind, wanted, runner.config.seed)
        if not targets:
            continue
        runner.store.write_json(
            {"kind": kind, "targets": targets}, "splits", "pebench", f"{kind}.json"
        )
        forget = [p for p in concept_pairs(rows, kind) if p.entity_id in set(targets)]
        retain = [p for p in concept_pairs(rows, kind) if p.entity_id not in set(targets)]

        def evaluate(state, loader, k=kind, t=targets):
            return _evaluation(runner, state, loader, rows, k, t)

        # Read once per target kind: every method's rows pair with it.
        before = cache(partial(evaluate, before_state, runner.model_loader(model)))

        runner.stage(
            f"pebench/{kind}/before",
            lambda k=kind, before=before: pebench_rows(
                CellId("pebench", "pebench", "before", k, 0, 1), [before()]
            ),
        )
        for entry in runner.config.methods_of("pebench"):
            cell = CellId("pebench", "pebench", entry.name, kind, 1, 1)

            def train(seed: int, e=entry, k=kind, t=targets, f=forget, r=retain):
                return runner.request(
                    model,
                    [f"{k}:{x}" for x in t],
                    [],
                    e,
                    "pebench",
                    pairs=lambda: (f, r),
                    seed=seed,
                )

            def after(outcome, evaluate=evaluate) -> dict[str, Any]:
                assert outcome.out_dir is not None
                state = f"request:{outcome.out_dir.name}"
                return evaluate(state, runner.model_loader(model, outcome.out_dir))

            def rows_of(outcome, c=cell, after=after, before=before) -> list[ResultRow]:
                if not outcome.ok:
                    return [c.status(outcome.status, outcome.detail or outcome.status)]
                return pebench_rows(c, [after(outcome)], before())

            runner.cell_stage(
                f"pebench/{kind}/{entry.name}",
                cell,
                train,
                rows_of,
                lambda outcomes, c=cell, after=after, before=before: pebench_rows(
                    c, [after(o) for o in outcomes], before()
                ),
            )


def _evaluation(
    runner: Runner, state: str, loader, rows, kind: str, targets: list[str]
) -> dict[str, Any]:
    """The PEBench evaluation of a model state (summary and per-item records), cached."""
    from pulse.eval.generation import GenConfig

    key = content_key("pebench", state, kind, targets, runner.config.eval.model_dump(mode="json"))
    evaluation = runner.store.read_json("evals", f"{key}.json")
    if evaluation is None:
        model, processor = loader()
        cfg = GenConfig(runner.config.eval.batch_size, runner.config.eval.max_new_tokens, False)
        result = pebench_eval(model, processor, rows, targets, kind=kind, cfg=cfg)
        evaluation = {"state": state, **result}
        runner.store.write_json(evaluation, "evals", f"{key}.json")
    return evaluation


def pebench_rows(
    cell: CellId, runs: Sequence[dict[str, Any]], before: dict[str, Any] | None = None
) -> list[ResultRow]:
    """A cell's PEBench scores from its evaluations (one per training seed; several pool as
    the MCQ rows do: the mean over seeds, intervals drawn over seeds and units), each with its
    95 % interval and, given the before state's evaluation, the paired interval of its change.

    The unit a bootstrap draws is the concept a record is about (a person or an event: its
    images are not independent) when a group holds two or more of them, else the image (the
    target's own images, when one person or event is forgotten). Efficacy and generality are
    1 minus the mean score, so their bounds are turned around.
    """
    groups = [_by_group(run) for run in runs]
    earlier = _by_group(before) if before is not None else None
    out = []
    for group in GROUPS:
        chosen = [_units(g.get(group, [])) for g in groups]
        if not all(chosen):
            continue
        forget_side = group in FORGET_GROUPS
        means = [tally(c).mean for c in chosen]
        value = sum(1.0 - m if forget_side else m for m in means) / len(means)
        interval = person_bootstrap_over_seeds(chosen)
        change = None
        if earlier is not None and earlier.get(group):
            change = paired_person_bootstrap_over_seeds(chosen, [_units(earlier[group])])
        if forget_side:
            interval, change = _turned(interval, 1.0), _turned(change, 0.0)
        n = len(chosen[0])
        out.append(cell.row(group, "multimodal", "score", value, n, interval, change, len(runs)))
    return out


def _by_group(evaluation: dict[str, Any]) -> dict[str, list[ItemRecord]]:
    groups: dict[str, list[ItemRecord]] = {}
    for record in records_from_dicts(evaluation.get("records") or []):
        groups.setdefault(str(record.extras.get("group")), []).append(record)
    return groups


def _units(records: list[ItemRecord]) -> list[ItemRecord]:
    """Records keyed by the unit a bootstrap draws (see :func:`pebench_rows`)."""
    if len({r.entity_id for r in records}) >= 2:
        return records
    return [replace(r, entity_id=r.item_id) for r in records]


def _turned(interval: Interval | None, offset: float) -> Interval | None:
    """The interval of ``offset - x`` from that of x (1 - x for a score, -x for a change)."""
    return None if interval is None else Interval(offset - interval.high, offset - interval.low)
