"""Training data of a request and the collator that pairs each forget batch with a retain batch.

The loop iterates over the forget set (epochs count forget examples; the Trainer's sampler
shards them over processes). Each forget batch gets a retain batch drawn by the collator from a
generator seeded by (seed, process index, data-loader worker): ranks never draw the same retain
samples, and a run is reproducible. Retain examples are drawn without replacement from a
reshuffled cycle, so every retain example is seen before any repeats.

``idk`` rows are the forget questions (and images) answered with a refusal chosen per forget
example by a seeded generator, row for row with the forget rows. A method may construct sources
of its own the same way (``UnlearnData.constructed``, from its ``construct`` hook: SIU's
constructed targets, ViKeR's forget questions with irrelevant images): each is row for row with
the forget rows and is collated as a sub-batch of that name.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch
from torch.utils.data import Dataset, get_worker_info
from transformers import BatchFeature

from pulse.errors import ConfigError
from pulse.models.chat import ChatCollator, ChatExample
from pulse.models.encoded import DEFAULT_MAX_BYTES, ByteBudget, EncodedExamples
from pulse.models.packing import pack_batch
from pulse.models.parallel import split_batch

REFUSALS = (
    "I don't know.",
    "I'm not able to answer that.",
    "I have no information about that.",
    "Sorry, I can't help with that.",
    "I'm not sure.",
    "I cannot answer that question.",
)


def refusal_for(index: int, seed: int) -> str:
    """The refusal answer of forget example ``index`` (the same on every rank and run)."""
    return random.Random(f"{seed}/idk/{index}").choice(REFUSALS)


@dataclass
class UnlearnData:
    """A request's examples: anything :class:`~pulse.models.chat.ChatCollator` accepts
    (:class:`~pulse.data.schema.TrainPair`, :class:`~pulse.models.chat.ChatExample`, mappings)."""

    forget: Sequence[Any]
    retain: Sequence[Any] = ()
    seed: int = 0
    # sources a method built from the forget rows, row for row with them (its construct hook)
    constructed: Mapping[str, Sequence[Any]] = field(default_factory=dict)

    @cached_property
    def idk(self) -> list[ChatExample]:
        """The forget questions (with their images) answered with refusals."""
        return [
            ChatExample(_get(e, "question"), refusal_for(i, self.seed), _get(e, "image"))
            for i, e in enumerate(self.forget)
        ]

    def sources(self) -> dict[str, Sequence[Any]]:
        return {
            "forget": self.forget,
            "retain": self.retain,
            "idk": self.idk,
            **self.constructed,
        }


def _get(example: Any, key: str) -> Any:
    return example.get(key) if isinstance(example, Mapping) else getattr(example, key, None)


class IndexDataset(Dataset):
    """Items are forget example indices; the collator builds the sub-batches."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> int:
        return index


class UnlearnCollator:
    """Indices of forget examples -> ``{"forget", "idk", "retain", "forget_index",
    "retain_index"}`` with only the sub-batches in ``uses`` collated."""

    def __init__(
        self,
        processor: Any,
        data: UnlearnData,
        uses: frozenset[str] | set[str] | tuple[str, ...],
        *,
        seed: int = 0,
        process_index: int = 0,
        processes: int = 1,
        retain_batch_size: int | None = None,
        pack_tokens: int = 0,
        encoding_cache_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.chat = ChatCollator(processor)
        self.pack_tokens = pack_tokens
        self.encoding_budget = ByteBudget(encoding_cache_bytes)  # all sources together
        self.data = data
        self.uses = frozenset(uses)
        self.seed = seed
        self.process_index, self.processes = process_index, processes
        # Each process's share of a step's retain examples (by default its forget examples').
        self.retain_batch_size = (
            split_batch(retain_batch_size, processes, "retain_batch_size")
            if retain_batch_size
            else None
        )
        self._rng: random.Random | None = None
        self._cycle: list[int] = []
        self._encoded: dict[str, EncodedExamples] = {}
        # The retain stream after each call not yet known to be consumed (the data loader
        # collates ahead of training): a checkpoint records the state after the batches the
        # loop consumed, not after those it fetched (see state_after).
        self._calls = 0
        self._after: dict[int, dict[str, Any] | None] = {}
        self.track = False  # keep those states (a loop that checkpoints turns it on)

    def __call__(self, indices: Sequence[int]) -> dict[str, Any]:
        indices = [int(i) for i in indices]
        out: dict[str, Any] = {"forget_index": torch.tensor(indices)}
        if "forget" in self.uses:
            out["forget"] = self.collate("forget", indices)
        for name in sorted(self.uses - {"forget", "retain"}):  # row for row with forget
            out[name] = self.collate(name, indices)
        if "retain" in self.uses:
            drawn = self.draw_retain(self.retain_batch_size or len(indices))
            out["retain"] = self.collate("retain", drawn)
            out["retain_index"] = torch.tensor(drawn)
        self._calls += 1
        if self.track:
            self._after[self._calls] = self._stream_state()
        return out

    def _stream_state(self) -> dict[str, Any] | None:
        if self._rng is None:
            return None
        version, internal, gauss = self._rng.getstate()
        return {"rng": [version, list(internal), gauss], "cycle": list(self._cycle)}

    def consumed(self, calls: int) -> None:
        """The loop consumed the first ``calls`` batches: the states before are not needed."""
        for call in [c for c in self._after if c < calls]:
            del self._after[call]

    def state_after(self, consumed: int) -> dict[str, Any]:
        """The retain stream as it was after the first ``consumed`` calls (micro-batches):
        what a checkpoint taken after them records."""
        stream = self._after.get(consumed) if consumed else None
        return {"consumed": consumed, "stream": stream}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue the retain stream from a checkpoint's :meth:`state_after`."""
        self._calls = int(state["consumed"])
        self._after = {}
        stream = state.get("stream")
        if stream is None:
            self._rng, self._cycle = None, []
            return
        version, internal, gauss = stream["rng"]
        self._rng = random.Random()
        self._rng.setstate((version, tuple(internal), gauss))
        self._cycle = list(stream["cycle"])

    def collate(self, source: str, indices: Sequence[int]) -> BatchFeature:
        """The sub-batch of ``source``'s examples at ``indices`` (each encoded once per run, see
        :mod:`pulse.models.encoded`), packed into rows of about ``pack_tokens`` tokens when that
        is set."""
        if source not in self._encoded:
            self._encoded[source] = EncodedExamples(
                self.chat, self.data.sources()[source], self.encoding_budget
            )
        batch = self._encoded[source].batch(indices)
        if not self.pack_tokens:
            return batch
        return pack_batch(
            batch,
            self.pack_tokens,
            pad_token_id=self.chat.tokenizer.pad_token_id,
            image_token_id=self.chat.image_token_id,
        )

    def draw_retain(self, k: int) -> list[int]:
        """This process's ``k`` retain indices of the step: every process draws the step's
        ``k * processes`` from the same stream and takes its own block, so the step holds the
        retain examples one process alone would draw."""
        if not self.data.retain:
            raise ConfigError("this method needs retain examples and the request has none")
        if self._rng is None:
            # Seeded lazily: a data-loader worker holds a copy of the collator, and its id is
            # only known inside the worker. Workers get distinct streams; processes the same
            # one (the stream's name keeps the place where the process rank once was).
            worker = get_worker_info()
            self._rng = random.Random(f"{self.seed}/retain/0/{worker.id if worker else 0}")
        out = []
        for _ in range(k * self.processes):
            if not self._cycle:
                self._cycle = list(range(len(self.data.retain)))
                self._rng.shuffle(self._cycle)
            out.append(self._cycle.pop())
        return out[self.process_index * k : (self.process_index + 1) * k]
