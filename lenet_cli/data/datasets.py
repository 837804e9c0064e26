"""MNIST-family datasets as resident uint8 tensors.

torchvision does the downloading, checksums and IDX parsing; this module only finds the files,
checks them well enough to give a clear error, and hands back whole splits as tensors.
"""

from __future__ import annotations

import gzip
import math
import os
import shutil
import socket
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from lenet_cli.core.config import DATASETS
from lenet_cli.core.config import class_names as class_names  # its old home
from lenet_cli.core.errors import DataError
from lenet_cli.core.reading import MAX_DATA_BYTES, NotReadable, file_kind, open_regular

# torchvision is imported only where it is used, since importing it is slow: commands that never read a dataset skip it.
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
ALL_FILES = [name for pair in SPLIT_FILES.values() for name in pair]
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
DOWNLOAD_TIMEOUT_S = 20


@dataclass
class Split:
    """One split held whole in memory: images (N, 28, 28) uint8, labels (N,) int64."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: torch.Tensor) -> Split:
        return Split(self.images[indices], self.labels[indices])


def load_split(dataset: str, data_dir: str | os.PathLike, split: str) -> Split:
    """Load `split` ("train" or "test") of `dataset` from `data_dir`, downloading it if absent.

    `data_dir` may be a flat folder with the four IDX files (gzipped or not), or torchvision's
    own layout (`data_dir/MNIST/raw/...`), which is where a download goes.
    """
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    root = Path(data_dir)
    if dataset == "usps":  # not IDX files: torchvision's own reader, then MNIST's form
        from lenet_cli.data.usps import load_usps

        return Split(*load_usps(root, split))
    folder = _find_idx_folder(root, dataset) or _download(root, dataset)
    images_name, labels_name = SPLIT_FILES[split]
    images = _read_idx(folder, images_name, IMAGES_MAGIC)
    labels = _read_idx(folder, labels_name, LABELS_MAGIC)
    if len(images) != len(labels):
        raise DataError(
            f"{folder / images_name} holds {len(images)} images but {folder / labels_name} "
            f"holds {len(labels)} labels; the two files must come from the same split"
        )
    if images.shape[1:] != (28, 28):
        raise DataError(f"{folder / images_name} holds {tuple(images.shape[1:])} images, expected 28x28")
    if len(labels) and int(labels.max()) > 9:
        raise DataError(f"{folder / labels_name} holds label {int(labels.max())}; expected 0-9")
    return Split(images, labels)


def find_split(dataset: str, data_dir: str | os.PathLike, split: str) -> Split | None:
    """`split` of `dataset` if its files are already in `data_dir`, else None: never downloads."""
    try:
        if dataset not in DATASETS or (
            dataset != "usps" and _find_idx_folder(Path(data_dir), dataset) is None
        ):
            return None
        return load_split(dataset, data_dir, split)
    except DataError:
        return None


def _present_in(root: Path, dataset: str, split: str) -> bool:
    if dataset == "usps":
        from lenet_cli.data.usps import FILES, folder_with

        return folder_with(root, FILES[split]) is not None
    return _find_idx_folder(root, dataset) is not None


def split_train_val(train: Split, val_size: int, seed: int) -> tuple[Split, Split | None]:
    """Hold out `val_size` training images, chosen by a permutation seeded with `seed`."""
    if val_size <= 0:
        return train, None
    if val_size >= len(train):
        raise DataError(
            f"--val-size {val_size} leaves no training images (the training set has {len(train)})"
        )
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    return train.subset(order[val_size:]), train.subset(order[:val_size])


def _present(folder: Path, name: str) -> Path | None:
    """The IDX file `name` (or `name`.gz) in `folder`; one that is there but not a regular file is an error."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        kind = file_kind(candidate)
        if kind == "file":
            return candidate
        if kind is not None:
            raise DataError(f"{candidate} is {kind}, not a regular file")
    return None


def _find_idx_folder(root: Path, dataset: str) -> Path | None:
    """The folder holding the IDX files: `root` itself or torchvision's `root/<Class>/raw`."""
    for folder in (root, root / DATASETS[dataset] / "raw"):
        found = [name for name in ALL_FILES if _present(folder, name)]
        if found:
            missing = [name for name in ALL_FILES if name not in found]
            if missing:
                raise DataError(f"{folder} is missing {', '.join(missing)} (gzipped or not)")
            return folder
    return None


def _download(root: Path, dataset: str) -> Path:
    import torchvision.datasets

    dataset_cls = getattr(torchvision.datasets, DATASETS[dataset])
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # an unreachable mirror must not hang the run
    try:
        for train in (True, False):
            dataset_cls(str(root), train=train, download=True)
    except Exception as error:  # torchvision raises RuntimeError, URLError, OSError...
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        causes = [
            line.strip("<>").removeprefix("urlopen error ") for line in lines if "urlopen error" in line
        ]
        reason = (causes or lines or [type(error).__name__])[-1]
        raise DataError(
            f"{dataset} is not in {root} and could not be downloaded ({reason}). "
            f"Put {', '.join(name + '.gz' for name in ALL_FILES)} (gzipped or not) in one folder "
            f"and pass it with --data-dir"
        ) from None
    finally:
        socket.setdefaulttimeout(previous_timeout)
    return root / DATASETS[dataset] / "raw"


def _read_idx(folder: Path, name: str, expected_magic: int) -> torch.Tensor:
    path = _present(folder, name)
    if path is None:
        raise DataError(f"{folder / name} is missing (gzipped or not)")
    if path.suffix != ".gz":
        _check_idx(path, path, expected_magic)
        return _parse_idx(path, expected_magic)
    with tempfile.TemporaryDirectory(prefix="lenet-") as scratch:
        plain_path = Path(scratch) / name
        try:
            with gzip.open(path) as packed, open(plain_path, "wb") as plain:
                shutil.copyfileobj(packed, plain)
        except (OSError, EOFError, gzip.BadGzipFile) as error:
            raise DataError(f"{path} is not a readable gzip file ({error})") from None
        _check_idx(plain_path, path, expected_magic)
        return _parse_idx(plain_path, expected_magic)


def _parse_idx(path: Path, expected_magic: int) -> torch.Tensor:
    """An IDX file `_check_idx` has checked, parsed by torchvision: uint8 images or int64 labels.

    Importing torchvision costs little here: it brings torch._dynamo, which the optimizer imports anyway.
    """
    from torchvision.datasets.mnist import read_image_file, read_label_file

    return read_image_file(str(path)) if expected_magic == IMAGES_MAGIC else read_label_file(str(path))


def _check_idx(path: Path, shown_as: Path, expected_magic: int) -> None:
    """Check the header and length before parsing, so corruption gets a clear error."""
    size = path.stat().st_size
    dims = expected_magic - 2048
    header_size = 4 + 4 * dims
    try:
        with open_regular(path, MAX_DATA_BYTES) as handle:
            header = handle.read(header_size)
    except NotReadable as error:
        raise DataError(f"{shown_as} {error}") from None
    if len(header) < 4:
        raise DataError(f"{shown_as} is empty or truncated")
    (magic,) = struct.unpack(">I", header[:4])
    if magic != expected_magic:
        kind = "image" if expected_magic == IMAGES_MAGIC else "label"
        raise DataError(
            f"{shown_as} is not an IDX {kind} file (magic number {magic}, expected {expected_magic})"
        )
    if len(header) < header_size:
        raise DataError(f"{shown_as} is truncated (incomplete header)")
    shape = struct.unpack(f">{dims}I", header[4:])
    expected_size = header_size + math.prod(shape)
    if size != expected_size:
        raise DataError(
            f"{shown_as} is truncated or padded: its header promises {expected_size} bytes, "
            f"the file has {size}"
        )


def as_input(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> the model's input: float32 in [0, 1], shape (N, 1, 28, 28)."""
    return images_u8.unsqueeze(1).to(torch.float32).div_(255)
