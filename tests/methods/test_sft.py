"""The supervised loss of the shared loop: token and sequence reductions, by hand."""

from __future__ import annotations

import torch

from pulse.methods.base import UnlearnBatch
from pulse.methods.sft import SFTParams, sft_loss
from pulse.models.chat import ChatCollator, ChatExample


def test_token_and_sequence_reductions(tiny, processor):
    model, _ = tiny
    examples = [ChatExample("Who?", "A"), ChatExample("Where?", "a much longer answer here")]
    batch = ChatCollator(processor)(examples)
    with torch.no_grad():
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    lp = logits[:, :-1].log_softmax(-1)
    labels = batch["labels"][:, 1:]
    mask = labels != -100
    token_lp = lp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1) * mask
    by_token = -token_lp.sum() / mask.sum()
    by_sequence = -(token_lp.sum(1) / mask.sum(1)).mean()
    assert not torch.isclose(by_token, by_sequence)  # the answers' lengths differ
    ub = UnlearnBatch(forget=batch)
    with torch.no_grad():
        token, _ = sft_loss(model, ub, None, SFTParams("token"))
        sequence, _ = sft_loss(model, ub, None, SFTParams("sequence"))
    torch.testing.assert_close(token, by_token, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(sequence, by_sequence, rtol=1e-4, atol=1e-5)
