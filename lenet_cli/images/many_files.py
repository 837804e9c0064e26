"""Many image files -> MNIST-form digits, in order, a file that fails giving its error in its place;
large images read by one thread per core."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from lenet_cli.core.errors import ImageError
from lenet_cli.core.reading import MAX_IMAGE_BYTES, open_regular
from lenet_cli.images.decode import Source
from lenet_cli.images.preprocess import read_digit

if TYPE_CHECKING:
    import torch

PARALLEL_PIXELS = 250_000  # from this size up, many files are read by several threads


def read_digits(
    paths: list[Source], invert: str = "auto", show_progress: bool = False
) -> list[np.ndarray | ImageError]:
    """`read_digit` for many files, in order; a file that fails gives its ImageError in its place.

    Large images are read by one thread per core (numpy leaves the interpreter lock on whole-image
    work); small ones one after another, where threads would only contend for the interpreter. A tqdm
    bar on stderr when `show_progress` and on a terminal."""

    def one(path: Source) -> np.ndarray | ImageError:
        try:
            return read_digit(path, invert=invert)
        except ImageError as error:
            return error
        finally:
            bar.update()

    workers = _workers_for(paths)
    with _progress_bar(len(paths), show_progress) as bar:
        if workers == 1:
            return [one(path) for path in paths]
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(one, paths))


def _progress_bar(total: int, show: bool) -> Any:
    """tqdm's bar on a terminal's stderr, else nothing (and tqdm, slow to import, is not imported)."""
    if not show or not sys.stderr.isatty():
        return contextlib.nullcontext(SimpleNamespace(update=lambda: None))
    from tqdm import tqdm

    return tqdm(total=total, desc="Reading images", unit="img", file=sys.stderr, leave=False)


def load_digits(
    paths: list[Source], invert: str = "auto", show_progress: bool = False
) -> list[torch.Tensor | ImageError]:
    """`read_digits` with each digit as a torch tensor."""
    import torch

    digits = read_digits(paths, invert=invert, show_progress=show_progress)
    return [digit if isinstance(digit, ImageError) else torch.from_numpy(digit) for digit in digits]


def available_cores() -> int:
    """The cores this process may use, or OMP_NUM_THREADS where that is set lower (as torch counts them)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    limit = os.environ.get("OMP_NUM_THREADS", "")
    return min(cores, int(limit)) if limit.isdigit() and int(limit) > 0 else cores


def _workers_for(paths: list[Source], probe: int = 8) -> int:
    """Threads worth using: one per core when the first files are large (read from their headers)."""
    cores = available_cores()
    if cores < 2 or len(paths) < 4:
        return 1
    sizes = []
    for path in paths[:probe]:
        try:
            source = io.BytesIO(path) if isinstance(path, bytes) else open_regular(path, MAX_IMAGE_BYTES)
            with source, Image.open(source) as image:
                sizes.append(image.width * image.height)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            sizes.append(0)
    return cores if sorted(sizes)[len(sizes) // 2] >= PARALLEL_PIXELS else 1
