"""The `pulse` command line. Thin: it parses options, calls the library and prints."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from pulse.errors import PulseError

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

console = Console()
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
    size: Annotated[str, typer.Option("--size", help="World size: small or default.")] = "default",
) -> None:
    """Generate the synthetic world (people, portraits, events, visual skills) in the
    published formats: MLLMU-Bench parquet, MMBench TSV, PEBench CSV + images."""
    from pulse.world.build import build_world

    summary = build_world(out, seed=seed, size=size)
    console.print(summary.render())


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


def main() -> None:
    """Entry point: run the app, turning toolkit errors into one line and a non-zero exit."""
    try:
        app()
    except PulseError as err:
        if _state["debug"]:
            raise
        Console(stderr=True).print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
