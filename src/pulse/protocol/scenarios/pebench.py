"""PEBench targets: forget a person or an event, measure efficacy (seen images), generality
(unseen images), retain (other persons / events) and scope (the other concept in the target's
images); see :mod:`pulse.protocol.metrics.pebench_score`.

The model is ``models.pebench`` (already fine-tuned on the PEBench data) when given, else the
base model fine-tuned here (LoRA, merged) on the seen images for ``finetune_epochs`` (the
embedded default: the world's people and events are known from fine-tuning only). Unlearning data
for a target: its seen images asked its concept's question (forget) and every other seen image
asked the same question (retain).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from pulse.data.pebench import PEBenchRow, read_pebench
from pulse.data.schema import TrainPair
from pulse.errors import ConfigError
from pulse.eval.pebench import QUESTIONS, SEEN_SPLITS, pebench_eval
from pulse.eval.records import records_from_dicts
from pulse.models.collective import from_main, solo
from pulse.models.scope import UpdateScope
from pulse.protocol.cells import CellId, RequestOutcome
from pulse.protocol.config import Scenario
from pulse.protocol.engine import Engine
from pulse.protocol.measure import Measurement, metric_rows
from pulse.protocol.metrics.pebench_score import PEBENCH_GROUPS
from pulse.protocol.registry import Need, ScenarioType, register_scenario
from pulse.protocol.results import ResultRow
from pulse.protocol.splits import seeded_order
from pulse.protocol.store import content_key
from pulse.report.reading import clear_leader, ok_rows, pct
from pulse.report.tables import Column, Layout, Table

if TYPE_CHECKING:
    from pulse.methods.supervised import TrainConfig

NAME = "pebench"
KINDS = ("person", "event")  # the target kinds, each a setting of the table


class PEBenchScenario(Scenario):
    """Forget PEBench targets: ``persons`` / ``events`` are names, or a count drawn with the
    seed. The model is ``models.pebench`` when given, else the base model fine-tuned here on
    the seen images for ``finetune_epochs`` (0: ``models.pebench`` is required)."""

    # Unset: on with the synthetic world, and with local files when data.pebench is given.
    enabled: bool | None = None
    persons: list[str] | int = 1
    events: list[str] | int = 1
    finetune_epochs: float = Field(3, ge=0)
    finetune_lr: float = Field(1e-3, gt=0)

    def on_by_default(self, config) -> bool:
        return config.models.world is not None or config.data.pebench is not None

    def check_data(self, config, sources) -> None:
        rows = read_pebench(sources.pebench)
        for kind, wanted in zip(KINDS, (self.persons, self.events), strict=True):
            choose_targets(rows, kind, wanted, config.seed)


def choose_targets(
    rows: Sequence[PEBenchRow], kind: str, spec: list[str] | int, seed: int
) -> list[str]:
    """Named targets (checked) or ``spec`` of them from a seeded order."""
    present = sorted({getattr(r, kind) for r in rows})
    if isinstance(spec, int):
        if not 0 <= spec < len(present):
            raise ConfigError(
                f"scenarios.{NAME}: {spec} {kind} targets asked for, the data has {len(present)} "
                "(at least one must remain to measure retain)"
            )
        return sorted(seeded_order(present, seed)[:spec])
    unknown = [t for t in spec if t not in present]
    if unknown:
        raise ConfigError(f"scenarios.{NAME}: {kind} {unknown[0]!r} is not in the PEBench data")
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


def finetuned_model(engine: Engine, rows: Sequence[PEBenchRow]) -> Path:
    """The base model fine-tuned on both questions of every seen image (cached in the run;
    trained in one process of its own, rank 0's in a launched run)."""
    from pulse.methods.supervised import TrainConfig

    spec = engine.config.scenarios[NAME]
    out = engine.store.path("models", NAME)
    assert engine.sources.base is not None
    pairs = concept_pairs(rows, "person") + concept_pairs(rows, "event")
    train = engine.config.train_of(NAME)
    cfg = TrainConfig(
        epochs=spec.finetune_epochs,
        batch_size=train.batch_size,
        learning_rate=spec.finetune_lr,
        seed=engine.config.seed,
        progress=engine.progress,
    )
    scope = train.scope.update_scope()
    if from_main(lambda: (out / "config.json").is_file()):
        return out
    return solo(_finetune, engine.sources.base, scope, pairs, cfg, out)


def _finetune(base: Path, scope: UpdateScope, pairs: list[TrainPair], cfg: TrainConfig, out: Path):
    from pulse.methods.supervised import train_supervised
    from pulse.models.adapters import apply_scope, save_merged
    from pulse.models.loading import load_model_and_processor

    model, processor = load_model_and_processor(base, dtype="float32")
    model = apply_scope(model, scope)
    train_supervised(model, processor, pairs, cfg)
    save_merged(model, out, processor)
    return out


def measure(
    engine: Engine, state: str, model: Path, request: Path | None, rows, kind: str, targets
) -> Measurement:
    """The PEBench evaluation of a model state, through the run's evaluation cache."""
    from pulse.eval.generation import GenConfig

    key = content_key("pebench", state, kind, targets, engine.config.eval.model_dump(mode="json"))

    def evaluate() -> Measurement:
        loaded, processor = engine.model_loader(model, request)()
        cfg = GenConfig(engine.config.eval.batch_size, engine.config.eval.max_new_tokens, False)
        result = pebench_eval(loaded, processor, rows, targets, kind=kind, cfg=cfg, shard=True)
        return Measurement(pebench=records_from_dicts(result["records"]))

    return engine.measurer.cached(key, evaluate, {"state": state})


def run(engine: Engine, name: str) -> None:
    spec = engine.config.scenarios[name]
    assert engine.sources.pebench is not None
    rows = read_pebench(engine.sources.pebench)
    model = engine.sources.pebench_model or finetuned_model(engine, rows)
    for kind, wanted in zip(KINDS, (spec.persons, spec.events), strict=True):
        targets = choose_targets(rows, kind, wanted, engine.config.seed)
        if targets:
            _target_kind(engine, name, model, rows, kind, targets)


def _target_kind(
    engine: Engine, name: str, model: Path, rows, kind: str, targets: list[str]
) -> None:
    engine.store.write_json({"kind": kind, "targets": targets}, "splits", NAME, f"{kind}.json")
    pairs = concept_pairs(rows, kind)
    forget = [p for p in pairs if p.entity_id in set(targets)]
    retain = [p for p in pairs if p.entity_id not in set(targets)]
    splits: dict[str, list[str]] = {}  # PEBench groups its records itself

    def after(outcome: RequestOutcome) -> Measurement:
        assert outcome.out_dir is not None
        state = f"request:{outcome.out_dir.name}"
        return measure(engine, state, model, outcome.out_dir, rows, kind, targets)

    # Read once per target kind: every method's rows pair with it.
    before = cache(
        lambda: measure(engine, engine.model_state(model), model, None, rows, kind, targets)
    )
    before_cell = CellId.before(name, kind)
    engine.stage(f"{name}/{kind}/before", lambda: metric_rows(before_cell, [before()], splits))
    for entry in engine.config.methods_of(name):
        cell = CellId(name, entry.name, kind)

        def train(seed: int, entry=entry) -> RequestOutcome:
            return engine.request(
                model,
                [f"{kind}:{x}" for x in targets],
                [],
                entry,
                name,
                pairs=lambda: (forget, retain),
                seed=seed,
            )

        def rows_of(outcome: RequestOutcome, cell=cell) -> list[ResultRow]:
            if not outcome.ok:
                return [cell.status(outcome.status, outcome.detail or outcome.status)]
            return metric_rows(cell, [after(outcome)], splits, before())

        engine.cell_stage(
            f"{name}/{kind}/{entry.name}",
            cell,
            train,
            rows_of,
            lambda outcomes, cell=cell: metric_rows(
                cell, [after(o) for o in outcomes], splits, before()
            ),
        )


def needs(config, sources) -> list[Need]:
    """The data, and the PEBench model or the base model to fine-tune into one."""
    if sources.pebench_model is not None or config.scenarios[NAME].finetune_epochs == 0:
        model: Need = ("models.pebench", sources.pebench_model, "dir")
    else:
        model = ("models.base", sources.base, "dir")
    return [("data.pebench", sources.pebench, "file"), model]


# --- report -----------------------------------------------------------------------------------

COLUMNS = tuple(Column(group, "PEBench score", group, group, "score") for group in PEBENCH_GROUPS)
# A person target and an event target measure different things: never compared.
LAYOUT = Layout(
    "PEBench: person and event targets",
    COLUMNS,
    "target",
    KINDS,
    lambda row: row.setting,
    setting_first=True,
)


def reading(table: Table) -> list[str]:
    """Per target kind: the method with the highest efficacy, with its retain and scope."""
    out = []
    for target in dict.fromkeys(r.setting for r in table.method_rows):
        rows = ok_rows([r for r in table.method_rows if r.setting == target])
        scored = [r for r in rows if r.value("efficacy") is not None]
        if not scored:
            continue
        best_label = clear_leader({r.label: r.value("efficacy") for r in scored})
        if len(scored) > 1 and best_label is None:
            continue
        best = next(r for r in scored if r.label == best_label) if best_label else scored[0]
        extras = [
            f"{key} {pct(v)}" for key in ("retain", "scope") if (v := best.value(key)) is not None
        ]
        lead = "reaches the highest efficacy" if best_label else "reaches efficacy"
        out.append(
            f"Forgetting the {target} target in {table.scenario}, {best.method} {lead} "
            f"({pct(best.value('efficacy'))})" + (f" with {', '.join(extras)}." if extras else ".")
        )
    return out


NO_ORACLE = (
    "this scenario has none (no model fine-tuned on the PEBench data without the targets is built)"
)


register_scenario(
    ScenarioType(
        name=NAME,
        config=PEBenchScenario,
        run=run,
        layout=LAYOUT,
        reading=reading,
        needs=needs,
        no_oracle=NO_ORACLE,
    )
)
