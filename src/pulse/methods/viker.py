"""ViKeR, Visual-Guided Key-Token Regularization (Cai et al. 2026, arXiv 2601.22020).

Idea (the paper's): what a model that never learnt the person would answer is predicted by the
model itself shown an *irrelevant* image with the same question: the reference model's
token distributions under irrelevant images stand for the ideal post-unlearning ones.
Unlearning is regularised toward them, and tokens are weighted by the entropy of that
prediction: a token the model cannot predict without the right face (high entropy: a name, a
city) is a key token and gets a larger weight; one it predicts anyway ("the", "is") a smaller
one.

The paper's method section could not be read here (checked again 2026-12-06: only its abstract
and the opening of a summary, up to its key-token section, were found), so the
exact loss below is PULSE's formulation of that description, not a transcription: the forget
term, the KL direction, the explicit weighting (entropy over its batch mean; the paper may
reweight only implicitly, through the regulariser's gradient), the mean over K images and the
choice of irrelevant images (portraits of retain people, seeded per row; a plain grey image
when the retain rows have none) are ours. See docs/methods.md for what was confirmed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from PIL import Image

from pulse.errors import ModelError
from pulse.methods.base import answer_tokens
from pulse.methods.losses import entropy_weighted_kl, mean_nll, npo_loss, sequence_logprob
from pulse.methods.registry import NonNegative, Positive, PositiveInt, check, doc, register
from pulse.methods.terms import RetainKind, retain_uses, with_retain
from pulse.models.chat import ChatExample

MAX_IMAGES = 4


@dataclass(frozen=True)
class ViKeRParams:
    forget: Literal["npo", "ga", "none"] = field(
        default="npo", metadata=doc("the unlearning term regularised: NPO, GA or none")
    )
    beta: Positive = field(default=0.1, metadata=doc("β of the NPO forget term"))
    reg_weight: NonNegative = field(
        default=1.0, metadata=doc("λ, weight of the entropy-weighted KL toward q")
    )
    images: PositiveInt = field(
        default=1, metadata=doc(f"K irrelevant images per forget row (1..{MAX_IMAGES}), averaged")
    )
    retain: RetainKind = field(
        default="nll", metadata=doc("retain term: ℓ(B_r) (nll), KL(p_ref ‖ p_θ) on B_r (kl), none")
    )
    retain_weight: NonNegative = field(default=1.0, metadata=doc("weight of the retain term"))

    def __post_init__(self) -> None:
        check(self.images <= MAX_IMAGES, "viker", "images", f"1..{MAX_IMAGES}", self.images)
        both = self.forget != "none" or self.reg_weight > 0
        check(both, "viker", "reg_weight", "> 0 when forget is none", self.reg_weight)


def sources(p: ViKeRParams) -> tuple[str, ...]:
    return tuple(f"irrelevant{k}" for k in range(p.images))


def _get(example: Any, key: str) -> Any:
    return example.get(key) if isinstance(example, Mapping) else getattr(example, key, None)


def construct(data: Any, p: ViKeRParams) -> dict[str, list[ChatExample]]:
    """For each k < K: every forget row with its image replaced by an irrelevant one (a retain
    row's image, drawn per row from the request's seed); rows without an image stay text."""
    pool = [_get(r, "image") for r in data.retain if _get(r, "image") is not None]
    if not pool:
        pool = [Image.new("RGB", (64, 64), (128, 128, 128))]
    out = {}
    for k, name in enumerate(sources(p)):
        rows = []
        for i, row in enumerate(data.forget):
            image = _get(row, "image")
            if image is not None:
                image = random.Random(f"{data.seed}/viker/{k}/{i}").choice(pool)
            rows.append(ChatExample(str(_get(row, "question")), str(_get(row, "answer")), image))
        out[name] = rows
    return out


def target_distribution(ctx: Any, batch: Any, p: ViKeRParams, like: Any) -> torch.Tensor:
    """log q_t = log (1/K) Σ_k p_ref(· | irrelevant image k, x, y_<t) per forget answer token."""
    logs = []
    with ctx.reference() as ref:
        for name in sources(p):
            answers = answer_tokens(ref, batch.sub(name))[0]
            if not torch.equal(answers.targets, like.targets):
                raise ModelError("viker: irrelevant-image rows do not match the forget rows")
            logs.append(answers.logits.float().log_softmax(-1))
    return torch.logsumexp(torch.stack(logs), 0) - math.log(len(logs))


@register(
    "viker",
    ViKeRParams,
    uses=lambda p: ("forget", *sources(p), *retain_uses(p.retain, p.retain_weight)),
    cached=lambda p: ("forget",) if p.forget == "npo" else (),
    construct=construct,
)
def viker(model, batch, ctx, p: ViKeRParams):
    """ViKeR: L = L_f + λ·(1/N) Σ_t w_t·KL(q_t ‖ p_θ(·|I, x, y_<t)) [+ w·retain term].

    q_t = (1/K) Σ_k p_ref(·|I'_k, x, y_<t): the reference model's prediction with K irrelevant
    images I'_k in place of the forget image I (the predicted post-unlearning distribution);
    w_t = H(q_t) / mean_s H(q_s), the entropy of that prediction over its batch mean (key
    tokens weigh more); N the forget answer tokens. L_f is NPO (−(2/β)·mean logσ(−β·r)), GA
    (−ℓ(B_f)) or none. Our formulation of the paper's description (see the module docstring).
    """
    current = answer_tokens(model, batch.sub("forget"))[0]
    logs: dict[str, torch.Tensor] = {}
    if p.forget == "npo":
        ratio = sequence_logprob(current) - ctx.reference_logprobs(batch, "forget")
        loss = npo_loss(ratio, p.beta)
        logs["npo"] = loss.detach()
    elif p.forget == "ga":
        loss = -mean_nll(current)
        logs["forget_nll"] = (-loss).detach()
    else:
        loss = current.logits.new_zeros((), dtype=torch.float32)
    if p.reg_weight > 0:
        reg, weights = entropy_weighted_kl(target_distribution(ctx, batch, p, current), current)
        loss = loss + p.reg_weight * reg
        logs["key_token_kl"] = reg.detach()
        logs["key_weight_max"] = weights.max().detach()
    return with_retain(loss, logs, model, batch, ctx, p.retain, p.retain_weight)
