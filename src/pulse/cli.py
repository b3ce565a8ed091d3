"""The `pulse` command line. Thin: it parses options, calls the library and prints."""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from pulse.errors import ConfigError, PulseError, SettingError
from pulse.eval.scorers import DEFAULT_SCORER, SCORERS
from pulse.models.scope import ScopeConfig, parse_scope_label
from pulse.models.settings import UNLEARN_DEFAULTS, TrainSettings

app = typer.Typer(
    help="Run and evaluate machine unlearning on large multimodal models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
world_app = typer.Typer(help="Build the synthetic world and train the tiny models on it.")
app.add_typer(world_app, name="world")
data_app = typer.Typer(help="Check datasets in the published formats.")
app.add_typer(data_app, name="data")

# Everything printed is literal text: paths, labels (``ga[lr=0.0001]``) and messages hold
# square brackets that rich's markup would otherwise swallow. Styled parts are Text objects.
console = Console(markup=False)


def _stderr() -> Console:
    """A console on the current stderr (made when needed, so a redirected stderr is used)."""
    return Console(stderr=True, markup=False, highlight=False, soft_wrap=True)


# The --device option of every command that trains or evaluates (pulse.models.device).
DeviceOption = Annotated[
    str, typer.Option("--device", help="auto (CUDA when present), cpu or cuda.")
]


@contextmanager
def _resumable():
    """Ctrl-C on a run: one line saying how to resume, exit code 130."""
    try:
        yield
    except KeyboardInterrupt:
        _stderr().print(
            "interrupted: the finished stages are kept; run the same command again to resume"
        )
        raise typer.Exit(130) from None


_state = {"debug": False}


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _state["debug"] = debug


@world_app.command("build")
def world_build(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the world into.")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed; same seed, same bytes.")] = 0,
    size: Annotated[
        str, typer.Option("--size", help="World size: small, default, medium or large.")
    ] = "default",
) -> None:
    """Generate the synthetic world (people, portraits, events, visual skills) in the
    published formats: MLLMU-Bench parquet, MMBench TSV, PEBench CSV + images."""
    from pulse.world.build import build_world

    summary = build_world(out, seed=seed, size=size)
    console.print(summary.render())


@world_app.command("train")
def world_train(
    world: Annotated[Path, typer.Option("--world", help="A directory made by `world build`.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for base/ and finetuned/.")],
    seed: Annotated[int, typer.Option("--seed", help="Training seed.")] = 0,
    pretrain_epochs: Annotated[
        float | None, typer.Option("--pretrain-epochs", help="Override stage 1's epochs.")
    ] = None,
    finetune_epochs: Annotated[
        float | None, typer.Option("--finetune-epochs", help="Override stage 2's epochs.")
    ] = None,
    check: Annotated[
        bool, typer.Option("--check/--no-check", help="Score each stage on its benchmark.")
    ] = True,
    device: DeviceOption = "auto",
) -> None:
    """Build and train the tiny LLaVA of the embedded default: stage 1 pre-trains it from
    scratch on the world's corpus (base/), stage 2 LoRA fine-tunes it on the fictitious
    profiles (finetuned/). Stages already trained for the same world and config are reused."""
    from pulse.models.device import choose_device
    from pulse.world.train import train_world_models, world_train_config

    choose_device(device)  # the Trainer takes the GPU it sees; cpu hides them
    cfg = world_train_config(seed, pretrain_epochs, finetune_epochs)
    results = train_world_models(world, out, cfg, check=check)
    print_stage_table(results)


@app.command("run")
def run_command(
    config: Annotated[Path, typer.Argument(help="Experiment YAML (see configs/).")],
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config key: --set train.lr=1e-4 (repeatable)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Run directory (default: runs/<config name>).")
    ] = None,
    new_dir: Annotated[
        bool,
        typer.Option(
            "--new-dir", help="If --out holds a run of another config, use a fresh DIR-2, DIR-3."
        ),
    ] = False,
    device: DeviceOption = "auto",
) -> None:
    """Run the protocol: every enabled scenario with every method, then the report.
    Re-running the same command resumes: finished stages are kept, the rest is run.
    Under `torchrun` / `accelerate launch` the processes share the run (docs/scaling.md)."""
    from pulse.models.device import choose_device

    chosen = choose_device(device)  # an unknown device is said before the config is read
    from pulse.protocol.config import load_config

    cfg = load_config(config, list(overrides or []))
    _run_and_report(cfg, out or Path("runs") / config.stem, new_dir, chosen)


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option("--out", help="Directory for the demo's files.")] = Path(
        "runs/demo"
    ),
    seed: Annotated[int, typer.Option("--seed", help="World and training seed.")] = 0,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config key (see configs/demo.yaml)."),
    ] = None,
    device: DeviceOption = "auto",
) -> None:
    """The embedded default end to end on a CPU: build the synthetic world and the tiny models
    (reused when unchanged), run every scenario (finetuned, pretrained, sequential, scope,
    pebench) with ga, ga_kl and npo, and write the report."""
    from pulse.models.device import choose_device

    chosen = choose_device(device)  # an unknown device is said before the config is read
    from pulse.protocol.config import load_config

    cfg = load_config(None, [f"seed={seed}", f"models.world.seed={seed}", *(overrides or [])])
    if cfg.models.world is not None and cfg.models.world.dir is None:
        # The world and the models stay in OUT, so a demo whose config changed (other options,
        # a newer version) runs beside the old results in OUT-2 and still reuses them.
        world = cfg.models.world.model_copy(update={"dir": out})
        cfg = cfg.model_copy(update={"models": cfg.models.model_copy(update={"world": world})})
    _run_and_report(cfg, out, True, chosen)


@app.command("leaderboard")
def leaderboard_command(
    config: Annotated[
        Path | None,
        typer.Argument(help="Leaderboard YAML (see configs/leaderboard.yaml; default: embedded)."),
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option(  # typer reads help as rich markup: the brackets are escaped
            "--set", help=escape("Override a key: --set methods=[npo,siu] (repeatable).")
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the world, the sweep and the board.")
    ] = Path("runs/leaderboard"),
    device: DeviceOption = "auto",
) -> None:
    """Rank every registered method (or a listed subset): a learning-rate sweep per method,
    then each at its best learning rate on the finetuned and pretrained scenarios under
    several training seeds, at matched forgetting, scored by a stated rule. Re-running the
    same command resumes. One process (not under torchrun / accelerate launch)."""
    from pulse.models.device import choose_device

    chosen = choose_device(device)  # an unknown device is said before the config is read
    from pulse.protocol.leaderboard import load_leaderboard_config, run_leaderboard
    from pulse.report.leaderboard import headline

    cfg = load_leaderboard_config(config, list(overrides or []))
    with _resumable():
        board = run_leaderboard(cfg, out, device=chosen)
    console.print(headline(board), highlight=False)
    console.print(f"leaderboard: {board / 'leaderboard.html'}", highlight=False)


@app.command("report")
def report_command(
    run_dir: Annotated[Path, typer.Argument(help="A run directory made by `pulse run`.")],
) -> None:
    """Write report.md, report.html, figures and tables into a run directory (a partial run's
    report says what is missing)."""
    if not (run_dir / "manifest.json").is_file() and not (run_dir / "results.jsonl").is_file():
        raise ConfigError(f"{run_dir}: not a run directory (no manifest.json or results.jsonl)")
    _report(run_dir)


def _run_and_report(cfg, out: Path, new_dir: bool, chosen) -> None:
    from pulse.models.collective import join
    from pulse.protocol.precision import for_device
    from pulse.protocol.runner import run_protocol

    for_device(cfg, chosen)  # bf16 asked for where the GPU has none: one line, before joining
    join(chosen)  # under torchrun / accelerate launch: one process group for the whole run
    with _resumable():
        store = run_protocol(cfg, out, new_dir=new_dir, device=chosen)
    if not _is_main():
        return  # rank 0 writes the report
    _report(store.root)


def _is_main() -> bool:
    """Whether this is rank 0 of a launched run (or the only process)."""
    from pulse.models.collective import is_main

    return is_main()


def _report(run_dir: Path) -> None:
    from pulse.report import headline_table, write_report
    from pulse.report.rundir import load_run

    # A damaged file is named here as well as in the report: not silently fewer rows.
    for problem in load_run(run_dir).problems:
        _stderr().print(f"warning: {problem}")
    files = write_report(run_dir)
    console.print(headline_table(run_dir))
    console.print(f"report: {files.html}", highlight=False)


def print_stage_table(results) -> None:
    from rich.table import Table

    table = Table(title="tiny models")
    for column in ("stage", "time", "loss", "MCQ image", "MCQ text", "known", "general"):
        table.add_column(column)
    for r in results:
        c = r.check
        by = c.get("mcq_by_modality", {})
        table.add_row(
            r.name,
            "reused" if r.reused else f"{r.seconds:.0f}s",
            f"{r.first_loss:.2f}>{r.last_loss:.2f}" if r.last_loss is not None else "-",
            _pct(by.get("multimodal")),
            _pct(by.get("text")),
            f"{c['entities_known_80pct_both_modalities']}/{c['entities']}" if c else "-",
            _pct(c.get("general_circular")),
        )
        console.print(f"{r.name}: {r.path}", highlight=False)
    console.print(table)
    console.print(
        "MCQ: accuracy (option-text scoring) on the stage's people (base: celebrities, finetuned: "
        "fictitious people), with the image / by name; known: people at >= 80% in both; "
        "general: MMBench dev CircularEval accuracy.",
        highlight=False,
    )


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


@app.command("eval")
def eval_command(
    model: Annotated[Path, typer.Option("--model", help="Local HF checkpoint directory.")],
    data: Annotated[
        Path, typer.Option("--data", help="Data root (mllmu/ and mmbench/ inside) or a TSV.")
    ],
    split: Annotated[
        str, typer.Option("--split", help="MLLMU-Bench config, e.g. Full_Set or forget_50.")
    ] = "Full_Set",
    tasks: Annotated[
        str, typer.Option("--tasks", help="Comma list of mcq, cloze, gen, mmbench.")
    ] = "mcq",
    adapter: Annotated[
        Path | None, typer.Option("--adapter", help="PEFT adapter directory to apply.")
    ] = None,
    scorer: Annotated[
        str, typer.Option("--scorer", help=f"MCQ scorer: {', '.join(SCORERS)}.")
    ] = DEFAULT_SCORER,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Prompts per batch.")] = 32,
    seed: Annotated[int, typer.Option("--seed", help="Seed (few-shot draws).")] = 0,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the full result (per item) as JSON.")
    ] = None,
) -> None:
    """Evaluate a model: multiple choice per modality and per entity, cloze, generation (ROUGE)
    and MMBench-format general capability with CircularEval."""
    from pulse.eval.suite import check_sizes, evaluate, render_table

    with _named_options():
        check_sizes(batch_size)
    result = evaluate(
        model,
        data,
        split,
        tasks,
        adapter=adapter,
        scorer=scorer,
        batch_size=batch_size,
        out=out,
        seed=seed,
    )
    console.print(render_table(result))
    if out is not None:
        console.print(f"per-item results: {out}", highlight=False)


@app.command("methods")
def methods_command() -> None:
    """List the unlearning methods with their hyper-parameters and defaults."""
    from pulse.methods.registry import format_methods

    typer.echo(format_methods())


def _train_option(name: str, **kwargs) -> typer.models.OptionInfo:
    """A ``pulse unlearn`` option for the training setting ``name``: the run config's
    ``train.NAME``, with its help (the defaults are :data:`UNLEARN_DEFAULTS`)."""
    field = TrainSettings.model_fields[name]
    return typer.Option(_flag(name), help=field.description, **kwargs)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@app.command("unlearn")
def unlearn_command(
    model: Annotated[Path, typer.Option("--model", help="Local HF checkpoint directory.")],
    data: Annotated[
        Path, typer.Option("--data", help="MLLMU-Bench root (config folders) or a world directory.")
    ],
    forget: Annotated[
        str, typer.Option("--forget", help="Split file, MLLMU config name or comma list of IDs.")
    ],
    method: Annotated[str, typer.Option("--method", help="Method name (see `pulse methods`).")],
    out: Annotated[Path, typer.Option("--out", help="Directory for adapter/ and result.json.")],
    retain: Annotated[
        str | None, typer.Option("--retain", help="Split file, config name or comma list.")
    ] = None,
    adapter: Annotated[
        Path | None, typer.Option("--adapter", help="Adapter of a previous request.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Method hyper-parameter key=value (repeatable)."),
    ] = None,
    scope: Annotated[
        str,
        typer.Option(
            "--scope", help="Update scope: llm, projector+llm, all (components joined by '+')."
        ),
    ] = "llm",
    rank: Annotated[int, typer.Option("--rank", help="LoRA rank.")] = UNLEARN_DEFAULTS.scope.rank,
    alpha: Annotated[
        int, typer.Option("--alpha", help="LoRA alpha.")
    ] = UNLEARN_DEFAULTS.scope.alpha,
    epochs: Annotated[float, _train_option("epochs")] = UNLEARN_DEFAULTS.epochs,
    max_steps: Annotated[int, _train_option("max_steps")] = UNLEARN_DEFAULTS.max_steps,
    lr: Annotated[float, _train_option("lr")] = UNLEARN_DEFAULTS.lr,
    batch_size: Annotated[int, _train_option("batch_size")] = UNLEARN_DEFAULTS.batch_size,
    grad_accum: Annotated[int, _train_option("grad_accum")] = UNLEARN_DEFAULTS.grad_accum,
    pairs_per_id: Annotated[
        int | None, _train_option("pairs_per_id")
    ] = UNLEARN_DEFAULTS.pairs_per_id,
    pack_tokens: Annotated[int, _train_option("pack_tokens")] = UNLEARN_DEFAULTS.pack_tokens,
    # text, so that "null" (no bound) can be said as the run config says it
    loss_bound: Annotated[str, _train_option("loss_bound")] = f"{UNLEARN_DEFAULTS.loss_bound:g}",
    bf16: Annotated[bool, _train_option("bf16")] = UNLEARN_DEFAULTS.bf16,
    gradient_checkpointing: Annotated[
        bool, _train_option("gradient_checkpointing")
    ] = UNLEARN_DEFAULTS.gradient_checkpointing,
    group_by_length: Annotated[
        bool, _train_option("group_by_length")
    ] = UNLEARN_DEFAULTS.group_by_length,
    checkpoint_every: Annotated[
        str | None, _train_option("checkpoint_every")
    ] = UNLEARN_DEFAULTS.checkpoint_every,
    seed: Annotated[int, typer.Option("--seed", help="Seed.")] = 0,
    reference: Annotated[
        str,
        typer.Option("--reference", help="initial, or previous (merge the given adapter first)."),
    ] = "initial",
) -> None:
    """Run one unlearning request: train an adapter that makes the model forget the given
    people, with one of the registered methods; writes OUT/adapter and OUT/result.json. The
    training options are the run config's ``train`` keys."""
    from pulse.data.mllmu import mllmu_root
    from pulse.methods.request import run_unlearning

    if reference not in ("initial", "previous"):
        raise ConfigError(f"--reference: expected initial or previous, got {reference!r}")
    train = _unlearn_settings(
        _scope_settings(scope, rank, alpha),
        epochs=epochs,
        max_steps=max_steps,
        lr=lr,
        batch_size=batch_size,
        grad_accum=grad_accum,
        pairs_per_id=pairs_per_id,
        pack_tokens=pack_tokens,
        loss_bound=None if loss_bound.strip().lower() in ("null", "none") else loss_bound,
        bf16=bf16,
        gradient_checkpointing=gradient_checkpointing,
        group_by_length=group_by_length,
        checkpoint_every=checkpoint_every,
    )
    result = run_unlearning(
        model,
        mllmu_root(data),
        forget,
        retain,
        method,
        set_ or [],
        out,
        train=train,
        seed=seed,
        adapter=adapter,
        reference=reference,  # type: ignore[arg-type]
    )
    if not _is_main():
        return  # one report per request under torchrun / accelerate launch: rank 0's
    if result.ok:
        console.print(
            f"{method}: {result.steps} steps in {result.seconds:.1f}s; "
            f"{'edit' if result.record.get('edit') else 'adapter'}: {result.adapter_dir}",
            highlight=False,
        )
    else:
        console.print(f"{method}: diverged {result.diverged}", highlight=False)
        raise typer.Exit(1)


@app.command("finetune")
def finetune_command(
    model: Annotated[Path, typer.Option("--model", help="A local Hugging Face LMM directory.")],
    data: Annotated[
        Path,
        typer.Option(
            "--data", help="An MLLMU-Bench root (one folder per config) or a world directory."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Directory for the merged checkpoint.")],
    config: Annotated[
        str, typer.Option("--config", help="The config holding the fine-tuning pairs.")
    ] = "ft_Data",
    exclude: Annotated[
        str | None,
        typer.Option(
            "--exclude",
            help="People left out (the oracle's forget set): a split file, an MLLMU-Bench "
            "config name (forget_10) or a comma-separated ID list.",
        ),
    ] = None,
    scope: Annotated[str, typer.Option("--scope", help="llm, projector+llm, ...")] = "llm",
    rank: Annotated[int, typer.Option("--rank", help="LoRA rank.")] = 16,
    alpha: Annotated[int, typer.Option("--alpha", help="LoRA alpha.")] = 16,
    epochs: Annotated[float, typer.Option("--epochs", help="Passes over the pairs.")] = 1.0,
    max_steps: Annotated[
        int, typer.Option("--max-steps", help="Optimizer steps; overrides --epochs if > 0.")
    ] = -1,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate.")] = 2e-5,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Examples per step.")] = 4,
    grad_accum: Annotated[int, typer.Option("--grad-accum", help="Batches per step.")] = 1,
    bf16: Annotated[bool, typer.Option("--bf16/--no-bf16", help="bf16 autocast.")] = False,
    dtype: Annotated[str, typer.Option("--dtype", help="auto, float32, bfloat16.")] = "auto",
    seed: Annotated[int, typer.Option("--seed", help="Training seed.")] = 0,
) -> None:
    """LoRA fine-tune a local LMM on MLLMU-Bench's fine-tuning pairs and save the merged model:
    the fine-tuned model of a run (all profiles) or its oracle (--exclude the forget set; a run
    names it as models.oracle). Defaults: MLLMU-Bench's LoRA baseline (rank 16, alpha 16,
    lr 2e-5, one epoch, batch 4). Data parallel under torchrun / accelerate launch (the batch
    is split over the processes; rank 0 saves)."""
    from pulse.data.mllmu import mllmu_root
    from pulse.methods.finetune import finetune
    from pulse.methods.request import resolve_ids
    from pulse.methods.supervised import TrainConfig

    with _named_options(learning_rate="--lr"):  # TrainConfig checks its own values
        train = TrainConfig(
            epochs=epochs,
            max_steps=max_steps,
            learning_rate=lr,
            batch_size=batch_size,
            grad_accum=grad_accum,
            bf16=bf16,
            seed=seed,
        )
    data = mllmu_root(data)
    left_out, _ = resolve_ids(exclude, data)
    result = finetune(
        model,
        data,
        out,
        config=config,
        exclude=left_out,
        train=train,
        scope=_scope_settings(scope, rank, alpha).update_scope(),
        dtype=dtype,
    )
    if not _is_main():
        return  # under torchrun / accelerate launch every process trains; rank 0 reports
    console.print(
        f"fine-tuned on {result.pairs} pairs of {result.people} people "
        f"({len(result.excluded)} left out): {result.steps} steps in {result.seconds:.0f}s; "
        f"merged model: {result.out}",
        highlight=False,
    )


def _scope_settings(label: str, rank: int, alpha: int) -> ScopeConfig:
    try:
        base = ScopeConfig(rank=rank, alpha=alpha)
    except ValidationError as exc:
        raise ConfigError(_option_error(exc)) from None
    try:
        return parse_scope_label(label, base)
    except ValueError as exc:
        raise ConfigError(f"--scope: {exc}") from None


def _unlearn_settings(scope: ScopeConfig, **values) -> TrainSettings:
    """``pulse unlearn``'s options as the training settings they are, validated as the run
    config's ``train`` section is."""
    try:
        return TrainSettings(**values, scope=scope)
    except ValidationError as exc:
        raise ConfigError(_option_error(exc)) from None


@contextmanager
def _named_options(**flags: str):
    """A library setting refused, named as the option it came from: ``--lr: expected ...``
    (``flags``: the settings whose option is not ``--`` plus their name)."""
    try:
        yield
    except SettingError as exc:
        raise ConfigError(f"{flags.get(exc.field, _flag(exc.field))}: {exc.problem}") from None


def _option_error(exc: ValidationError) -> str:
    """One line naming the option: ``--lr: Input should be greater than 0, got -1.0``."""
    error = exc.errors()[0]
    message = error["msg"].removeprefix("Value error, ")
    if not error["loc"]:  # the scope as a whole (no LoRA component)
        return f"--scope: {message}"
    return f"{_flag(str(error['loc'][-1]))}: {message}, got {error['input']!r}"


@app.command("export")
def export_command(
    source: Annotated[Path, typer.Argument(help="A request, run, adapter or model directory.")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write the checkpoint into.")],
    state: Annotated[
        str | None,
        typer.Option("--state", help="In a run directory: the request key (request:KEY)."),
    ] = None,
    base: Annotated[
        Path | None, typer.Option("--base", help="An adapter's base model directory.")
    ] = None,
    adapter_only: Annotated[
        bool,
        typer.Option("--adapter-only", help="Write the adapter (portable base reference)."),
    ] = False,
    base_ref: Annotated[
        str | None,
        typer.Option("--base-ref", help="With --adapter-only: the base's Hub id or relative path."),
    ] = None,
    dtype: Annotated[str, typer.Option("--dtype", help="auto, float32, bfloat16.")] = "auto",
) -> None:
    """Export a model state as a standalone Hugging Face checkpoint (merged weights, processor,
    a chat template that renders the training text, generation config), loadable by plain
    AutoModelForImageTextToText / AutoProcessor; or, with --adapter-only, the adapter."""
    from pulse.models.export import export, resolve_source

    result = export(
        resolve_source(source, state=state, base=base),
        out,
        adapter_only=adapter_only,
        base_ref=base_ref,
        dtype=dtype,
    )
    console.print(f"exported ({result.kind}): {result.out}", highlight=False)


@data_app.command("validate")
def data_validate(
    format: Annotated[str, typer.Argument(help="mllmu, mmbench or pebench.")],
    path: Annotated[
        Path,
        typer.Argument(help="MLLMU-Bench root or parquet file, MMBench TSV, or PEBench CSV."),
    ],
) -> None:
    """Read a whole dataset with every check on; print a one-line summary, or the first
    problem (file, row, field) and exit non-zero."""
    from pulse.data.validate import validate

    console.print(validate(format, path), highlight=False, soft_wrap=True)


# Libraries that log at import when merely installed (torchao, pulled in by transformers when
# present, warns about its optional kernels, and torch about its pytree registrations): their
# warnings would bury the one line pulse prints; their errors still show.
QUIET_AT_IMPORT = ("torchao", "torch.utils._pytree")


def main() -> None:
    """Entry point: run the app, turning toolkit errors into one line and a non-zero exit."""
    for name in QUIET_AT_IMPORT:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        app()
    except PulseError as err:
        if _state["debug"]:
            raise
        _stderr().print(Text.assemble(("error:", "bold red"), f" {err}"))
        sys.exit(2)


if __name__ == "__main__":
    main()
