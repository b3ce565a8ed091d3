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


def main() -> None:
    """Entry point: run the app, turning toolkit errors into one line and a non-zero exit."""
    try:
        app(standalone_mode=False)
    except PulseError as err:
        if _state["debug"]:
            raise
        Console(stderr=True).print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)
    except typer.Abort:
        Console(stderr=True).print("aborted")
        sys.exit(130)
    except Exception as err:  # click usage errors are printed by click itself
        import click

        if isinstance(err, click.exceptions.ClickException):
            err.show()
            sys.exit(err.exit_code)
        raise


if __name__ == "__main__":
    main()
