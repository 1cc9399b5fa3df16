"""The `cutpilot` command. Each package registers its own commands; heavy imports happen inside commands."""

from __future__ import annotations

import sys
import warnings
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from cutpilot import __version__
from cutpilot.errors import CutpilotError

app = typer.Typer(
    name="cutpilot",
    help="LLM-agent video editor: footage → clip library → short-video ads.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err_console = Console(stderr=True)
_state = {"debug": False, "registered": False}


def _version(value: bool) -> None:
    if value:
        print(f"cutpilot {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks instead of one-line errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True)] = False,
) -> None:
    _state["debug"] = debug


def _register() -> None:
    """Attach every package's commands once (main() may be called many times in one process, e.g. tests)."""
    if _state["registered"]:
        return
    _state["registered"] = True
    from agent.cli import register as register_agent
    from cutpilot.cli_gc import register as register_gc
    from cutpilot.cli_products import register as register_products
    from evals.cli import register as register_evals
    from index.cli import register as register_index
    from tools.cli import register as register_tools

    for reg in (register_index, register_products, register_tools, register_agent, register_evals, register_gc):
        reg(app)


def _one_line_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
    """Library warnings (e.g. 'no CLIP weights') reach users as one `warning:` line, not a source dump."""
    err_console.print(f"[yellow]warning[/]: {escape(' '.join(str(message).split()))}", highlight=False, soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: typed errors become one line on stderr and a non-zero exit code."""
    _register()
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    if not debug:
        warnings.showwarning = _one_line_warning
    try:
        rv = app(args=argv, standalone_mode=False)
    except CutpilotError as e:
        if debug:
            raise
        err_console.print(f"[bold red]error[/]: {escape(e.one_line())}", highlight=False, soft_wrap=True)
        return e.exit_code
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except KeyboardInterrupt:
        err_console.print("interrupted; re-run the same command to resume")
        return 130
    except typer.Exit as e:
        return int(e.exit_code or 0)
    except Exception as e:  # click usage errors and the unexpected
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            return e.exit_code
        if debug:
            raise
        err_console.print(f"[bold red]error[/]: unexpected {type(e).__name__}: {e} (re-run with --debug)")
        return 1
    # With standalone_mode=False click returns a command's `typer.Exit(code)` as the value.
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
