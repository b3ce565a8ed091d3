"""One training loop for every method (fine-tuning included), on the Hugging Face Trainer.

The Trainer brings mixed precision, gradient accumulation, multi-GPU (``accelerate launch``
with DeepSpeed / FSDP configs, passed through ``LoopConfig.trainer_args``), the optimizer and
schedule, logging integrations and the step loop; the loss of each step is the method's
(:meth:`UnlearnTrainer.compute_loss`). Data: a step's ``batch_size`` forget examples split
over the data-parallel processes by the Trainer's sampler, paired with retain examples (each
process its block of the step's one draw, :mod:`pulse.methods.batches`); token means divide by
the answer tokens of all processes (:func:`pulse.methods.losses.token_mean`), so a step is the
step one process takes on the whole batch, to float rounding.

Divergence guard: before each backward the loss must be finite and, when ``loss_bound`` is set,
``|loss| <= loss_bound``; otherwise the request stops with :class:`Diverged` (step and value),
no optimizer step is taken with the bad loss, and the caller writes no adapter. The last update
is checked after training (:meth:`UnlearnTrainer.check_last_step`: finite weights, and the loss
of the first batch under the same rule). Under several processes the verdict is shared, so all
ranks stop together.

Checkpoints (:mod:`pulse.methods.checkpoints`, when ``LoopConfig.checkpoint`` asks): the
Trainer's own, every N steps and / or M minutes, sealed with the retain stream's state and the
digests of their files; a loop given a folder that holds a sound one of the same request
resumes from it and reaches the weights an uninterrupted loop reaches (the data order is the
seeded sampler's per epoch, the RNG states, optimizer and schedule are the checkpoint's).

Logging: the loss and each method term (``forget_nll``, ``retain_kl``, ...) every
``logging_steps`` through the Trainer's log (TensorBoard when installed, W&B when asked: the
venv this was written in has neither, so the default there is no integration), plus a progress
bar with the latest values.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.integrations import is_tensorboard_available
from transformers.trainer_callback import PrinterCallback, ProgressCallback
from transformers.trainer_pt_utils import LengthGroupedSampler

from pulse.files import write_json
from pulse.methods.base import MethodContext, UnlearnBatch
from pulse.methods.batches import IndexDataset, UnlearnCollator, UnlearnData
from pulse.methods.checkpoints import (
    CheckpointPlan,
    Resume,
    collator_file,
    latest_checkpoint,
    write_state,
)
from pulse.methods.registry import Method
from pulse.models.adapters import base_model
from pulse.models.attention import cpu_bf16_attention
from pulse.models.chat import example_lengths
from pulse.models.encoded import DEFAULT_MAX_BYTES
from pulse.models.packing import check_packable
from pulse.models.parallel import split_batch, world_size
from pulse.models.settings import UNLEARN_DEFAULTS as _UNLEARN
from pulse.models.settings import TrainSettings


@dataclass(frozen=True)
class LoopConfig:
    """Loop settings; ``max_steps > 0`` overrides ``epochs``. The training settings' defaults
    are ``pulse unlearn``'s (:data:`~pulse.models.settings.UNLEARN_DEFAULTS`: the public LoRA
    unlearning baselines' lr 2e-5, batch 4, 1 epoch)."""

    epochs: float = _UNLEARN.epochs
    max_steps: int = _UNLEARN.max_steps
    batch_size: int = _UNLEARN.batch_size
    retain_batch_size: int | None = None  # default: the forget batch's size
    grad_accum: int = _UNLEARN.grad_accum
    learning_rate: float = _UNLEARN.lr
    weight_decay: float = 0.0
    warmup_steps: int = 0
    scheduler: str = "constant"
    max_grad_norm: float = 1.0
    seed: int = 0
    bf16: bool = _UNLEARN.bf16
    logging_steps: int = 1
    report_to: tuple[str, ...] | None = None  # None: TensorBoard when installed, else nothing
    # |loss| beyond this is divergence (None: NaN / inf only).
    loss_bound: float | None = _UNLEARN.loss_bound
    # Batches of similar length (random across groups of 50 batches): less compute on padding.
    group_by_length: bool = _UNLEARN.group_by_length
    # Pack each sub-batch's examples into rows of about this many tokens (0: padded rows).
    # The same loss on the same examples, without compute on padding (LLaVA-1.5 layouts; see
    # pulse.models.packing).
    pack_tokens: int = _UNLEARN.pack_tokens
    # Keep each example's encoding (token ids, labels, pixel values) after its first batch, up
    # to this many bytes, and build later epochs' batches from it (0: collate every batch anew;
    # see pulse.models.encoded).
    encoding_cache_bytes: int = DEFAULT_MAX_BYTES
    cache_reference: bool = True  # forget-set reference log-probs once per request
    reference_batch_size: int | None = None  # batches for the reference cache (batch_size)
    progress: bool = True
    progress_desc: str = "unlearn"
    # Checkpoint (and resume from) as this plan says (None: never; see pulse.methods.checkpoints).
    checkpoint: CheckpointPlan | None = None
    trainer_args: Mapping[str, Any] = field(default_factory=dict)  # more TrainingArguments

    @classmethod
    def from_settings(cls, settings: TrainSettings, **loop: Any) -> LoopConfig:
        """The loop of an unlearning request trained with ``settings``; ``loop`` sets what
        the settings do not hold (seed, logging, ...). The one place they are translated."""
        return cls(
            epochs=settings.epochs,
            max_steps=settings.max_steps,
            batch_size=settings.batch_size,
            grad_accum=settings.grad_accum,
            learning_rate=settings.lr,
            bf16=settings.bf16,
            loss_bound=settings.loss_bound,
            group_by_length=settings.group_by_length,
            pack_tokens=settings.pack_tokens,
            **loop,
        )

    def resolved_report_to(self) -> list[str]:
        if self.report_to is None:
            return ["tensorboard"] if is_tensorboard_available() else []
        return [r for r in self.report_to if r != "none"]


class Diverged(Exception):  # a result rather than an error: the request stopped cleanly
    """The loss left its bounds; raised inside the Trainer and caught by :func:`train_method`."""

    def __init__(self, step: int, value: float, reason: str) -> None:
        super().__init__(f"diverged at step {step}: loss {value} ({reason})")
        self.step, self.value, self.reason = step, value, reason

    def as_dict(self) -> dict[str, Any]:
        value = self.value if math.isfinite(self.value) else str(self.value)
        return {"step": self.step, "value": value, "reason": self.reason}


@dataclass
class LoopResult:
    status: str  # "ok" or "diverged"
    steps: int
    seconds: float  # training (the loop), without setup
    setup_seconds: float  # method preparation before the loop (e.g. MMUnlearner's Fisher)
    history: list[dict[str, float]] = field(default_factory=list)  # one entry per log
    step_seconds: list[float] = field(default_factory=list)  # wall time of each optimizer step
    diverged: dict[str, Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)  # scalars the method reported
    main_process: bool = True
    processes: int = 1  # data-parallel processes (accelerate launch / torchrun)
    resumed_from: int | None = None  # the checkpoint's step when the loop resumed one

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class UnlearnTrainer(Trainer):
    """A Trainer whose step loss is ``method(model, batch, context)``."""

    def __init__(
        self,
        *args: Any,
        method: Method,
        context: MethodContext,
        loss_bound: float | None = None,
        lengths: list[int] | None = None,
        checkpoint: CheckpointPlan | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.method, self.context, self.loss_bound = method, context, loss_bound
        self.lengths = lengths
        self.checkpoint = checkpoint
        self.consumed = 0  # micro-batches trained on (a checkpoint records the data after them)
        self.history: _History | None = None
        self.timer: _StepTimer | None = None
        self.earlier_seconds = 0.0  # training time before the checkpoint resumed
        self.started = time.perf_counter()
        # Our losses are means per micro-batch: the Trainer must divide by the accumulation
        # steps itself (it skips that when it thinks the model normalises by token count).
        self.model_accepts_loss_kwargs = False
        self._term_sums: dict[str, Tensor] = {}
        self._term_counts: dict[str, int] = {}

    def _get_train_sampler(self, train_dataset=None):
        # The index dataset carries no input ids, so the Trainer cannot infer lengths itself.
        if self.lengths is None:
            return super()._get_train_sampler(train_dataset)
        size = self.args.train_batch_size * self.args.gradient_accumulation_steps
        return _SeededLengthSampler(size, lengths=self.lengths, seed=self.args.data_seed or 0)

    def _get_output_dir(self, trial) -> str:
        if self.checkpoint is not None:
            return str(self.checkpoint.folder)
        return super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial) -> None:
        """The Trainer's checkpoint, then this process's retain stream and (main process,
        once every process wrote) the seal: the request, the history so far, the digests."""
        super()._save_checkpoint(model, trial)
        folder = Path(self._get_output_dir(trial)) / f"checkpoint-{self.state.global_step}"
        collator = self.data_collator
        write_json(
            collator_file(folder, self.args.process_index), collator.state_after(self.consumed)
        )
        if self.args.world_size > 1:
            self.accelerator.wait_for_everyone()
        if self.is_world_process_zero():
            assert self.checkpoint is not None
            write_state(
                folder,
                {
                    "fingerprint": self.checkpoint.fingerprint,
                    "step": self.state.global_step,
                    "history": self.history.entries if self.history else [],
                    "step_seconds": self.timer.seconds if self.timer else [],
                    "seconds": self.earlier_seconds + time.perf_counter() - self.started,
                },
            )
        if self.args.world_size > 1:
            self.accelerator.wait_for_everyone()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        self.context.step = self.state.global_step
        self.consumed += 1
        self.data_collator.consumed(self.consumed)
        loss, terms = self.method(model, UnlearnBatch.from_inputs(inputs), self.context)
        self._guard(loss)
        for key, value in terms.items():  # summed on device: no host sync per step
            value = value.detach().float()
            self._term_sums[key] = self._term_sums.get(key, 0) + value
            self._term_counts[key] = self._term_counts.get(key, 0) + 1
        return (loss, None) if return_outputs else loss

    def check_last_step(self) -> None:
        """The guard sees each loss before its backward, so the last update is checked here:
        the trained parameters finite, and (one process) the loss after the last step on the
        first batch within the bound. Raises :class:`Diverged` otherwise."""
        model = self.model
        finite = all(bool(torch.isfinite(p).all()) for p in model.parameters() if p.requires_grad)
        flag = torch.tensor([0.0 if finite else 1.0], device=self.args.device)
        if self.args.world_size > 1:
            flag = self.accelerator.reduce(flag, "sum")
        if flag.item() > 0:
            raise Diverged(self.state.global_step, math.nan, "weights not finite after the step")
        if self.args.world_size > 1 or self.state.global_step == 0:
            return  # sharded models forward only inside the Trainer's wrapper
        batch = self._prepare_inputs(next(iter(self.get_train_dataloader())))
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                loss, _ = self.method(model, UnlearnBatch.from_inputs(batch), self.context)
        finally:
            model.train(was_training)
        self._guard(loss, step=self.state.global_step, after=True)

    def _guard(self, loss: Tensor, *, step: int | None = None, after: bool = False) -> None:
        value = loss.detach().float()
        bad = ~torch.isfinite(value)
        if self.loss_bound is not None:
            bad = bad | (value.abs() > self.loss_bound)
        flag = bad.float().reshape(1)
        if self.args.world_size > 1:
            flag = self.accelerator.reduce(flag, "sum")
        if flag.item() > 0:
            number = float(value)
            if not math.isfinite(number):
                reason = "not finite"
            elif self.loss_bound is not None and abs(number) > self.loss_bound:
                reason = f"|loss| > {self.loss_bound:g}"
            else:
                reason = "diverged on another process"
            if after:
                reason += " after the last step"
            raise Diverged(self.state.global_step + 1 if step is None else step, number, reason)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:
            for key in sorted(self._term_sums):
                mean = self._term_sums[key] / self._term_counts[key]
                if self.args.world_size > 1:
                    mean = self.accelerator.reduce(mean, "mean")
                logs[key] = float(mean)
            self._term_sums.clear()
            self._term_counts.clear()
        super().log(logs, start_time)


class _SeededLengthSampler(LengthGroupedSampler):
    """Batches of similar length in an order drawn from ``seed`` and the epoch (the Trainer's
    own draws from the global generator, which a resumed loop could not reproduce)."""

    def __init__(self, batch_size: int, *, lengths: list[int], seed: int) -> None:
        super().__init__(batch_size, lengths=lengths)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        self.generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return super().__iter__()


class _Checkpoints(TrainerCallback):
    """Asks for a checkpoint every ``steps`` optimizer steps and / or ``seconds`` of training,
    never after the last step (the request is about to finish); every process decides alike."""

    def __init__(self, plan: CheckpointPlan, trainer: UnlearnTrainer) -> None:
        self.plan, self.trainer = plan, trainer
        self.last = time.perf_counter()

    def on_train_begin(self, args, state, control, **kwargs):
        self.last = time.perf_counter()  # minutes of training, not of loading or preparing

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:
            return
        due = bool(self.plan.steps) and state.global_step % self.plan.steps == 0
        if self.plan.seconds and time.perf_counter() - self.last >= self.plan.seconds:
            due = True
        # Clocks differ between processes: any one's due, all save (one scalar beside the
        # step's gradient all-reduce). A schedule in steps is the same on every process.
        if args.world_size > 1 and self.plan.seconds:
            flag = torch.tensor([1.0 if due else 0.0], device=args.device)
            due = bool(self.trainer.accelerator.reduce(flag, "max").item() > 0)
        if due:
            control.should_save = True

    def on_save(self, args, state, control, **kwargs):
        self.last = time.perf_counter()


class _History(TrainerCallback):
    def __init__(self) -> None:
        self.entries: list[dict[str, float]] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            entry = {k: float(v) for k, v in logs.items() if isinstance(v, int | float)}
            self.entries.append({"step": state.global_step, **entry})


class _StepTimer(TrainerCallback):
    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = 0.0

    @staticmethod
    def _now() -> float:
        if torch.cuda.is_available():
            torch.cuda.synchronize()  # GPU work is asynchronous: time what was done
        return time.perf_counter()

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = self._now()

    def on_step_end(self, args, state, control, **kwargs):
        self.seconds.append(self._now() - self._start)


class _Bar(TrainerCallback):
    """A progress bar showing the latest loss terms (the Trainer's own bar prints a line per
    log, one per step here)."""

    def __init__(self, desc: str) -> None:
        self.desc = desc
        self.bar: Any = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.bar = tqdm(total=state.max_steps, desc=self.desc, dynamic_ncols=True)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is not None and logs and "loss" in logs:
            skip = {"learning_rate", "grad_norm", "epoch"}
            shown = {
                k: f"{v:.4g}" for k, v in logs.items() if k not in skip and isinstance(v, float)
            }
            self.bar.set_postfix(shown, refresh=False)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def training_arguments(cfg: LoopConfig, output_dir: str) -> TrainingArguments:
    kwargs: dict[str, Any] = {
        "output_dir": output_dir,
        "num_train_epochs": cfg.epochs,
        "max_steps": cfg.max_steps,
        # The step's examples, split over the data-parallel processes.
        "per_device_train_batch_size": split_batch(cfg.batch_size, world_size()),
        "gradient_accumulation_steps": cfg.grad_accum,
        "learning_rate": cfg.learning_rate,
        "weight_decay": cfg.weight_decay,
        "warmup_steps": cfg.warmup_steps,
        "lr_scheduler_type": cfg.scheduler,
        "max_grad_norm": cfg.max_grad_norm,
        "seed": cfg.seed,
        "data_seed": cfg.seed,
        "bf16": cfg.bf16,
        "logging_strategy": "steps",
        "logging_steps": cfg.logging_steps,
        "save_strategy": "no",
        "eval_strategy": "no",
        "report_to": cfg.resolved_report_to() or "none",
        "remove_unused_columns": False,  # the items are indices; the collator builds batches
        "dataloader_num_workers": 0,
        "dataloader_pin_memory": torch.cuda.is_available(),
        # Methods run the model on forget and retain before one backward: with DDP's search
        # for unused parameters that would fail; every adapter weight is used in each forward.
        "ddp_find_unused_parameters": False,
        "disable_tqdm": True,  # our own bar (see _Bar)
    }
    if not torch.cuda.is_available() and cfg.bf16:
        kwargs["use_cpu"] = True  # CPU autocast: Trainer refuses bf16 without a GPU otherwise
    if not torch.cuda.is_available() and world_size() > 1:
        # A CPU launch of several processes (torchrun / accelerate launch --cpu) is data
        # parallel only with the CPU backend named; otherwise each process trains alone.
        kwargs.update(use_cpu=True, ddp_backend="gloo")
    if cfg.checkpoint is not None and cfg.checkpoint.active:
        # The newest and the one before it: a newest cut short while written is not alone.
        kwargs["save_total_limit"] = 2
    kwargs.update(cfg.trainer_args)
    return TrainingArguments(**kwargs)


def train_method(
    model: nn.Module,
    processor: Any,
    method: Method,
    data: UnlearnData,
    cfg: LoopConfig | None = None,
    *,
    output_dir: str | None = None,
    reference_model: nn.Module | None = None,
    callbacks: Sequence[TrainerCallback] = (),
) -> LoopResult:
    """Train ``model`` in place with ``method`` on ``data``; returns how it went.

    ``model`` is normally a PEFT model (its adapter disabled is the reference). A separate
    ``reference_model`` replaces that (the deep-copy baseline of the speed benchmark, or a
    full fine-tune without adapter). ``output_dir`` receives the logging integrations' files
    (TensorBoard runs); nothing else is written there. ``cfg.checkpoint`` checkpoints the loop
    and resumes it from the newest sound checkpoint of the same request found there.
    """
    cfg = cfg or LoopConfig()
    if cfg.pack_tokens:
        check_packable(base_model(model))
    _forget_earlier_preparation(model)
    data = method.construct(data)
    with tempfile.TemporaryDirectory(prefix="pulse-loop-") as tmp:
        args = training_arguments(cfg, output_dir or tmp)
        collator = UnlearnCollator(
            processor,
            data,
            method.uses,
            seed=cfg.seed,
            process_index=args.process_index,
            processes=args.world_size,
            retain_batch_size=cfg.retain_batch_size,
            pack_tokens=cfg.pack_tokens,
            encoding_cache_bytes=cfg.encoding_cache_bytes,
        )
        if args.world_size > 1 and args.process_index == 0:
            _say_partial_step(len(data.forget), cfg, args.world_size)
        plan = cfg.checkpoint if cfg.checkpoint is not None and cfg.checkpoint.active else None
        collator.track = plan is not None
        context = MethodContext(
            model=model,
            reference_model=reference_model,
            cached=method.cached if cfg.cache_reference else frozenset(),
            sources=data.sources(),
            collate=collator.chat,
            batch_size=cfg.reference_batch_size or cfg.batch_size,
            seed=cfg.seed,
        )
        history, timer = _History(), _StepTimer()
        trainer = UnlearnTrainer(
            model=model,
            args=args,
            train_dataset=IndexDataset(len(data.forget)),
            data_collator=collator,
            callbacks=[history, timer, *callbacks],
            method=method,
            context=context,
            loss_bound=cfg.loss_bound,
            lengths=example_lengths(processor, data.forget) if cfg.group_by_length else None,
            checkpoint=plan,
        )
        trainer.history, trainer.timer = history, timer
        resume = None
        if plan is not None:
            trainer.add_callback(_Checkpoints(plan, trainer))
            main = args.process_index == 0
            resume = latest_checkpoint(plan, str(plan.folder.parent), main=main)
            if resume is not None:
                _restore(trainer, collator, resume, args.process_index)
        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)
        if cfg.progress:
            trainer.add_callback(_Bar(cfg.progress_desc))
        context.device = args.device
        if reference_model is not None:
            reference_model.to(args.device).eval().requires_grad_(False)
        attention = cfg.bf16 and args.device.type == "cpu"
        with cpu_bf16_attention(model, attention), cpu_bf16_attention(reference_model, attention):
            return _run(trainer, model, method, context, history, timer, resume)


def _say_partial_step(examples: int, cfg: LoopConfig, processes: int) -> None:
    """One line when data parallel training will reach an epoch's last, partial batch: the
    libraries (accelerate's even batches) fill it with examples from the epoch's start, so that
    step is not the one a single process takes."""
    step = cfg.batch_size * cfg.grad_accum
    left = examples % cfg.batch_size
    if not left or (cfg.max_steps > 0 and cfg.max_steps * step <= examples - left):
        return
    print(
        f"pulse: {examples} forget examples in batches of {cfg.batch_size}: over {processes} "
        f"processes each epoch's last batch ({left} examples) is filled with examples from the "
        "epoch's start, so that step differs from one process's",
        file=sys.stderr,
        flush=True,
    )


def _forget_earlier_preparation(model: nn.Module) -> None:
    """Accelerate marks a model it prepared and skips it the next time, autocast included: a
    model trained before in float32 would then train silently without bf16. Each loop
    prepares its model afresh (the Trainer unwraps it at the end of training)."""
    for module in {id(m): m for m in (model, base_model(model))}.values():
        module.__dict__.pop("_is_accelerate_prepared", None)


def _restore(trainer: UnlearnTrainer, collator: UnlearnCollator, resume: Resume, rank: int) -> None:
    """Continue from ``resume``: the retain stream where the checkpoint left it, and the
    history and training time before it (the Trainer restores the rest)."""
    state = resume.collator(rank) or {"consumed": 0, "stream": None}
    collator.restore(state)
    trainer.consumed = int(state["consumed"])
    trainer.history.entries[:] = list(resume.state.get("history") or [])  # type: ignore[union-attr]
    trainer.timer.seconds[:] = list(resume.state.get("step_seconds") or [])  # type: ignore[union-attr]
    trainer.earlier_seconds = float(resume.state.get("seconds") or 0.0)


def _run(trainer, model, method, context, history, timer, resume=None) -> LoopResult:
    start = time.perf_counter()
    cleanup = method.prepare(model, context)
    setup = time.perf_counter() - start
    status, diverged = "ok", None
    start = trainer.started = time.perf_counter()
    try:
        trainer.train(resume_from_checkpoint=str(resume.path) if resume is not None else None)
        trainer.check_last_step()  # before the method's cleanup: it may need its state
    except Diverged as exc:
        status, diverged = "diverged", exc.as_dict()
        # The Trainer never reached its end: close the bar and flush the loggers.
        trainer.callback_handler.on_train_end(trainer.args, trainer.state, trainer.control)
    finally:
        seconds = trainer.earlier_seconds + time.perf_counter() - start
        if cleanup is not None:
            cleanup()
        model.zero_grad(set_to_none=True)
        model.eval()
    info = {k: v for k, v in context.state.items() if isinstance(v, int | float | str | bool)}
    return LoopResult(
        status=status,
        steps=trainer.state.global_step,
        seconds=seconds,
        setup_seconds=setup,
        history=history.entries,
        step_seconds=timer.seconds,
        diverged=diverged,
        info=info,
        main_process=trainer.is_world_process_zero(),
        processes=trainer.args.world_size,
        resumed_from=resume.step if resume is not None else None,
    )
