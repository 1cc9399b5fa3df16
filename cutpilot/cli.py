"""The `cutpilot` command. Each package registers its own commands; heavy imports happen inside commands."""

from __future__ import annotations

import sys
import warnings
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from cutpilot import __version__
from cutpilot.errors import CutpilotError, InputError

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
    from cutpilot.cli_doctor import register as register_doctor
    from cutpilot.cli_gc import register as register_gc
    from cutpilot.cli_products import register as register_products
    from cutpilot.perf.cli import register as register_perf
    from cutpilot.studio.cli import register as register_studio
    from evals.cli import register as register_evals
    from index.cli import register as register_index
    from tools.cli import register as register_tools

    for reg in (register_index, register_products, register_tools, register_agent, register_evals, register_gc,
                register_doctor, register_studio, register_perf):
        reg(app)


def _one_line_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
    """Library warnings (e.g. 'no CLIP weights') reach users as one `warning:` line, not a source dump."""
    err_console.print(f"[yellow]warning[/]: {escape(' '.join(str(message).split()))}", highlight=False, soft_wrap=True)


def _choices(annotation: Any) -> list[str]:
    """The values a Literal / Enum option annotation allows (through Optional and list)."""
    import enum
    from typing import Literal, get_args, get_origin

    if get_origin(annotation) is Literal:
        return [str(a) for a in get_args(annotation)]
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return [str(m.value) for m in annotation]
    out: list[str] = []
    for a in get_args(annotation):
        if a is not type(None):
            out += _choices(a)
    return out


def _allowed(param: Any) -> str:
    """What an option accepts, in words: its choices, its range, or its help text."""
    ann = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    choices = _choices(ann)
    if choices:
        return "one of " + ", ".join(choices)
    lo, hi = getattr(param, "min", None), getattr(param, "max", None)
    kind = "an integer" if ann is int or int in getattr(ann, "__args__", ()) else "a number"
    if lo is not None and hi is not None:
        return f"{kind} from {lo:g} to {hi:g}"
    if lo is not None:
        return f"{kind} ≥ {lo:g}"
    if hi is not None:
        return f"{kind} ≤ {hi:g}"
    if ann in (int, float):
        return kind
    return str(getattr(param, "help", "") or "see --help")


def _given(argv: list[str], opts: list[str]) -> str | None:
    for k, tok in enumerate(argv):
        for o in opts:
            if tok == o and k + 1 < len(argv):
                return argv[k + 1]
            if tok.startswith(o + "="):
                return tok[len(o) + 1 :]
    return None


def input_error(e: Exception, argv: list[str]) -> CutpilotError | None:
    """A usage, option or validation error as one InputError line naming the option and what it allows (never
    click's usage block, never pydantic's URL); None when `e` is not the user's input."""
    from pydantic import ValidationError
    from typer.exceptions import TyperException

    if isinstance(e, ValidationError):
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err.get("loc", ())) or "value"
        got = repr(err.get("input"))
        got = got if len(got) <= 60 else got[:57] + "…"
        return InputError(f"bad value for {loc}: {err.get('msg', 'invalid')} (got {got})")
    if isinstance(e, PermissionError | IsADirectoryError | NotADirectoryError | FileExistsError):
        return InputError(f"cannot write {e.filename or 'the output'}: {e.strerror or type(e).__name__}")
    if not isinstance(e, TyperException):
        return None
    param = getattr(e, "param", None)
    kind = type(e).__name__
    path: Any = getattr(getattr(e, "ctx", None), "command_path", None)
    where = f" ({path} --help)" if path else ""
    if param is not None:
        opts = list(getattr(param, "opts", None) or [])
        is_arg = getattr(param, "param_type_name", "") == "argument"
        name = str(getattr(param, "human_readable_name", "") or (opts[0] if opts else "value")).upper() \
            if is_arg else (opts[0] if opts else str(getattr(param, "name", "value")))
        if kind == "MissingParameter":
            return InputError(f"missing {'argument' if is_arg else 'option'} {name} ({_allowed(param)}){where}")
        given = None if is_arg else _given(argv, opts)
        shown = f" {given!r}" if given is not None else ""
        return InputError(f"bad value{shown} for {name}; allowed: {_allowed(param)}")
    msg = " ".join(str(getattr(e, "format_message", lambda: str(e))()).split())
    return InputError(f"{msg.rstrip('.')}{where}")


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
    except Exception as e:  # usage errors, validation errors, and the unexpected
        mapped = input_error(e, argv if argv is not None else sys.argv[1:])
        if mapped is not None and not debug:
            err_console.print(f"[bold red]error[/]: {escape(mapped.one_line())}", highlight=False, soft_wrap=True)
            return mapped.exit_code
        if debug:
            raise
        err_console.print(f"[bold red]error[/]: unexpected {type(e).__name__}: {e} (re-run with --debug)")
        return 1
    # With standalone_mode=False click returns a command's `typer.Exit(code)` as the value.
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
