"""The user's labelled numbers cut as `lenet read` cuts them (`lenet train --numbers`): once per run, every
image of the folders' labels.csv goes through the reader's own `cut_into_candidates`, and each candidate's
28x28 input, its penalty in the reader's score and its pieces' ink are kept. Which candidates are which
digit is decided each epoch by the alignment (number_pool.py); numbers that no path through their cuts
can spell (more digits than pieces, or no piece at all) are counted and named, not learned from.

Numpy only, and the same folders always give the same cuts and digest.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from lenet_cli.core.errors import DataError, ImageError
from lenet_cli.data.number_folders import load_labels, read_number_image
from lenet_cli.images.field_cuts import cut_into_candidates
from lenet_cli.images.segment import Segmentation
from lenet_cli.inference.alignment import piece_ink, spell
from lenet_cli.inference.numbers import scores_of

# The alignment leaves out a mark before the first digit or after the last (a cross after a register's
# number) for this much each, far less than the reader's search does: a cross is then spelled as no digit
# and taught so, instead of being folded into the digit beside it, and the reader learns to leave it out.
SPELLING_SKIP_COST = 0.3


@dataclass
class CutNumber:
    """One number's candidates: rows first..first+len(runs)-1 of the pool, and how they tile its pieces."""

    label: str
    first: int
    runs: list[tuple[int, int]]
    pieces: int
    ink: np.ndarray  # ink pixels of each piece
    ends: tuple[list[float], list[float]] | None  # what leaving out end marks costs the reader, if it can
    spelling_ends: tuple[list[float], list[float]] | None = None  # ... and costs the alignment


@dataclass
class CutNumbers:
    inputs_u8: np.ndarray  # (N, 28, 28): every candidate of every spellable number, in MNIST form
    penalties: np.ndarray  # (N,) what the reader's score takes off each candidate whatever its class
    numbers: list[CutNumber]
    unspellable: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    digest: str = ""  # of every listed image's name, label and grey levels


def cut_numbers(folders: list[str | os.PathLike], show_progress: bool = False) -> CutNumbers:
    """Cut every number the folders list; a DataError if an image is missing or unreadable, or if none of
    them can be spelled."""
    inputs: list[np.ndarray] = []
    penalties: list[np.ndarray] = []
    numbers: list[CutNumber] = []
    unspellable: list[tuple[str, str]] = []
    digest = hashlib.sha256()
    listed = [pair for folder in folders for pair in load_labels(folder)]  # every list checked first
    bar = tqdm(
        listed, desc="Cutting numbers", unit="img", file=sys.stderr, disable=None if show_progress else True
    )
    first = 0
    for path, label in bar:
        grey = read_number_image(path)
        digest.update(f"{path.name}\0{label}\0{grey.shape}\0".encode())
        digest.update(np.ascontiguousarray(grey).tobytes())
        try:
            cut = cut_into_candidates(grey)
        except ImageError as error:
            unspellable.append((str(path), str(error)))
            continue
        pieces, ends = cut.segmentation.count, end_costs(cut.segmentation)
        if spell(cut.runs, pieces, np.zeros((len(cut.runs), 10)), label, ends) is None:
            unspellable.append(
                (str(path), f"{_count(len(label), 'digit')} to spell, {_count(pieces, 'piece')} cut")
            )
            continue
        zero = np.zeros((len(cut.runs), 10), np.float32)
        penalties.append(-scores_of(cut.segmentation, cut.runs, zero)[:, 0])
        inputs.append(cut.inputs)
        ink = piece_ink(cut.segmentation, cut.mask)
        spelling = end_costs(cut.segmentation, SPELLING_SKIP_COST) if ends else None
        numbers.append(CutNumber(label, first, cut.runs, pieces, ink, ends, spelling))
        first += len(cut.runs)
    if not numbers:
        names = ", ".join(str(folder) for folder in folders)
        raise DataError(
            f"none of the {len(unspellable)} numbers in {names} can be spelled through the reader's cuts"
            + (f" (first: {unspellable[0][0]}: {unspellable[0][1]})" if unspellable else "")
        )
    return CutNumbers(
        np.concatenate(inputs),
        np.concatenate(penalties).astype(np.float32),
        numbers,
        unspellable,
        digest.hexdigest(),
    )


def end_costs(
    segmentation: Segmentation, flat: float | None = None
) -> tuple[list[float], list[float]] | None:
    """What the reader's search charges for leaving out marks before the first digit or after the last
    (inference/number_path.py, where the reader's search can do so), so that the label is spelled as the
    reader would read it; None where the search covers every piece. With `flat`, the same marks may be
    left out at that cost each and no more (the alignment's: see SPELLING_SKIP_COST)."""
    try:
        from lenet_cli.inference.number_path import SKIP_COST, skip_costs
    except ImportError:  # a reader whose search covers every piece
        return None
    if flat is None:
        return skip_costs(segmentation, SKIP_COST)
    return skip_costs(segmentation, flat, short_penalty=0.0)


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}{'' if number == 1 else 's'}"
