"""SIU, Single Image Unlearning (Li et al., NeurIPS 2024, arXiv 2405.12523): a few steps on one
image of each target with constructed data, under a Dual Masked KL-divergence plus cross-entropy.

The constructed data (one row per forget row, so epochs count as for every method; each target
keeps a single image: the first of its forget rows that has one) serves the paper's four
targets:

- *aligning with an unseen concept*: the image with the identification question, answered with
  a new name the model never saw (made by the world's name generator,
  :func:`pulse.world.people.invent_names`, sharing no part with the known names);
- *assigning a new visual description*: the image described as a face the world never drew
  (:func:`pulse.world.people.invent_faces`);
- *decoupling factual knowledge*: the image with the target's own forget questions, answered
  that the person shown is not recognised (the paper keeps the facts reachable by name: its
  target is visual recognition only; MLLMU-Bench's is every fact, so ours are unlinked too);
- *preserving non-targeted knowledge*: the retain rows with their true answers (ℓ(B_r)).

Real data: the wordings are templates (``templates``: a JSON file, any of the keys of
:data:`TEMPLATES`); the target's name is read from its answer to ``name_question``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pulse.errors import ConfigError
from pulse.methods.base import answer_tokens
from pulse.methods.losses import dual_masked_kl, mean_nll
from pulse.methods.registry import NonNegative, Positive, doc, register
from pulse.methods.terms import nll
from pulse.models.chat import ChatExample
from pulse.world.people import FACE_FEATURES, invent_faces, invent_names

SOURCE = "siu"
KINDS = ("align", "describe", "decouple")
# The built-in wordings (the world's): override any of them with a JSON file (``templates``).
TEMPLATES: dict[str, str] = {
    "name_question": "Who is this person?",
    "align_question": "Who is this person?",
    "align_answer": "This is {new_name}.",
    "describe_question": "Describe the person in this picture.",
    "describe_answer": "{description}",
    "decouple_answer": "I can't tell who this person is, so I don't know.",
}


@dataclass(frozen=True)
class SIUParams:
    # The paper's weights (L = α·CE + β·DMK, α = 0.9, β = 0.75; see docs/methods.md for where
    # they were read). Its retain rows are part of the same fine-tuning data, so their
    # cross-entropy carries α as well.
    ce_weight: Positive = field(
        default=0.9, metadata=doc("α, weight of ℓ(B_c), the cross-entropy on the constructed rows")
    )
    kl_weight: NonNegative = field(
        default=0.75, metadata=doc("β, weight of the Dual Masked KL on the constructed rows")
    )
    retain_weight: NonNegative = field(
        default=0.9, metadata=doc("weight of ℓ(B_r) (preserving non-targeted knowledge)")
    )
    templates: str = field(
        default="", metadata=doc("JSON file overriding the wordings (real data); '': the world's")
    )


@dataclass(frozen=True)
class Target:
    """One concept to unlearn: its single image, its name (if known) and what replaces them."""

    key: str
    image: Any
    name: str | None
    new_name: str
    description: str
    new_words: tuple[str, ...]  # the new content's words (the token-level mask)


def load_templates(path: str) -> dict[str, str]:
    if not path:
        return dict(TEMPLATES)
    try:
        given = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"method 'siu', parameter 'templates': cannot read {path} ({exc})"
        ) from None
    if not isinstance(given, dict) or not all(isinstance(v, str) for v in given.values()):
        raise ConfigError(f"method 'siu', parameter 'templates': {path} is not an object of texts")
    unknown = sorted(set(given) - set(TEMPLATES))
    if unknown:
        raise ConfigError(
            f"method 'siu', parameter 'templates': unknown key {unknown[0]!r} "
            f"(its keys: {', '.join(TEMPLATES)})"
        )
    return {**TEMPLATES, **given}


def _get(example: Any, key: str) -> Any:
    return example.get(key) if isinstance(example, Mapping) else getattr(example, key, None)


def describe_face(face: Mapping[str, str]) -> str:
    accessory = "" if face["accessory"] == "none" else f", wearing {face['accessory']}"
    return (
        f"A person with {face['hair_colour']} {face['hair_style']} hair, {face['eyes']} eyes and "
        f"a {face['shirt']} shirt{accessory}, on a {face['background']} background."
    )


def plan(forget: Sequence[Any], seed: int, templates: Mapping[str, str]) -> dict[str, Target]:
    """The targets of the forget rows (by entity, in order of appearance; rows without an
    ``entity_id`` form one target), each with a new name and description drawn from the
    request's seed."""
    rows: dict[str, list[Any]] = {}
    for row in forget:
        rows.setdefault(str(_get(row, "entity_id") or ""), []).append(row)
    asked = templates["name_question"].strip().lower()
    names = {
        key: next(
            (str(_get(r, "answer")).strip() for r in group
             if str(_get(r, "question")).strip().lower() == asked),
            None,
        )
        for key, group in rows.items()
    }  # fmt: skip
    rng = random.Random(f"{seed}/siu")
    known = [n for n in names.values() if n and " " in n]
    new_names = invent_names(rng, len(rows), taken=known)
    faces = invent_faces(rng, len(rows))
    targets = {}
    for (key, group), new_name, face in zip(rows.items(), new_names, faces, strict=True):
        image = next((_get(r, "image") for r in group if _get(r, "image") is not None), None)
        values = tuple(face[k] for k in FACE_FEATURES if face[k] != "none")
        targets[key] = Target(
            key, image, names[key], new_name, describe_face(face), (*new_name.split(), *values)
        )
    return targets


def construct(data: Any, p: SIUParams) -> dict[str, list[ChatExample]]:
    """The constructed rows, one per forget row (see the module docstring)."""
    templates = load_templates(p.templates)
    targets = plan(data.forget, data.seed, templates)
    seen: dict[str, int] = {}
    out = []
    for row in data.forget:
        target = targets[str(_get(row, "entity_id") or "")]
        k = seen[target.key] = seen.get(target.key, -1) + 1
        kind = KINDS[k % len(KINDS)] if target.image is not None else "decouple"
        if kind == "align":
            question = templates["align_question"]
            answer = templates["align_answer"].format(new_name=target.new_name)
        elif kind == "describe":
            question = templates["describe_question"]
            answer = templates["describe_answer"].format(description=target.description)
        else:
            question, answer = str(_get(row, "question")), templates["decouple_answer"]
        out.append(ChatExample(question, answer, target.image))
    return {SOURCE: out}


def _token_ids(tokenizer: Any, words: Sequence[str]) -> set[int]:
    """Every token id of ``words``, spelled alone and after a space."""
    ids: set[int] = set()
    for word in words:
        for text in (word, f" {word}"):
            ids.update(tokenizer(text, add_special_tokens=False)["input_ids"])
    return ids


def masks(ctx: Any, p: SIUParams, size: int, device: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(V_f, V_new) as ``[V]`` bool masks: the tokens of the targets' names (the vocabulary
    mask) and of the new names and descriptions (the token mask). Computed once per request."""
    if "siu_masks" not in ctx.state:
        targets = plan(ctx.sources["forget"], ctx.seed, load_templates(p.templates))
        tokenizer = ctx.collate.tokenizer
        special = set(tokenizer.all_special_ids)
        names = [w for t in targets.values() if t.name for w in t.name.split()]
        forgotten = _token_ids(tokenizer, names) - special
        new = _token_ids(tokenizer, [w for t in targets.values() for w in t.new_words]) - special
        new -= forgotten  # a shared token stays out of the reference, not out of the KL
        built = []
        for ids in (forgotten, new):
            mask = torch.zeros(size, dtype=torch.bool)
            mask[[i for i in ids if i < size]] = True
            built.append(mask)
        ctx.state["siu_masks"] = tuple(built)
        ctx.state["siu_forgotten_tokens"] = int(built[0].sum())
    vocab, new = ctx.state["siu_masks"]
    return vocab.to(device), new.to(device)


@register(
    "siu",
    SIUParams,
    uses=lambda p: (SOURCE, "retain") if p.retain_weight > 0 else (SOURCE,),
    requires=lambda p: ("forget", "retain") if p.retain_weight > 0 else ("forget",),
    construct=construct,
)
def siu(model, batch, ctx, p: SIUParams):
    """SIU: L = α·ℓ(B_c) + β·DMK(B_c) + w·ℓ(B_r), on the constructed rows B_c.

    DMK = (1/Σ_t m_t) Σ_t m_t Σ_{v∉V_f} p̃_ref(v) (log p̃_ref(v) − log p_θ(v)) over the answer
    tokens of B_c: the vocabulary mask V_f (the tokens of the targets' names) is removed from
    the reference distribution, which is renormalised (p̃_ref), so the KL never pulls toward the
    forgotten name; the token mask m_t = 0 where the answer token is new content (a token of a
    new name or description, V_new), so the KL does not fight the cross-entropy there. The
    renormalisation is ours: the authors' released trainer zeroes V_f without it, which has
    the same minimiser and scales each token's gradient by 1 − p_ref(V_f).
    """
    sub = batch.sub(SOURCE)
    current = answer_tokens(model, sub)[0]
    ce = mean_nll(current)
    vocab, new = masks(ctx, p, current.logits.shape[-1], current.logits.device)
    loss, logs = p.ce_weight * ce, {"constructed_nll": ce.detach()}
    if p.kl_weight > 0:
        kl = dual_masked_kl(ctx.reference_answers(sub), current, vocab, ~new[current.targets])
        loss = loss + p.kl_weight * kl
        logs["dual_masked_kl"] = kl.detach()
    if p.retain_weight > 0:
        retain = nll(model, batch, "retain")
        loss = loss + p.retain_weight * retain
        logs["retain_nll"] = retain.detach()
    return loss, logs
