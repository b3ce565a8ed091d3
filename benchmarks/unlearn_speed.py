"""Step time and peak memory of reference-based unlearning, as built vs a deep-copied reference.

One run, the same model and data for every variant:

    ga          gradient ascent (the baseline)
    gd          GA + retain NLL: the same forget + retain data as ga_kl, without a reference
    ga_kl       GA + KL on retain, reference = the adapter disabled (as built)
    npo         NPO, forget reference log-probs computed once per request (as built)
    ga_kl_copy  GA + KL with a deep-copied reference model (how public tools do it)
    npo_copy    NPO with a deep-copied reference model, reference forward every step

Peak memory: each variant in a process of its own, a two-step run: on a GPU the peak of
``torch.cuda.max_memory_allocated``; on CPU the peak resident set size during training (reset
just before it) minus the process's size after imports, i.e. weights + optimizer + activations
(+ the copy), with glibc's mmap threshold fixed (see run_size). Step time: all variants in one
process, interleaved over rounds, the fastest step after each run's warm-up (contention from
other processes only ever adds time; the median is printed too). NPO builds its reference cache
in its first step; that one-off cost per request is printed separately.

    .venv/bin/python benchmarks/unlearn_speed.py                 # tiny and bigger LLaVA configs
    .venv/bin/python benchmarks/unlearn_speed.py --size tiny --rounds 5
    python benchmarks/unlearn_speed.py --size llava-1.5-7b --threads 4   # GPU, bf16, random

``--size llava-1.5-7b`` builds a model of LLaVA-1.5-7B's shapes with random weights directly on
the GPU (see ``benchmarks/shapes.py``), in ``--dtype`` (default bfloat16 there, float32 for the
small sizes); LoRA (rank 16) on every linear layer of the language model, as for the others.

Targets: reference-based methods <= 1.3x GA's step time and <= 1.1x GA's peak memory.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import ctypes
import importlib
import json
import os
import random
import re
import statistics
import subprocess
import sys
from pathlib import Path

from shapes import SHAPES

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


def build(size: str, device: str = "cpu", dtype: str | None = None):
    """``(model, processor, image_size)``: ``tiny`` / ``big`` built on the CPU (the caller moves
    them), a real-size ``size`` from :data:`shapes.SHAPES` directly on ``device``."""
    import torch
    from transformers import LlavaForConditionalGeneration

    from pulse.models.tiny import (
        TinyModelConfig,
        build_config,
        build_processor,
        train_tokenizer,
    )

    texts = [f"{n} lives in {c} and works as a {j}." for n in NAMES for c in CITIES for j in JOBS]
    if size in SHAPES:
        from shapes import build_shapes

        return build_shapes(size, texts, device=device, dtype=dtype or "bfloat16")
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
    if dtype:
        model.to(getattr(torch, dtype))
    return model, processor, cfg.image_size


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


# --- measurements -----------------------------------------------------------------------------


def _status_kb(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+)", text).group(1))


def _reset_peak() -> None:
    with contextlib.suppress(OSError):  # give freed heap back, so the peak starts at what is in use
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux >= 4.0)


class Setup:
    """The model (with a fresh LoRA), its deep copy for the *_copy variants, and the data."""

    def __init__(self, args: argparse.Namespace, copy_reference: bool) -> None:
        import torch

        from pulse.methods import UnlearnData
        from pulse.models.adapters import UpdateScope, apply_scope

        torch.set_num_threads(args.threads)
        self.args = args
        self.cuda = torch.cuda.is_available() and not args.cpu
        device = "cuda" if self.cuda else "cpu"
        model, self.processor, image_size = build(args.size, device, args.dtype)
        model.to(device)
        self.reference = copy.deepcopy(model) if copy_reference else None
        self.model = apply_scope(model, UpdateScope(rank=16, alpha=16))
        self.data = UnlearnData(examples(image_size, 32, 1), examples(image_size, 32, 2))
        self.params_m = sum(p.numel() for p in self.model.parameters()) / 1e6
        dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
        where = torch.cuda.get_device_name() if self.cuda else f"cpu ({args.threads} thread(s))"
        self.device = f"{where}, {dtype} weights"

    def run(self, variant: str, steps: int):
        from pulse.methods import LoopConfig, get_method, train_method

        copied = variant.endswith("_copy")
        loop = LoopConfig(
            max_steps=steps,
            batch_size=self.args.batch_size,
            learning_rate=1e-5,
            progress=False,
            report_to=(),
            cache_reference=not copied,  # the public tools' way: a reference forward each step
            trainer_args={"use_cpu": not self.cuda},
        )
        method = get_method(variant.removesuffix("_copy"))
        reference = self.reference if copied else None
        result = train_method(
            self.model, self.processor, method, self.data, loop, reference_model=reference
        )
        assert result.ok, result.diverged
        return result


def time_variants(args: argparse.Namespace) -> dict:
    """All variants in one process, interleaved over rounds: contention from other processes on
    a shared machine hits them alike, and the fastest step of each is kept (noise only ever adds
    time)."""
    setup = Setup(args, copy_reference=True)
    steps: dict[str, list[float]] = {v: [] for v in VARIANTS}
    cache: dict[str, float] = dict.fromkeys(VARIANTS, 0.0)
    for _ in range(args.rounds):
        for variant in VARIANTS:
            result = setup.run(variant, args.warmup + args.steps)
            steps[variant] += result.step_seconds[args.warmup :]
            cache[variant] = result.info.get("reference_cache_seconds", 0.0)
    return {
        "params_m": setup.params_m,
        "device": setup.device,
        "rows": {
            v: {"step_s": min(t), "median_step_s": statistics.median(t), "cache_s": cache[v]}
            for v, t in steps.items()
        },
    }


def peak_memory(variant: str, args: argparse.Namespace) -> float:
    """Peak MB of a two-step run of ``variant``, in a process of its own."""
    import torch

    for module in ("pulse.methods", "pulse.models.adapters", "pulse.models.tiny"):
        importlib.import_module(module)  # imports are not part of the measurement

    baseline_kb = _status_kb("VmRSS")
    setup = Setup(args, copy_reference=variant.endswith("_copy"))
    if setup.cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        setup.run(variant, 2)
        return torch.cuda.max_memory_allocated() / 2**20
    _reset_peak()
    setup.run(variant, 2)
    return (_status_kb("VmHWM") - baseline_kb) / 1024


# --- the driver -------------------------------------------------------------------------------


def _child(args: argparse.Namespace, size: str, *extra: str, env=None) -> dict:
    command = [sys.executable, __file__, "--size", size, "--steps", str(args.steps)]
    command += ["--warmup", str(args.warmup), "--rounds", str(args.rounds)]
    command += ["--batch-size", str(args.batch_size), "--threads", str(args.threads)]
    command += ["--cpu"] if args.cpu else []
    command += ["--dtype", args.dtype] if args.dtype else []
    done = subprocess.run([*command, *extra], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"{size} {' '.join(extra)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_size(size: str, args: argparse.Namespace) -> None:
    timing = _child(args, size, "--time")
    rows = timing["rows"]
    # glibc keeps freed large blocks in its heap once its mmap threshold has grown, so resident
    # size overstates live memory; a fixed threshold returns them at once (a no-op on GPU).
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    for variant in VARIANTS:
        rows[variant]["peak_mb"] = _child(args, size, "--memory", variant, env=env)["peak_mb"]
    ga = rows["ga"]
    print(
        f"\n== {size}: {timing['params_m']:.1f}M parameters, {timing['device']}, batch "
        f"{args.batch_size} forget (+{args.batch_size} retain); step time: best of "
        f"{args.rounds} x {args.steps} steps"
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
    print(f"  ga_kl_copy vs ga_kl: {ratio(rows['ga_kl_copy'], ga_kl)}")
    print(f"  npo_copy   vs npo:   {ratio(rows['npo_copy'], npo)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size",
        choices=("tiny", "big", "both", *SHAPES),
        default="both",
        help="tiny / big: small LLaVA configs (CPU-sized); or real-size shapes, random weights",
    )
    parser.add_argument("--steps", type=int, default=4, help="measured steps per variant and round")
    parser.add_argument("--warmup", type=int, default=1, help="steps not measured (per round)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of all variants")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (shared machines: 1)")
    parser.add_argument("--cpu", action="store_true", help="stay on CPU even with a GPU")
    parser.add_argument(
        "--dtype",
        choices=("float32", "bfloat16", "float16"),
        help="model weights (default: float32 for tiny / big, bfloat16 for real-size shapes)",
    )
    parser.add_argument("--time", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--memory", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.size == "both" and (args.time or args.memory):
        parser.error("--size tiny or big with the internal --time / --memory")
    if args.time:
        print(json.dumps(time_variants(args)))
        return
    if args.memory:
        print(json.dumps({"peak_mb": peak_memory(args.memory, args)}))
        return
    for size in ("tiny", "big") if args.size == "both" else (args.size,):
        run_size(size, args)


if __name__ == "__main__":
    main()
