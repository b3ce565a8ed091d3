"""Membership inference in a protocol run: which pairs every model state is scored on.

A scenario's *members* are the people of its forget-type splits (trained on, then unlearned);
its *non-members* the holdout people of the same kind, never trained on: fictitious people for
the scenarios of the fine-tuned model, celebrities for the pretrained scenario. Each person's
training pairs are sampled as the unlearning requests sample them (``train.pairs_per_id``,
seeded by the person's ID and the training seed) and capped at ``privacy.pairs_per_person``
(8): the first pairs of that seed's draw, so the members' pairs are among the very pairs
unlearned under that seed. With ``repeats`` each training seed's requests unlearn their own
sample, so each seed has its own plan: its states are scored on its pairs, and the before
model and the oracle on every seed's (their rows pool the seeds' plans, as a request's pool
its seeds). Where the requests take every pair (no ``train.pairs_per_id``) the seeds share one
plan. Every pair is scored with its image (multimodal) and, when its question names the
person rather than pointing at the picture, without it (text-only), as the fine-tuning data
holds it.

With the synthetic world the holdout is the world's (``Holdout_Set``, ``Holdout_Celebrities``);
with local checkpoints it must be named (``privacy.holdout``, ``privacy.holdout_celebrities``:
a split file, an MLLMU-Bench config or a comma list of IDs, e.g. the people left out of
fine-tuning with ``pulse finetune --exclude``). Without one the rows are absent, and the
report says why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from pulse.errors import ConfigError
from pulse.eval.membership import MIN_K

if TYPE_CHECKING:
    from pulse.data.schema import TrainPair
    from pulse.eval.membership import PairToScore
    from pulse.protocol.cells import Population
    from pulse.protocol.engine import Engine


class PrivacyConfig(BaseModel):
    """The ``privacy`` section: membership inference on every state of the MCQ scenarios."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    # Fictitious people never fine-tuned on (a split file, an MLLMU-Bench config, IDs);
    # None: the world's Holdout_Set when the run uses the world, else no membership rows.
    holdout: str | None = None
    # Celebrities never pre-trained on, likewise (the world's Holdout_Celebrities).
    holdout_celebrities: str | None = None
    # The share of lowest-scored tokens Min-K % and Min-K %++ average.
    min_k: float = Field(MIN_K, gt=0, le=1)
    # Pairs scored per person, at most: the first of the seeded draw of the scenario's
    # train.pairs_per_id under the training seed, so they lie inside what its requests unlearn;
    # None: every pair it unlearns. 8 keeps a state's scoring near half its MCQ evaluation
    # (docs/benchmarks.md).
    pairs_per_person: int | None = Field(8, ge=1)


@dataclass(frozen=True)
class PairPlan:
    """The pairs every state of a scenario is scored on."""

    members: tuple[str, ...]
    holdout: tuple[str, ...]
    pairs_per_person: int | None
    min_k: float
    seed: int
    # The requests' sample of each person (train.pairs_per_id) where the pairs scored are the
    # first pairs_per_person of its draw and a draw of pairs_per_person alone would differ;
    # None where they are the same (out of the cache key then: keys stay as they were).
    drawn: int | None = None

    def identity(self) -> dict[str, Any]:
        """The plan in cache keys."""
        data = asdict(self)
        if data["drawn"] is None:
            del data["drawn"]
        return data


def _holdout_spec(engine: Engine, group: Population) -> tuple[str, str | None] | None:
    """(config key, what it names) of the group's kind of people; None for other people."""
    cfg, data = engine.config.privacy, engine.config.data
    if group.config == data.celebrities:
        key, spec, kind = "privacy.holdout_celebrities", cfg.holdout_celebrities, "celebrities"
    elif group.config == data.fictitious:
        key, spec, kind = "privacy.holdout", cfg.holdout, "fictitious"
    else:
        return None
    mllmu = engine.sources.mllmu
    if spec is None and engine.sources.world_oracles is not None and mllmu is not None:
        from pulse.world.build import HOLDOUT_CELEBRITIES, HOLDOUT_FICTITIOUS

        default = HOLDOUT_FICTITIOUS if kind == "fictitious" else HOLDOUT_CELEBRITIES
        if (Path(mllmu) / default).is_dir():
            spec = default
    return key, spec


def privacy_plan(
    engine: Engine,
    scenario: str,
    group: Population,
    splits: Mapping[str, Sequence[str]],
    seed: int | None = None,
) -> PairPlan | None:
    """The scenario's pairs to score for the states trained under ``seed`` (default: the
    run's seed, its first training seed), or None (privacy off, no holdout, no forget
    split)."""
    from pulse.methods.request import resolve_ids
    from pulse.protocol.metrics.mia_auc import PRIVACY_SPLITS

    cfg = engine.config.privacy
    found = _holdout_spec(engine, group) if cfg.enabled else None
    if found is None or found[1] is None or engine.sources.mllmu is None:
        return None
    key, spec = found
    members = sorted({p for s, people in splits.items() if s in PRIVACY_SPLITS for p in people})
    if not members:
        return None
    holdout, _ = resolve_ids(spec, engine.sources.mllmu)
    trained = sorted(set(holdout) & set(group.people))
    if trained:
        raise ConfigError(
            f"{key}: {trained[0]!r} is one of the scenario's own people (trained on), not a "
            "holdout person"
        )
    if len(holdout) < 2:
        raise ConfigError(f"{key}: {spec!r} names {len(holdout)} people; membership needs two")
    sampled = engine.config.train_of(scenario).pairs_per_id
    caps = [c for c in (cfg.pairs_per_person, sampled) if c]
    limit = min(caps) if caps else None
    # The requests draw their sample under their training seed; taking every pair, all seeds
    # unlearn the same pairs and share the run's seed's plan (scored once).
    if seed is None or sampled is None:
        seed = engine.config.seed
    plan = PairPlan(tuple(members), tuple(sorted(holdout)), limit, cfg.min_k, seed)
    if limit is not None and sampled is not None and limit < sampled:
        # The scored pairs are the first ``limit`` of the requests' own draw of ``sampled``
        # (kept out of the plan, and its key, where a draw of ``limit`` gives the same pairs).
        inside = replace(plan, drawn=sampled)
        if _draws_differ(Path(engine.sources.mllmu), plan, inside):
            return inside
    return plan


@lru_cache(maxsize=64)  # a scenario's plan is asked for by every cell
def _draws_differ(mllmu: Path, plan: PairPlan, inside: PairPlan) -> bool:
    from pulse.methods.request import train_pairs

    pairs = train_pairs(mllmu, [*plan.members, *plan.holdout])
    return _plan_sample(inside, pairs) != _plan_sample(plan, pairs)


def _plan_sample(plan: PairPlan, pairs: Sequence[TrainPair]) -> list[TrainPair]:
    """The pairs of ``pairs`` (every training pair of some people) that ``plan`` scores."""
    from pulse.methods.request import sample_per_entity

    if plan.pairs_per_person is None:
        return list(pairs)
    if plan.drawn is None:
        return sample_per_entity(pairs, plan.pairs_per_person, plan.seed)
    return sample_per_entity(pairs, plan.drawn, plan.seed, first=plan.pairs_per_person)


def pairs_to_score(mllmu: Path, plan: PairPlan) -> list[PairToScore]:
    """Every pair of ``plan``: each person's training pairs (sampled as the requests sample
    them), with the image and, where the question names the person, without it."""
    from pulse.eval.membership import PairToScore
    from pulse.methods.request import train_pairs
    from pulse.world.train import training_views

    out: list[PairToScore] = []
    for people, member in ((plan.members, True), (plan.holdout, False)):
        pairs = train_pairs(mllmu, list(people))
        place: dict[int, int] = {}  # a pair's place among its person's pairs, before sampling
        counter: dict[str, int] = {}
        for pair in pairs:
            place[id(pair)] = counter.get(pair.entity_id, 0)
            counter[pair.entity_id] = place[id(pair)] + 1
        for pair in _plan_sample(plan, pairs):
            k = place[id(pair)]
            out += [
                PairToScore(pair.entity_id, k, member, pair.question, pair.answer, image)
                for image in training_views(pair)  # as fine-tuning holds the pair
            ]
    return out
