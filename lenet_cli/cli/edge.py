"""The CLI's edge: where core errors become `Error: …` and an exit code, and where output goes (results on
stdout; with --json, everything else on stderr so stdout is one JSON document)."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from lenet_cli.core.errors import LenetError, StoppedBySignal

Command = TypeVar("Command", bound=Callable[..., Any])


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code)


def handles_errors(command: Command) -> Command:
    """The one edge where core errors become `Error: …` and an exit code, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except StoppedBySignal as stopped:  # a clean stop, not a failure: no "Error:"
            if stopped.announce:
                typer.echo(str(stopped), err=True)
            raise typer.Exit(stopped.exit_code) from None
        except LenetError as error:
            raise fail(str(error)) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        except Exception as error:
            if os.environ.get("LENET_DEBUG"):
                raise
            raise fail(
                f"unexpected {type(error).__name__}: {error} (set LENET_DEBUG=1 to see the traceback)"
            ) from None

    return wrapper  # type: ignore[return-value]


def consoles(as_json: bool) -> tuple[Console, Console]:
    """(results, information): with --json, information goes to stderr so stdout is one document."""
    results = Console(highlight=False, soft_wrap=True)
    return results, (Console(stderr=True, highlight=False, soft_wrap=True) if as_json else results)


def print_json(document: dict[str, Any]) -> None:
    typer.echo(json.dumps(document, indent=2, allow_nan=False))
