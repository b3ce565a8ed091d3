"""Multiple-choice evaluation speed: per-sample greedy generation vs the batched letter scorer.

Both evaluate the same model on the same MLLMU-Bench-format items with the same prompt:

1. **per-sample generation** — how MLLMU-Bench evaluates: one item at a time, encode, greedy
   ``generate`` with ``max_new_tokens`` (50), decode. Timed twice: stopping at EOS, as there
   (a model that answers "B" stops after two tokens), and running all ``max_new_tokens`` (a
   model that never stops, e.g. a degenerate one after unlearning, or an untrained one).
2. **letter scorer** — ``pulse.eval.mcq.score_mcq`` (the default): length-sorted left-padded
   batches, one forward per question reading only the last position's logits.

Also timed: the *floor*, the model forwards alone over already-encoded inputs (the scorer's
batches; and one single forward over all questions), i.e. what the scorer cannot avoid.

Verdict agreement is checked on the items whose greedy output starts with an option letter
standing alone (``"B"``, ``"B."``, ``"B) ..."``): there the greedy first token is that letter, so
the scorer must pick it too.

Without ``--model`` a tiny LLaVA is built and trained a little (``--train-steps``) to answer
option letters on the world's ``Retain_Set`` questions; it is evaluated on ``--config``
(``Full_Set``, other people). Without ``--world`` a small synthetic world is built in a
temporary directory. Example::

    .venv/bin/python benchmarks/eval_speed.py --threads 1
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

import torch

from pulse.data.mllmu import profile_items, read_mllmu
from pulse.data.schema import ItemKind, QAItem
from pulse.eval.batching import chunks, length_order, tokenizer_of
from pulse.eval.mcq import MCQConfig, item_prompt, score_mcq
from pulse.models.chat import ChatExample, encode_prompts

_LEADING_LETTER = re.compile(r"\(?([A-H])(?![A-Za-z0-9'’-])")


def mcq_items(world: Path, config: str) -> list[QAItem]:
    profiles = read_mllmu(world / "mllmu", config)
    return [i for p in profiles for i in profile_items(p) if i.kind is ItemKind.MCQ]


def build_model(world: Path, steps: int, seed: int):
    """A tiny LLaVA whose tokenizer knows the world's questions, trained ``steps`` steps to
    answer Retain_Set questions with the gold letter."""
    from pulse.models.tiny import TinyModelConfig, build_tiny_lmm
    from pulse.models.train import TrainConfig, train_supervised

    train = mcq_items(world, "Retain_Set")
    texts = [f"{item_prompt(i)} {i.answer}" for i in [*train, *mcq_items(world, "Full_Set")]]
    model, processor = build_tiny_lmm(texts, TinyModelConfig(), seed=seed)
    if steps > 0:
        examples = [ChatExample(item_prompt(i), i.answer, i.image) for i in train]
        cfg = TrainConfig(max_steps=steps, batch_size=16, learning_rate=3e-3, seed=seed)
        stats = train_supervised(model, processor, examples, cfg)
        print(f"trained {stats.steps} steps: loss {stats.first_loss:.2f} -> {stats.last_loss:.2f}")
    return model.eval(), processor


@torch.inference_mode()
def per_sample_generation(model, processor, items, max_new_tokens, full_length):
    tokenizer = tokenizer_of(processor)
    extra = {"min_new_tokens": max_new_tokens} if full_length else {}
    outputs, new_tokens = [], 0
    for item in items:
        inputs = encode_prompts(processor, [ChatExample(item_prompt(item), image=item.image)])
        out = model.generate(
            **inputs,
            do_sample=False,
            num_beams=1,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            **extra,
        )
        new = out[0, inputs["input_ids"].shape[1] :]
        new_tokens += len(new)
        outputs.append(tokenizer.decode(new, skip_special_tokens=True).strip())
    return outputs, new_tokens / max(len(items), 1)


@torch.inference_mode()
def forward_floor(model, processor, items, batch_size):
    """Seconds of the model forwards alone: (a) the scorer's batches, (b) one batch of all."""
    prompts = [item_prompt(i) for i in items]
    examples = [ChatExample(p, image=i.image) for p, i in zip(prompts, items, strict=True)]
    order = length_order(processor, prompts, [i.image is not None for i in items])
    batches = [
        encode_prompts(processor, [examples[i] for i in b]) for b in chunks(order, batch_size)
    ]
    t0 = time.perf_counter()
    for inputs in batches:
        model(**inputs, logits_to_keep=1)
    batched = time.perf_counter() - t0
    everything = encode_prompts(processor, [examples[i] for i in order])
    t0 = time.perf_counter()
    model(**everything, logits_to_keep=1)
    return batched, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a local HF checkpoint (default: tiny)")
    parser.add_argument("--world", type=Path, help="a world / data dir with mllmu/ (default: new)")
    parser.add_argument("--config", default="Full_Set", help="MLLMU-Bench config to evaluate")
    parser.add_argument("--limit", type=int, default=0, help="use the first N items (0: all)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=50)
    parser.add_argument(
        "--skip-full-length", action="store_true", help="skip the never-stop-at-EOS timing"
    )
    parser.add_argument("--train-steps", type=int, default=60, help="tiny model training")
    parser.add_argument("--repeats", type=int, default=3, help="scorer / floor timings (best)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    with tempfile.TemporaryDirectory(prefix="pulse-bench-") as tmp:
        world = args.world
        if world is None:
            from pulse.world.build import build_world

            world = build_world(Path(tmp) / "world", seed=args.seed, size="small").path
        if args.model is None:
            model, processor = build_model(world, args.train_steps, args.seed)
        else:
            from pulse.models.loading import load_model_and_processor

            device = "cuda" if torch.cuda.is_available() else None
            model, processor = load_model_and_processor(args.model, device=device)
        items = mcq_items(world, args.config)
        if args.limit:
            items = items[: args.limit]
    n = len(items)
    print(f"{n} multiple-choice items ({args.config}), torch threads {torch.get_num_threads()}")

    cfg = MCQConfig(batch_size=args.batch_size)
    score_mcq(model, processor, items[:4], cfg)  # warm-up: first-call costs are not the point
    per_sample_generation(model, processor, items[:2], 2, False)

    t0 = time.perf_counter()
    greedy, mean_new = per_sample_generation(model, processor, items, args.max_new_tokens, False)
    gen_s = time.perf_counter() - t0
    full_s = None
    if not args.skip_full_length:
        t0 = time.perf_counter()
        per_sample_generation(model, processor, items, args.max_new_tokens, True)
        full_s = time.perf_counter() - t0

    # Scorer and floor alternate, so a busy machine slows both alike; the best of each counts.
    score_times, floors = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        records = score_mcq(model, processor, items, cfg)
        score_times.append(time.perf_counter() - t0)
        floors.append(forward_floor(model, processor, items, args.batch_size))
    score_s, score_med = min(score_times), statistics.median(score_times)
    floor_s = min(f[0] for f in floors)
    single_s = min(f[1] for f in floors)

    started = agree = 0
    for item, text, record in zip(items, greedy, records, strict=True):
        match = _LEADING_LETTER.match(text)
        if match and match.group(1) in item.options:
            started += 1
            agree += match.group(1) == record.prediction

    print(
        f"per-sample greedy generation, stops at EOS (MLLMU-Bench): {n / gen_s:8.1f} items/s "
        f"({gen_s:.2f} s, mean {mean_new:.1f} new tokens)"
    )
    if full_s is not None:
        print(
            f"per-sample greedy generation, all {args.max_new_tokens} tokens:       "
            f"{n / full_s:8.1f} items/s ({full_s:.2f} s)"
        )
    print(
        f"letter scorer (batched, default):                     {n / score_s:8.1f} items/s "
        f"({score_s:.3f} s best, {score_med:.3f} s median of {args.repeats})"
    )
    full = f", {full_s / score_s:.1f}x vs {args.max_new_tokens} tokens" if full_s else ""
    print(f"speed-up: {gen_s / score_s:.1f}x vs stopping at EOS{full}")
    print(
        f"floor, forwards only:         {floor_s:.3f} s in batches of {args.batch_size} "
        f"(scorer = {score_s / floor_s:.2f}x floor); one forward over all {n}: {single_s:.3f} s "
        f"(scorer = {score_s / single_s:.2f}x)"
    )
    print(
        f"verdict agreement: {agree}/{started} items whose greedy output starts with an option "
        f"letter ({n - started} others)"
    )


if __name__ == "__main__":
    main()
