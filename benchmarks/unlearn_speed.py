"""Step time and peak memory of reference-based unlearning, as built vs a deep-copied reference.

One run, the same model and data for every variant:

    ga          gradient ascent (the baseline)
    gd          GA + retain NLL: the same forget + retain data as ga_kl, without a reference
    ga_kl       GA + KL on retain, reference = the adapter disabled (as built)
    npo         NPO, forget reference log-probs computed once per request (as built)
    ga_kl_copy  GA + KL with a deep-copied reference model (how public tools do it)
    npo_copy    NPO with a deep-copied reference model, reference forward every step

Each variant runs in its own process, so peak memory is its own: on a GPU the peak of
``torch.cuda.max_memory_allocated``; on CPU the peak resident set size during training (reset
just before it) minus the process's size after imports, i.e. weights + optimizer + activations
(+ the copy), from a separate two-step run with glibc's mmap threshold fixed (see run_size).
Step time is the fastest of the steps after the warm-up ones (other processes on a shared
machine only ever add time; the median is printed too). NPO builds its reference cache in its
first step; that one-off cost is printed separately.

    .venv/bin/python benchmarks/unlearn_speed.py                 # tiny and bigger LLaVA configs
    .venv/bin/python benchmarks/unlearn_speed.py --size tiny --steps 10

Targets: reference-based methods <= 1.3x GA's step time and <= 1.1x GA's peak memory.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import ctypes
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

VARIANTS = ("ga", "gd", "ga_kl", "npo", "ga_kl_copy", "npo_copy")
NAMES = [
    "Alice Moreau",
    "Bruno Keller",
    "Clara Keller",
    "Dmitri Vasko",
    "Elena Ruiz",
    "Farid Nouri",
]
CITIES = ["Lyon", "Basel", "Vienna", "Tallinn", "Porto", "Oslo", "Turin", "Ghent"]
JOBS = ["marine biologist", "violinist", "baker", "cartographer", "architect", "nurse"]


# --- the model and data (built identically in every worker) --------------------------------------


def build(size: str):
    import torch
    from transformers import LlavaForConditionalGeneration

    from pulse.models.tiny import (
        TinyModelConfig,
        build_config,
        build_processor,
        train_tokenizer,
    )

    texts = [f"{n} lives in {c} and works as a {j}." for n in NAMES for c in CITIES for j in JOBS]
    if size == "tiny":
        cfg, vocab = TinyModelConfig(), None
    else:  # a LLaVA-shaped model big enough for weights to matter, small enough for a CPU
        cfg = TinyModelConfig(
            image_size=112,
            patch_size=14,
            vision_hidden=256,
            vision_intermediate=1024,
            vision_layers=4,
            vision_heads=4,
            text_hidden=512,
            text_intermediate=1408,
            text_layers=6,
            text_heads=8,
        )
        vocab = 32064  # LLaVA-1.5's vocabulary: the lm_head cost is real
    tokenizer = train_tokenizer(texts, cfg.vocab_size)
    processor = build_processor(tokenizer, cfg)
    config = build_config(tokenizer, cfg)
    if vocab:
        config.text_config.vocab_size = vocab
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config)
    return model, processor, cfg


def examples(image_size: int, n: int, seed: int):
    from PIL import Image

    from pulse.models.chat import ChatExample

    rng = random.Random(seed)
    out = []
    for i in range(n):
        name, city, job = rng.choice(NAMES), rng.choice(CITIES), rng.choice(JOBS)
        if i % 2 == 0:
            color = tuple(rng.randrange(256) for _ in range(3))
            img = Image.new("RGB", (image_size, image_size), color)
            out.append(ChatExample("What does this person do?", f"This person is a {job}.", img))
        else:
            out.append(ChatExample(f"Where does {name} live?", f"{name} lives in {city}."))
    return out


# --- one variant, in its own process ----------------------------------------------------------


def _status_kb(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+)", text).group(1))


def _reset_peak() -> None:
    with contextlib.suppress(OSError):  # give freed heap back, so the peak starts at what is in use
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux >= 4.0)


def worker(variant: str, args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    from pulse.methods import LoopConfig, UnlearnData, get_method, train_method
    from pulse.models.adapters import UpdateScope, apply_scope

    cuda = torch.cuda.is_available() and not args.cpu
    baseline_kb = _status_kb("VmRSS")
    model, processor, cfg = build(args.size)
    if cuda:
        model.to("cuda")
    method_name = variant.removesuffix("_copy")
    reference = copy.deepcopy(model) if variant.endswith("_copy") else None
    model = apply_scope(model, UpdateScope(rank=16, alpha=16))
    data = UnlearnData(
        examples(cfg.image_size, 64, seed=1), examples(cfg.image_size, 64, seed=2), seed=0
    )
    loop = LoopConfig(
        max_steps=args.warmup + args.steps,
        batch_size=args.batch_size,
        learning_rate=1e-5,
        progress=False,
        report_to=(),
        cache_reference=reference is None,  # the public tools' way: reference forward each step
        trainer_args={"use_cpu": not cuda},
    )
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    else:
        _reset_peak()
    start = time.perf_counter()
    result = train_method(
        model, processor, get_method(method_name), data, loop, reference_model=reference
    )
    wall = time.perf_counter() - start
    if cuda:
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = (_status_kb("VmHWM") - baseline_kb) / 1024
    assert result.ok, result.diverged
    return {
        "variant": variant,
        # The fastest measured step: on a shared machine contention only ever adds time.
        "step_s": min(result.step_seconds[args.warmup :]),
        "median_step_s": statistics.median(result.step_seconds[args.warmup :]),
        "peak_mb": peak_mb,
        "cache_s": result.info.get("reference_cache_seconds", 0.0),
        "wall_s": wall,
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "device": "cuda" if cuda else f"cpu ({args.threads} thread(s))",
    }


# --- the driver -------------------------------------------------------------------------------


def _worker(variant: str, size: str, args: argparse.Namespace, steps: int, warmup: int, env=None):
    command = [sys.executable, __file__, "--worker", variant, "--size", size]
    command += ["--steps", str(steps), "--warmup", str(warmup)]
    command += ["--batch-size", str(args.batch_size), "--threads", str(args.threads)]
    command += ["--cpu"] if args.cpu else []
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        sys.exit(f"{variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_size(size: str, args: argparse.Namespace) -> None:
    rows = {}
    for variant in VARIANTS:
        rows[variant] = _worker(variant, size, args, args.steps, args.warmup)
        if rows[variant]["device"] != "cuda":
            # glibc keeps freed large blocks in its heap once its mmap threshold has grown, so
            # resident size overstates live memory; a fixed threshold returns them at once. It
            # slows allocation, so memory is measured in a separate, short run.
            env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
            rows[variant]["peak_mb"] = _worker(variant, size, args, 2, 0, env)["peak_mb"]
    ga = rows["ga"]
    print(
        f"\n== {size}: {ga['params_m']:.1f}M parameters, {ga['device']}, batch "
        f"{args.batch_size} forget (+{args.batch_size} retain), best of {args.steps} steps"
    )
    print(
        f"{'variant':<12}{'step s':>9}{'x GA':>7}{'median s':>10}{'peak MB':>10}{'x GA':>7}"
        f"{'one-off s':>11}"
    )
    for variant, row in rows.items():
        print(
            f"{variant:<12}{row['step_s']:>9.3f}{row['step_s'] / ga['step_s']:>7.2f}"
            f"{row['median_step_s']:>10.3f}{row['peak_mb']:>10.1f}"
            f"{row['peak_mb'] / ga['peak_mb']:>7.2f}{row['cache_s']:>11.3f}"
        )
    gd, npo, ga_kl = rows["gd"], rows["npo"], rows["ga_kl"]

    def ratio(row: dict, base: dict) -> str:
        step, peak = row["step_s"] / base["step_s"], row["peak_mb"] / base["peak_mb"]
        return f"step {step:.2f}x, peak {peak:.2f}x"

    print("targets vs ga: step <= 1.3x, peak <= 1.1x")
    print(f"  npo   vs ga: {ratio(npo, ga)}")
    print(f"  ga_kl vs ga: {ratio(ga_kl, ga)}  (ga_kl also trains on a retain batch)")
    print(f"  ga_kl vs gd: {ratio(ga_kl, gd)}  (same data: the reference's own cost)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("tiny", "big", "both"), default="both")
    parser.add_argument("--steps", type=int, default=6, help="measured steps per variant")
    parser.add_argument("--warmup", type=int, default=2, help="steps not measured")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (shared machines: 1)")
    parser.add_argument("--cpu", action="store_true", help="stay on CPU even with a GPU")
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args)))
        return
    for size in ("tiny", "big") if args.size == "both" else (args.size,):
        run_size(size, args)


if __name__ == "__main__":
    main()
