"""`pulse finetune`: LoRA fine-tuning of a local LMM on MLLMU-Bench's fine-tuning data, merged
into a plain Hugging Face checkpoint.

This is how a user makes both models of the fine-tuned-knowledge protocol for a real LMM: the
*fine-tuned* model (every profile of ``ft_Data``, as MLLMU-Bench's vanilla model is LLaVA
fine-tuned on it) and its *oracle* (the same recipe with the forget set's profiles excluded),
which a run config names as ``models.finetuned`` and ``models.oracle``. The checkpoint records
what it left out (:data:`RECORD`), and a run refuses it as the oracle of another forget set.

It trains on the same loop as ``pulse unlearn``, so it runs data parallel the same way: under
``torchrun`` / ``accelerate launch`` each process trains one shard of every step (``batch_size``
stays the examples of one optimizer step, split evenly over the processes) and the first
process alone merges and saves the checkpoint; the merged weights are one process's, within
float tolerance (:mod:`pulse.methods.sft` averages over the step's answer tokens on every
process together).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from pulse.data.mllmu import profile_train_pairs, read_mllmu
from pulse.data.schema import TrainPair
from pulse.errors import DataError
from pulse.files import write_json
from pulse.methods.supervised import TrainConfig, train_supervised
from pulse.models.adapters import UpdateScope, apply_scope, save_merged
from pulse.models.collective import is_main
from pulse.models.parallel import world_size

RECORD = "pulse_finetune.json"  # beside the weights: what the model was fine-tuned on


@dataclass(frozen=True)
class FinetuneResult:
    out: Path
    pairs: int
    people: int
    excluded: list[str]
    seconds: float
    steps: int


def finetune_pairs(data: Path, config: str, exclude: Sequence[str]) -> tuple[list[TrainPair], int]:
    """The training pairs of ``config`` without the ``exclude`` people's profiles, and how many
    people they are about; an excluded ID that is no profile of ``config`` is an error."""
    profiles = read_mllmu(data, config)
    ids = {p.id for p in profiles}
    unknown = [i for i in exclude if i not in ids]
    if unknown:
        raise DataError(data / config, f"--exclude: no profile with ID {unknown[0]!r}")
    left_out = set(exclude)
    kept = [p for p in profiles if p.id not in left_out]
    return [pair for p in kept for pair in profile_train_pairs(p)], len(kept)


def finetune(
    model_dir: str | Path,
    data: str | Path,
    out: str | Path,
    *,
    config: str = "ft_Data",
    exclude: Sequence[str] = (),
    train: TrainConfig | None = None,
    scope: UpdateScope | None = None,
    dtype: str = "auto",
) -> FinetuneResult:
    """Fine-tune ``model_dir`` with LoRA (``scope``) on ``config``'s pairs without the
    ``exclude`` people, merge the adapter and save the model and processor into ``out``."""
    from transformers import set_seed

    from pulse.models.loading import load_model_and_processor

    data, out = Path(data), Path(out)
    train = train or TrainConfig()
    if world_size() > 1 and train.processes == 1:
        # Launched under torchrun / accelerate: the step's batch split over its processes.
        train = replace(train, processes=world_size())
    scope = scope or UpdateScope()
    pairs, people = finetune_pairs(data, config, exclude)
    if not pairs:
        raise DataError(data / config, "no training pairs left to fine-tune on")
    started = time.perf_counter()
    model, processor = load_model_and_processor(model_dir, dtype=dtype)
    set_seed(train.seed)  # the adapter's initialisation
    model = apply_scope(model, scope)
    stats = train_supervised(model, processor, pairs, train)
    result = FinetuneResult(
        out, len(pairs), people, sorted(set(exclude)), time.perf_counter() - started, stats.steps
    )
    if not is_main():
        return result  # every process trained; the first one saves
    save_merged(model, out, processor)
    write_json(
        out / RECORD,
        {
            "model": str(Path(model_dir).resolve()),
            "data": str(data.resolve()),
            "config": config,
            "excluded": result.excluded,
            "people": people,
            "pairs": len(pairs),
            "train": asdict(train),
            "scope": asdict(scope),
        },
    )
    return result


def read_excluded(model_dir: Path) -> list[str] | None:
    """The people a ``pulse finetune`` checkpoint left out (None: not made by it)."""
    path = Path(model_dir) / RECORD
    if not path.is_file():
        return None
    try:
        return list(json.loads(path.read_text(encoding="utf-8"))["excluded"])
    except (ValueError, KeyError, TypeError):
        raise DataError(path, "not a pulse finetune record (expected 'excluded')") from None
