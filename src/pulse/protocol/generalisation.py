"""Generalisation splits: every model state also answers the Test_Set questions of its people.

MLLMU-Bench's ``Test_Set`` asks about the fine-tuned (fictitious) people in other wordings and
shows them in other pictures (its ``images`` list); the synthetic world writes one the same way
(paraphrased questions, the renderings never trained on). A state that only hides what it was
asked to forget may still answer there. Every row of a split ``s`` of a scenario whose people
have Test_Set questions gets a twin split ``s_test`` (``forget_test``, ``retain_test``, and the
sequential scenario's ``current_test`` ...): the same metrics, the same intervals (people
resampled), its change against ``before`` on the same questions and its rows versus the
oracle on them. People without Test_Set questions (the celebrities) have no such split.

The Test_Set's multimodal questions go round its renderings: question ``k`` of a person shows
rendering ``k mod r`` of the ``r`` it lists (its ``image`` first, then ``images``), so both of the
world's unseen renderings are asked. The evaluation is cached like any other (``evals/``), and
measures no general capability (the Full_Set evaluation of the same state does).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pulse.data.mllmu import list_configs, profile_items
from pulse.data.schema import ItemKind, Modality, QAItem
from pulse.protocol.cells import CellId, Population, RequestOutcome
from pulse.protocol.measurement import Measurement
from pulse.protocol.results import ResultRow
from pulse.protocol.store import content_key

if TYPE_CHECKING:
    from pulse.data.mllmu import MLLMUProfile
    from pulse.protocol.engine import Engine

TEST_CONFIG = "Test_Set"
SUFFIX = "_test"


def twin_split(split: str) -> str:
    """The generalisation twin of a split's name (``forget`` -> ``forget_test``)."""
    return f"{split}{SUFFIX}"


def base_split(split: str) -> str:
    """The split a generalisation split twins (``forget_test`` -> ``forget``)."""
    return split.removesuffix(SUFFIX)


def unseen_items(profile: MLLMUProfile) -> list[QAItem]:
    """The MCQ items of a Test_Set profile, its multimodal ones going round its renderings."""
    renderings: list[bytes] = []
    for image in (profile.image, *(data for data, _ in profile.extra_images)):
        if image not in renderings:
            renderings.append(image)
    items = []
    shown = 0
    for item in profile_items(profile):
        if item.kind is not ItemKind.MCQ:
            continue
        if item.modality is Modality.MULTIMODAL:
            item = replace(item, image=renderings[shown % len(renderings)])
            shown += 1
        items.append(replace(item, id=f"{item.entity_id}/test/{item.id.split('/', 1)[1]}"))
    return items


class Generalisation:
    """The Test_Set questions of a run (read once) and the rows of its generalisation splits."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._items: dict[str, list[QAItem]] | None = None

    def items(self) -> dict[str, list[QAItem]]:
        """The Test_Set MCQ items by person (none without a Test_Set)."""
        if self._items is None:
            from pulse.data.mllmu import read_mllmu

            root = self.engine.sources.mllmu
            self._items = {}
            if root is not None and Path(root).is_dir() and TEST_CONFIG in list_configs(root):
                self._items = {p.id: unseen_items(p) for p in read_mllmu(root, TEST_CONFIG)}
        return self._items

    def people(self, group: Population) -> list[str]:
        if group.config == TEST_CONFIG:
            return []
        known = self.items()
        return sorted(p for p in group.people if known.get(p))

    def measure(self, state: str, load: Callable[[], Any], people: Sequence[str]) -> Measurement:
        """The state's records on the Test_Set questions of ``people`` (cached)."""
        measurer = self.engine.measurer
        people = sorted(people)
        key = content_key(
            state,
            TEST_CONFIG,
            "rendering-cycle",
            people,
            measurer.cfg.model_dump(mode="json"),
            measurer.seed,
        )

        def evaluate() -> Measurement:
            items = [item for p in people for item in self.items()[p]]
            model, processor = load()
            return measurer.evaluate(model, processor, items, general=False)

        describe = {"state": state, "config": TEST_CONFIG, "people": people}
        return measurer.cached(key, evaluate, describe)

    def of_model(self, model: Path, people: Sequence[str]) -> Measurement:
        return self.measure(*self.engine.state(model), people)

    def of_request(self, outcome: RequestOutcome, group: Population, people) -> Measurement:
        assert outcome.out_dir is not None
        return self.measure(*self.engine.state(group.model, outcome.out_dir), people)

    def rows(
        self,
        cell: CellId,
        group: Population,
        splits: Mapping[str, Sequence[str]],
        runs: Callable[[list[str]], list[Measurement]],
        *,
        against_before: bool = True,
    ) -> list[ResultRow]:
        """The rows of ``cell`` on the generalisation splits: ``runs(people)`` the measured
        states (one per training seed), against the before model and the oracle."""
        from pulse.protocol.measure import metric_rows

        people = self.people(group)
        if not people:
            return []
        known = set(people)
        twins = {
            twin_split(name): [p for p in ids if p in known]
            for name, ids in splits.items()
            if any(p in known for p in ids)
        }
        if not twins:
            return []
        wanted = sorted({p for ids in twins.values() for p in ids})
        before = self.of_model(group.model, wanted) if against_before else None
        oracle = self.of_model(group.oracle, wanted) if group.oracle is not None else None
        return metric_rows(cell, runs(wanted), twins, before, oracle)


def before_rows(engine: Engine, cell: CellId, group: Population, splits) -> list[ResultRow]:
    """The before row's generalisation splits."""
    g = engine.generalisation
    return g.rows(cell, group, splits, lambda p: [g.of_model(group.model, p)], against_before=False)


def oracle_rows(engine: Engine, cell: CellId, group: Population, splits) -> list[ResultRow]:
    """The oracle row's generalisation splits (its change against before; versus itself)."""
    g = engine.generalisation
    if group.oracle is None:
        return []
    oracle = group.oracle
    return g.rows(cell, group, splits, lambda p: [g.of_model(oracle, p)])


def request_rows(
    engine: Engine,
    cell: CellId,
    outcomes: Sequence[RequestOutcome],
    group: Population,
    splits,
) -> list[ResultRow]:
    """A request cell's generalisation splits, pooled over the training seeds given."""
    g = engine.generalisation
    return g.rows(cell, group, splits, lambda p: [g.of_request(o, group, p) for o in outcomes])
