"""`lenet read`'s files: image files and folders -> one Reading each, in order, with a progress bar that
moves as each image is read."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from lenet_cli.core.errors import LenetError
from lenet_cli.inference.numbers import Reading, read_named
from lenet_cli.inference.predict import expand_inputs, read_sources

if TYPE_CHECKING:
    from lenet_cli.inference.numbers import Model


def read_files(
    model: Model,
    inputs: list[str | os.PathLike],
    invert: str = "auto",
    length: tuple[int, int] | None = None,
    show_progress: bool = False,
) -> list[Reading]:
    """One Reading per image; an image that cannot be read gets `error` and the rest go on."""
    from tqdm import tqdm

    paths = expand_inputs(inputs)
    if not paths:
        raise LenetError("no images found in the given folders")
    sources = read_sources(paths)
    bar = tqdm(
        sources,
        desc="Reading numbers",
        unit="img",
        file=sys.stderr,
        leave=False,
        disable=None if show_progress else True,
    )
    # A generator, so the bar moves as each image is read.
    named = ((str(path), source) for path, source in zip(paths, bar, strict=True))
    return read_named(model, named, invert, length)
