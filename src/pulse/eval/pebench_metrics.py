"""PEBench's metrics with deterministic matching instead of a GPT judge.

Per response:

- **name precision** (person questions): 1 if the person's full name is mentioned and no other
  known person's full name is, else 0. Names match case-insensitively, whitespace-normalised, at
  word boundaries; a mention inside a longer mention of another name does not count (with
  persons "Ann Lee" and "Mary Ann Lee", the response "Mary Ann Lee" names only the latter). A
  first name alone is not a mention. So the score is the precision of the *set* of names given,
  made strict: naming the right person among others scores 0.
- **keyword score** (event questions): the fraction of the event's distinct keywords found,
  case-insensitively, at word boundaries; the last word of a keyword also matches its simple
  plural / singular (``-s``, ``-es``, ``-y``/``-ies``).

Aggregation over per-item records tagged (``extras["group"]``) with a group:

- ``efficacy``   (forget target, seen images):   ``1 - mean score`` — higher means forgotten;
- ``generality`` (forget target, unseen images): ``1 - mean score``;
- ``retain``     (other persons / events):       ``mean score`` — higher means kept;
- ``scope``      (the other concept in the forget images, e.g. the event after forgetting the
  person): ``mean score``.

So all four are "higher is better". Person and event targets are summarised separately: pass the
records of one target at a time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pulse.eval.records import ItemRecord, Tally, check_unique, tally


class PEBenchGroup(StrEnum):
    EFFICACY = "efficacy"
    GENERALITY = "generality"
    RETAIN = "retain"
    SCOPE = "scope"


# Groups where the score is of the forget target, so success is its absence.
FORGET_GROUPS = frozenset({PEBenchGroup.EFFICACY, PEBenchGroup.GENERALITY})


def _phrase_pattern(words: Sequence[str], last_forms: Iterable[str] | None = None) -> str:
    body = [re.escape(w) for w in words]
    if last_forms is not None:
        body[-1] = "(?:" + "|".join(re.escape(f) for f in sorted(set(last_forms))) + ")"
    return r"(?<!\w)" + r"\s+".join(body) + r"(?!\w)"


def _name_spans(text: str, name: str) -> list[tuple[int, int]]:
    words = name.split()
    if not words:
        raise ValueError("empty person name")
    pattern = re.compile(_phrase_pattern(words), re.IGNORECASE)
    return [m.span() for m in pattern.finditer(text)]


def name_precision(response: str, name: str, other_names: Iterable[str]) -> float:
    """1.0 if ``name`` is mentioned and no name in ``other_names`` is, else 0.0 (see module)."""
    target = " ".join(name.split()).lower()
    others = {" ".join(o.split()).lower() for o in other_names} - {target, ""}
    spans = [(s, e, True) for s, e in _name_spans(response, target)]
    for other in sorted(others):
        spans.extend((s, e, False) for s, e in _name_spans(response, other))
    # Keep only maximal mentions: drop a span lying inside a longer one.
    kept = [
        span
        for span in spans
        if not any(
            o[0] <= span[0] and span[1] <= o[1] and (o[1] - o[0]) > (span[1] - span[0])
            for o in spans
        )
    ]
    return 1.0 if any(t for *_, t in kept) and all(t for *_, t in kept) else 0.0


def _word_forms(word: str) -> set[str]:
    """The word, its simple plural and, if it looks plural, its singular."""
    w = word.lower()
    forms = {w, w + "s", w + "es"}
    if len(w) > 1 and w.endswith("y") and w[-2] not in "aeiou":
        forms.add(w[:-1] + "ies")
    if w.endswith("ies") and len(w) > 3:
        forms.add(w[:-3] + "y")
    if w.endswith("es") and len(w) > 2:
        forms.add(w[:-2])
    if w.endswith("s") and not w.endswith(("ss", "us", "is")) and len(w) > 1:
        forms.add(w[:-1])
    return forms


def keyword_matches(response: str, keywords: Iterable[str]) -> dict[str, bool]:
    """Each distinct keyword (lower-cased, whitespace-normalised) -> found in the response."""
    found: dict[str, bool] = {}
    for keyword in keywords:
        words = keyword.lower().split()
        if not words:
            raise ValueError("empty event keyword")
        key = " ".join(words)
        if key in found:
            continue
        pattern = _phrase_pattern(words, _word_forms(words[-1]))
        found[key] = re.search(pattern, response, re.IGNORECASE) is not None
    return found


def keyword_score(response: str, keywords: Iterable[str]) -> float:
    """``|keywords found| / |distinct keywords|``."""
    found = keyword_matches(response, keywords)
    if not found:
        raise ValueError("an event needs at least one keyword")
    return sum(found.values()) / len(found)


@dataclass(frozen=True)
class PEBenchSummary:
    """The four metrics (None when a group has no items) and the raw mean score per group."""

    efficacy: float | None
    generality: float | None
    retain: float | None
    scope: float | None
    tallies: dict[str, Tally]

    def to_dict(self) -> dict[str, Any]:
        return {
            "efficacy": self.efficacy,
            "generality": self.generality,
            "retain": self.retain,
            "scope": self.scope,
            "tallies": {k: t.to_dict() for k, t in self.tallies.items()},
        }


def pebench_summary(records: Sequence[ItemRecord], *, group_key: str = "group") -> PEBenchSummary:
    """Aggregate scored records of one target kind, each tagged ``extras[group_key]``."""
    check_unique(records)
    groups: dict[PEBenchGroup, list[ItemRecord]] = {g: [] for g in PEBenchGroup}
    for r in records:
        tag = r.extras.get(group_key)
        try:
            groups[PEBenchGroup(tag)].append(r)
        except ValueError:
            allowed = ", ".join(g.value for g in PEBenchGroup)
            raise ValueError(
                f"record {r.item_id}: extras[{group_key!r}] is {tag!r}, expected one of {allowed}"
            ) from None
    tallies = {g.value: tally(groups[g]) for g in PEBenchGroup}

    def metric(g: PEBenchGroup) -> float | None:
        mean = tallies[g.value].mean
        if mean is None:
            return None
        return 1.0 - mean if g in FORGET_GROUPS else mean

    return PEBenchSummary(
        efficacy=metric(PEBenchGroup.EFFICACY),
        generality=metric(PEBenchGroup.GENERALITY),
        retain=metric(PEBenchGroup.RETAIN),
        scope=metric(PEBenchGroup.SCOPE),
        tallies={k: tallies[k] for k in sorted(tallies)},
    )
