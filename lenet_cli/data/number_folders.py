"""Folders of labelled whole numbers: the images and a `labels.csv` beside them (`file,label`, the label
the digits only), the layout `lenet evaluate --numbers` reads and `lenet train --numbers` learns from."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from lenet_cli.core.errors import DataError, ImageError
from lenet_cli.images.decode import read_grey

LABELS_FILE = "labels.csv"


def load_labels(folder: str | os.PathLike) -> list[tuple[Path, str]]:
    """(image path, label) for each row of FOLDER/labels.csv, in its order. A missing folder or file, a
    label that is not all digits, or a list with no rows is a DataError naming where."""
    folder = Path(folder)
    labels_path = folder / LABELS_FILE
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder (expected images and a {LABELS_FILE})")
    if not labels_path.is_file():
        raise DataError(
            f"{folder} has no {LABELS_FILE} (one `file,label` row per image, the label the digits)"
        )
    try:
        with open(labels_path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"cannot read {labels_path} ({type(error).__name__})") from None
    if rows and [cell.strip().lower() for cell in rows[0][:2]] == ["file", "label"]:
        rows = rows[1:]
    pairs = []
    for number, row in enumerate(rows, 2):
        if not row or not any(cell.strip() for cell in row):
            continue
        label = row[1].strip() if len(row) >= 2 else ""
        if not (label.isascii() and label.isdigit()) or not row[0].strip():
            raise DataError(
                f"{labels_path}, line {number}: expected `file,label` with the label's digits only"
            )
        pairs.append((folder / row[0].strip(), label))
    if not pairs:
        raise DataError(f"{labels_path} lists no images")
    return pairs


def read_number_image(path: Path) -> np.ndarray:
    """The grey levels of one listed image for training. One that is missing, empty or cannot be decoded
    is a DataError: training on a folder with holes would learn from less than the user thinks."""
    if not path.is_file():
        raise DataError(f"cannot train on {path}: no such file (listed in {path.parent / LABELS_FILE})")
    try:
        return read_grey(path)
    except ImageError as error:
        why = "the file is empty" if path.stat().st_size == 0 else str(error)
        raise DataError(f"cannot train on {path}: {why}; fix it or remove it from {LABELS_FILE}") from None
