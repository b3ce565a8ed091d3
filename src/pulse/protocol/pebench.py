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
from pathlib import Path
from typing import TYPE_CHECKING

from pulse.data.pebench import PEBenchRow, read_pebench
from pulse.data.schema import TrainPair
from pulse.errors import ConfigError
from pulse.eval.pebench import QUESTIONS, SEEN_SPLITS, pebench_eval
from pulse.protocol.measure import CellId, mean_rows
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
    for kind, wanted in (("person", spec.persons), ("event", spec.events)):
        targets = choose_targets(rows, kind, wanted, runner.config.seed)
        if not targets:
            continue
        runner.store.write_json(
            {"kind": kind, "targets": targets}, "splits", "pebench", f"{kind}.json"
        )
        forget = [p for p in concept_pairs(rows, kind) if p.entity_id in set(targets)]
        retain = [p for p in concept_pairs(rows, kind) if p.entity_id not in set(targets)]
        runner.stage(
            f"pebench/{kind}/before",
            lambda k=kind, t=targets: _measure(
                runner,
                CellId("pebench", "pebench", "before", k, 0, 1),
                f"model:{model.resolve()}",
                runner.model_loader(model),
                rows,
                k,
                t,
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

            def rows_of(outcome, c=cell, k=kind, t=targets) -> list[ResultRow]:
                if not outcome.ok:
                    return [c.status(outcome.status, outcome.detail or outcome.status)]
                assert outcome.out_dir is not None
                return _measure(
                    runner,
                    c,
                    f"request:{outcome.out_dir.name}",
                    runner.model_loader(model, outcome.out_dir),
                    rows,
                    k,
                    t,
                )

            runner.cell_stage(
                f"pebench/{kind}/{entry.name}",
                cell,
                train,
                rows_of,
                lambda outcomes, c=cell, rows_of=rows_of: mean_rows(
                    c, [rows_of(o) for o in outcomes]
                ),
            )


def _measure(
    runner: Runner, cell: CellId, state: str, loader, rows, kind: str, targets: list[str]
) -> list[ResultRow]:
    from pulse.eval.generation import GenConfig

    key = content_key("pebench", state, kind, targets, runner.config.eval.model_dump(mode="json"))
    summary = runner.store.read_json("evals", f"{key}.json")
    if summary is None:
        model, processor = loader()
        cfg = GenConfig(runner.config.eval.batch_size, runner.config.eval.max_new_tokens, False)
        result = pebench_eval(model, processor, rows, targets, kind=kind, cfg=cfg)
        summary = result["summary"]
        runner.store.write_json({"state": state, **result}, "evals", f"{key}.json")
    out = []
    for group in GROUPS:
        value = summary.get(group)
        if value is not None:
            n = summary["tallies"][group]["n"]
            out.append(cell.row(group, "multimodal", "score", value, n))
    return out
