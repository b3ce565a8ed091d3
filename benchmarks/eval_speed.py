"""Multiple-choice evaluation speed: per-sample greedy generation vs the batched letter scorer;
the option-text scorer with shared prompts vs one row per option.

Both evaluate the same model on the same MLLMU-Bench-format items with the same prompt:

1. **per-sample generation** — how MLLMU-Bench evaluates: one item at a time, encode, greedy
   ``generate`` with ``max_new_tokens`` (50), decode. Timed twice: stopping at EOS, as there
   (a model that answers "B" stops after two tokens), and running all ``max_new_tokens`` (a
   model that never stops, e.g. a degenerate one after unlearning, or an untrained one).
2. **letter scorer** — ``pulse.eval.mcq.score_mcq`` with ``scorer="letter"``: length-sorted
   left-padded batches, one forward per question reading only the last position's logits.

Also timed: the *floor*, the model forwards alone over already-encoded inputs (the scorer's
batches; and one single forward over all questions), i.e. what the scorer cannot avoid.

3. **option-text scorer**, side by side on the same items in one run: each prompt run once and
   its KV cache repeated for the options (the default), vs one full row (prompt, image and
   option) per option (``share_prompts=False``). ``--batch-size`` counts (item, option) rows for
   both. The two must give the same scores: the largest difference of a mean log-prob and the
   verdict agreement are printed with the times and their ratio. ``--option-text-only`` skips
   the rest (generation, letter scorer, floor); ``--skip-option-text`` skips this.

Verdict agreement is checked on the items whose greedy output starts with an option letter
standing alone (``"B"``, ``"B."``, ``"B) ..."``): there the greedy first token is that letter, so
the scorer must pick it too.

Without ``--model`` a tiny LLaVA is built and trained a little (``--train-steps``) to answer
option letters on the world's ``Retain_Set`` questions; it is evaluated on ``--config``
(``Full_Set``, other people). Without ``--world`` a small synthetic world is built in a
temporary directory. ``--shapes llava-1.5-7b`` instead evaluates an untrained model of
LLaVA-1.5-7B's shapes with random weights (see ``benchmarks/shapes.py``), built directly on
``--device`` in ``--dtype``: a random model never emits EOS, so its greedy generation always runs
all ``max_new_tokens`` (pass ``--skip-full-length``, the second timing would repeat the first),
and its verdicts are arbitrary but must still agree. On a GPU every timing waits for the device.
Examples::

    .venv/bin/python benchmarks/eval_speed.py --threads 1
    .venv/bin/python benchmarks/eval_speed.py --threads 1 --option-text-only --limit 48
    python benchmarks/eval_speed.py --shapes llava-1.5-7b --device cuda --dtype bfloat16 \\
        --skip-full-length
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
from pulse.eval.mcq import MCQConfig, score_mcq, score_options, shares_prompt_cache
from pulse.eval.prompts import item_prompt
from pulse.models.chat import ChatExample, encode_prompts
from shapes import SHAPES, build_shapes

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_LEADING_LETTER = re.compile(r"\(?([A-H])(?![A-Za-z0-9'’-])")


def mcq_items(world: Path, config: str) -> list[QAItem]:
    profiles = read_mllmu(world / "mllmu", config)
    return [i for p in profiles for i in profile_items(p) if i.kind is ItemKind.MCQ]


def build_model(world: Path, steps: int, seed: int):
    """A tiny LLaVA whose tokenizer knows the world's questions, trained ``steps`` steps to
    answer Retain_Set questions with the gold letter."""
    from pulse.methods.supervised import TrainConfig, train_supervised
    from pulse.models.tiny import TinyModelConfig, build_tiny_lmm

    train = mcq_items(world, "Retain_Set")
    texts = [f"{item_prompt(i)} {i.answer}" for i in [*train, *mcq_items(world, "Full_Set")]]
    model, processor = build_tiny_lmm(texts, TinyModelConfig(), seed=seed)
    if steps > 0:
        examples = [ChatExample(item_prompt(i), i.answer, i.image) for i in train]
        cfg = TrainConfig(max_steps=steps, batch_size=16, learning_rate=3e-3, seed=seed)
        stats = train_supervised(model, processor, examples, cfg)
        print(f"trained {stats.steps} steps: loss {stats.first_loss:.2f} -> {stats.last_loss:.2f}")
    return model.eval(), processor


def build_shaped(world: Path, shapes: str, device: str, dtype: str):
    """An untrained model of real-size ``shapes``; its tokenizer knows the world's questions."""

    items = [*mcq_items(world, "Retain_Set"), *mcq_items(world, "Full_Set")]
    texts = [f"{item_prompt(i)} {i.answer}" for i in items]
    model, processor, _ = build_shapes(shapes, texts, device=device, dtype=dtype)
    return model, processor


def sync(model) -> None:
    """Wait for the model's device: GPU work is asynchronous, a timer must see it done."""
    if next(model.parameters()).device.type == "cuda":
        torch.cuda.synchronize()


@torch.inference_mode()
def per_sample_generation(model, processor, items, max_new_tokens, full_length):
    tokenizer = tokenizer_of(processor)
    extra = {"min_new_tokens": max_new_tokens} if full_length else {}
    device = next(model.parameters()).device
    outputs, new_tokens = [], 0
    for item in items:
        inputs = encode_prompts(processor, [ChatExample(item_prompt(item), image=item.image)])
        inputs = inputs.to(device)
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
def forward_floor(model, processor, items, batch_size, whole=True):
    """Seconds of the model forwards alone over already-encoded inputs on the model's device:
    (a) the scorer's batches, (b) one batch of all (``whole``; else ``nan``), (c) the image
    features alone (vision tower + projector) within (a), ``nan`` for a model without
    ``get_image_features``."""
    device = next(model.parameters()).device
    prompts = [item_prompt(i) for i in items]
    examples = [ChatExample(p, image=i.image) for p, i in zip(prompts, items, strict=True)]
    order = length_order(processor, prompts, [i.image is not None for i in items])
    batches = [
        encode_prompts(processor, [examples[i] for i in b]).to(device)
        for b in chunks(order, batch_size)
    ]
    sync(model)
    t0 = time.perf_counter()
    for inputs in batches:
        model(**inputs, logits_to_keep=1, use_cache=False)
    sync(model)
    batched = time.perf_counter() - t0
    vision = float("nan")
    config = getattr(model, "config", None)
    if hasattr(model, "get_image_features") and hasattr(config, "vision_feature_layer"):
        t0 = time.perf_counter()
        for inputs in batches:
            if "pixel_values" in inputs:
                model.get_image_features(
                    pixel_values=inputs["pixel_values"].to(model.dtype),
                    vision_feature_layer=config.vision_feature_layer,
                    vision_feature_select_strategy=config.vision_feature_select_strategy,
                )
        sync(model)
        vision = time.perf_counter() - t0
    if not whole:
        return batched, float("nan"), vision
    everything = encode_prompts(processor, [examples[i] for i in order]).to(device)
    sync(model)
    t0 = time.perf_counter()
    try:
        model(**everything, logits_to_keep=1, use_cache=False)
    except torch.OutOfMemoryError:
        print(f"one forward over all {len(items)}: out of memory, skipped")
        torch.cuda.empty_cache()
        return batched, float("nan"), vision
    sync(model)
    return batched, time.perf_counter() - t0, vision


def option_text_side_by_side(model, processor, items, batch_size, repeats) -> None:
    """Time the option-text scorer with shared prompts and with one row per option, alternating
    (a busy machine slows both alike; the best of each counts), and compare their scores."""
    cfg = MCQConfig(batch_size=batch_size, scorer="option_text")
    for share in (True, False):  # warm-up
        score_options(model, processor, items[:2], cfg, share_prompts=share)
    times: dict[bool, list[float]] = {True: [], False: []}
    records = {}
    for _ in range(repeats):
        for share in (True, False):
            sync(model)
            t0 = time.perf_counter()
            records[share] = score_options(model, processor, items, cfg, share_prompts=share)
            sync(model)
            times[share].append(time.perf_counter() - t0)
    shared_s, row_s = min(times[True]), min(times[False])
    n = len(items)
    options = sum(len(i.options) for i in items)
    diff = max(
        abs(a.extras["mean_logprobs"][k] - b.extras["mean_logprobs"][k])
        for a, b in zip(records[True], records[False], strict=True)
        for k in a.extras["mean_logprobs"]
    )
    agree = sum(
        a.prediction == b.prediction for a, b in zip(records[True], records[False], strict=True)
    )
    note = "" if shares_prompt_cache(model) else " (this model takes the per-row path: no gain)"
    print(
        f"option-text scorer, {n} items, {options} options, batches of {batch_size} "
        f"(item, option) rows{note}:"
    )
    print(
        f"  shared prompts (one prompt forward per item + continuations): {shared_s:.3f} s best, "
        f"{statistics.median(times[True]):.3f} s median of {repeats}"
    )
    print(
        f"  one row per option (prompt + option each):                   {row_s:.3f} s best, "
        f"{statistics.median(times[False]):.3f} s median of {repeats}"
    )
    print(
        f"  per-row / shared = {row_s / shared_s:.2f}x; largest mean log-prob difference "
        f"{diff:.2e}; verdicts agree on {agree}/{n}"
    )


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
    parser.add_argument(
        "--shapes",
        choices=tuple(SHAPES),
        help="an untrained model of these real-size shapes, random weights (instead of tiny)",
    )
    parser.add_argument(
        "--device", help="where the model runs (default: cpu for tiny, else cuda if available)"
    )
    parser.add_argument(
        "--dtype",
        choices=tuple(DTYPES),
        help="model weights (default: float32 for tiny, bfloat16 for --shapes, as saved else)",
    )
    parser.add_argument(
        "--option-text-only",
        action="store_true",
        help="time only the option-text scorer, shared prompts vs one row per option",
    )
    parser.add_argument(
        "--skip-option-text", action="store_true", help="skip the option-text side by side"
    )
    parser.add_argument(
        "--no-single-forward",
        action="store_true",
        help="skip the one forward over all items (large models, many items: memory)",
    )
    args = parser.parse_args()
    if args.shapes and args.model:
        parser.error("--shapes builds a model: not with --model")
    if args.option_text_only and args.skip_option_text:
        parser.error("--option-text-only and --skip-option-text exclude each other")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cuda = "cuda" if torch.cuda.is_available() else "cpu"

    with tempfile.TemporaryDirectory(prefix="pulse-bench-") as tmp:
        world = args.world
        if world is None:
            from pulse.world.build import build_world

            world = build_world(Path(tmp) / "world", seed=args.seed, size="small").path
        if args.shapes:
            model, processor = build_shaped(
                world, args.shapes, args.device or cuda, args.dtype or "bfloat16"
            )
        elif args.model is None:
            model, processor = build_model(world, args.train_steps, args.seed)
            model.to(device=args.device or "cpu", dtype=DTYPES[args.dtype or "float32"])
        else:
            from pulse.models.loading import load_model_and_processor

            device = args.device or (cuda if cuda != "cpu" else None)
            dtype = args.dtype or "auto"
            model, processor = load_model_and_processor(args.model, device=device, dtype=dtype)
        items = mcq_items(world, args.config)
        if args.limit:
            items = items[: args.limit]
    n = len(items)
    param = next(model.parameters())
    where = (
        torch.cuda.get_device_name(param.device)
        if param.device.type == "cuda"
        else f"cpu, torch threads {torch.get_num_threads()}"
    )
    size = sum(p.numel() for p in model.parameters()) / 1e6
    images = {bytes(i.image) for i in items if isinstance(i.image, bytes | bytearray)}
    with_image = sum(i.image is not None for i in items)
    print(
        f"{n} multiple-choice items ({args.config}; {with_image} with an image, "
        f"{len(images)} distinct images); model {args.shapes or args.model or 'tiny'}: "
        f"{size:.1f}M parameters, {param.dtype}, {where}"
    )

    if args.option_text_only:
        option_text_side_by_side(model, processor, items, args.batch_size, args.repeats)
        return

    cfg = MCQConfig(batch_size=args.batch_size, scorer="letter")
    score_mcq(model, processor, items[:4], cfg)  # warm-up: first-call costs are not the point
    per_sample_generation(model, processor, items[:2], 2, False)

    forward_floor(model, processor, items[:4], args.batch_size, whole=False)
    sync(model)

    t0 = time.perf_counter()
    greedy, mean_new = per_sample_generation(model, processor, items, args.max_new_tokens, False)
    sync(model)
    gen_s = time.perf_counter() - t0
    # Printed as soon as measured: a later failure (memory) must not lose minutes of timing.
    print(
        f"per-sample greedy generation, stops at EOS (MLLMU-Bench): {n / gen_s:8.1f} items/s "
        f"({gen_s:.2f} s, mean {mean_new:.1f} new tokens)"
    )
    full_s = None
    if not args.skip_full_length:
        t0 = time.perf_counter()
        per_sample_generation(model, processor, items, args.max_new_tokens, True)
        sync(model)
        full_s = time.perf_counter() - t0
        print(
            f"per-sample greedy generation, all {args.max_new_tokens} tokens:       "
            f"{n / full_s:8.1f} items/s ({full_s:.2f} s)"
        )

    # Scorer and floor alternate, so a busy machine slows both alike; the best of each counts.
    score_times, floors = [], []
    for _ in range(args.repeats):
        sync(model)
        t0 = time.perf_counter()
        records = score_mcq(model, processor, items, cfg)
        sync(model)
        score_times.append(time.perf_counter() - t0)
        floors.append(
            forward_floor(
                model, processor, items, args.batch_size, whole=not args.no_single_forward
            )
        )
    score_s, score_med = min(score_times), statistics.median(score_times)
    floor_s = min(f[0] for f in floors)
    single_s = min(f[1] for f in floors)
    vision_s = min(f[2] for f in floors)

    started = agree = 0
    for item, text, record in zip(items, greedy, records, strict=True):
        match = _LEADING_LETTER.match(text)
        if match and match.group(1) in item.options:
            started += 1
            agree += match.group(1) == record.prediction

    print(
        f"letter scorer (batched):                              {n / score_s:8.1f} items/s "
        f"({score_s:.3f} s best, {score_med:.3f} s median of {args.repeats})"
    )
    full = f", {full_s / score_s:.1f}x vs {args.max_new_tokens} tokens" if full_s else ""
    print(f"speed-up: {gen_s / score_s:.1f}x vs stopping at EOS{full}")
    single = (
        f"one forward over all {n}: {single_s:.3f} s (scorer = {score_s / single_s:.2f}x)"
        if single_s == single_s  # not nan
        else "one forward over all: skipped"
    )
    print(
        f"floor, forwards only:         {floor_s:.3f} s in batches of {args.batch_size} "
        f"(scorer = {score_s / floor_s:.2f}x floor); {single}"
    )
    if vision_s == vision_s and with_image:
        print(
            f"image features alone (vision tower + projector, {with_image} images): "
            f"{vision_s:.3f} s = {vision_s / floor_s:.1%} of the batched forwards; encoding "
            f"each of the {len(images)} distinct images once would save at most "
            f"{vision_s * (1 - len(images) / with_image):.3f} s"
        )
    print(
        f"verdict agreement: {agree}/{started} items whose greedy output starts with an option "
        f"letter ({n - started} others)"
    )
    if not args.skip_option_text:
        option_text_side_by_side(model, processor, items, args.batch_size, args.repeats)


if __name__ == "__main__":
    main()
