"""lenet's version: the one place it is written (pyproject.toml reads it from here, `lenet_cli.__version__`
re-exports it), so that files lenet writes can record it without anything importing the package top."""

__version__ = "0.1.0"
