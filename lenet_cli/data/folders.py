"""Labelled image folders in torchvision's ImageFolder layout: DIR/<class>/<image>.

torchvision finds the class folders and their files; every image then goes through predict's
preprocessing into MNIST form. A class folder is named by the class index (`0`-`9`) or the class
name (`Sneaker`, any case). Files beside the class folders (a README), hidden files and non-images
are skipped and counted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lenet_cli.core.errors import DataError
from lenet_cli.core.reading import file_kind
from lenet_cli.images.decode import IMAGE_SUFFIXES
from lenet_cli.images.many_files import load_digits


@dataclass
class LabelledImages:
    """The readable images of one or more labelled folders, in MNIST form, and what was left out."""

    paths: list[str]
    images: torch.Tensor  # (N, 28, 28) uint8, white digit on black
    labels: torch.Tensor  # (N,) int64
    errors: list[tuple[str, int, str]] = field(default_factory=list)  # (path, label, why) unreadable
    skipped: int = 0  # files that are not images of a class: top-level files, hidden files, non-images

    def __len__(self) -> int:
        return len(self.paths)


def class_index(folder_name: str, class_names: list[str]) -> int | None:
    """The class a folder name means: its index ("3") or its name ("Sneaker", any case)."""
    if folder_name.isdigit() and int(folder_name) < len(class_names):
        return int(folder_name)
    lowered = [name.lower() for name in class_names]
    wanted = folder_name.lower()
    # "Sneaker", "ankle_boot", "T-shirt_top": folder names cannot hold "/" and often avoid spaces
    for candidate in (wanted, wanted.replace("_", "/"), wanted.replace("_", " "), wanted.replace("-", " ")):
        if candidate in lowered:
            return lowered.index(candidate)
    return None


def find_labelled_files(
    folder: Path, class_names: list[str], regular_only: bool = False
) -> tuple[list[tuple[str, int]], int]:
    """(path, label) for every image under the class folders of `folder`, and how many files were skipped.
    With `regular_only`, a named pipe, device or socket with an image's name is skipped too (else it is
    listed, to be reported as unreadable)."""
    from torchvision.datasets.folder import find_classes, make_dataset

    if not folder.is_dir():
        raise DataError(
            f"image folder {folder} does not exist" if not folder.exists() else f"{folder} is not a folder"
        )
    try:
        found, _ = find_classes(str(folder))
    except FileNotFoundError:
        found = []
    visible = [name for name in found if not name.startswith(".")]
    if not visible:
        raise DataError(
            f"{folder} has no class folders; expected {folder}/<class>/<image> (e.g. {folder}/3/a.png)"
        )
    class_to_index = {}
    for name in visible:
        index = class_index(name, class_names)
        if index is None:
            raise DataError(
                f"{folder / name} is not a class of the dataset; class folders are named "
                f"0-{len(class_names) - 1}" + ("" if class_names[0] == "0" else " or by class name")
            )
        class_to_index[name] = index
    skipped = sum(1 for entry in os.scandir(folder) if not entry.is_dir())

    def is_image(path: str) -> bool:
        nonlocal skipped
        relative = Path(path).relative_to(folder)
        wanted = Path(path).suffix.lower() in IMAGE_SUFFIXES and not any(
            part.startswith(".") for part in relative.parts
        )
        if wanted and regular_only:
            wanted = file_kind(path) == "file"
        skipped += not wanted
        return wanted

    samples = make_dataset(str(folder), class_to_index, is_valid_file=is_image, allow_empty=True)
    return sorted(samples), skipped


def read_labelled_folders(
    folders: list[str | os.PathLike],
    class_names: list[str],
    invert: str = "auto",
    show_progress: bool = False,
    regular_only: bool = False,
) -> LabelledImages:
    """Every image of every folder in MNIST form; unreadable ones are listed in `errors` (with
    `regular_only`, what is not a regular file is skipped and counted instead)."""
    samples: list[tuple[str, int]] = []
    skipped = 0
    for folder in folders:
        found, folder_skipped = find_labelled_files(Path(folder), class_names, regular_only)
        samples.extend(found)
        skipped += folder_skipped
    if not samples:
        names = ", ".join(str(folder) for folder in folders)
        raise DataError(f"no images found in {names} (expected <class>/<image> files)")
    digits = load_digits([path for path, _ in samples], invert=invert, show_progress=show_progress)
    paths, images, labels, errors = [], [], [], []
    for (path, label), digit in zip(samples, digits, strict=True):
        if isinstance(digit, Exception):
            errors.append((path, label, str(digit)))
            continue
        paths.append(path)
        images.append(digit)
        labels.append(label)
    return LabelledImages(
        paths=paths,
        images=torch.stack(images) if images else torch.zeros(0, 28, 28, dtype=torch.uint8),
        labels=torch.tensor(labels, dtype=torch.int64),
        errors=errors,
        skipped=skipped,
    )
