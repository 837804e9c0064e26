"""The command line: Typer commands over the core, option types, the error edge and Rich rendering."""

from lenet_cli.cli.commands import app, main

__all__ = ["app", "main"]
