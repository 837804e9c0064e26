"""USPS (`--dataset usps`): the ZIP-code digits of the US Postal Service, read by torchvision's USPS class
from `usps.bz2` (train, 7,291 digits) and `usps.t.bz2` (test, 2,007) in `--data-dir`.

USPS digits are 16x16, deslanted and scaled to fill the box. LeNet-5 reads 28x28 digits in MNIST's form,
so each is put into that form exactly as `lenet predict` puts a user's digit (images/preprocess.py's
normalize_digit: cropped to the ink, 20 pixels, centred by mass): a model evaluated here is measured
on what it would see of these digits through predict.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import torch

from lenet_cli.core.errors import DataError
from lenet_cli.images.preprocess import normalize_digit

FILES = {"train": "usps.bz2", "test": "usps.t.bz2"}
DOWNLOAD_TIMEOUT_S = 20


def load_usps(data_dir: str | os.PathLike, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, 28, 28) uint8 in MNIST form, labels (N,) int64) of USPS's `split`; downloaded by
    torchvision when the file is not in `data_dir` (or `data_dir/usps`)."""
    import torchvision.datasets

    root = folder_with(Path(data_dir), FILES[split])
    download = root is None
    root = root or Path(data_dir)
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        dataset = torchvision.datasets.USPS(str(root), train=split == "train", download=download)
    except Exception as error:  # a download that failed, a damaged bz2 file, a malformed line
        reason = str(error).splitlines()[-1] if str(error).strip() else type(error).__name__
        where = "could not be downloaded" if download else "could not be read"
        raise DataError(
            f"USPS's {split} set ({FILES[split]}) is not in {data_dir} or {where} ({reason}); put usps.bz2 "
            "and usps.t.bz2 (the files torchvision.datasets.USPS reads) in one folder and pass it with --data-dir"
        ) from None
    finally:
        socket.setdefaulttimeout(previous_timeout)
    raw = np.asarray(dataset.data, np.uint8)  # light ink on dark, as torchvision maps the values
    images = np.stack([normalize_digit(digit, invert="no") for digit in raw]) if len(raw) else raw
    return torch.from_numpy(images), torch.tensor(dataset.targets, dtype=torch.int64)


def folder_with(root: Path, name: str) -> Path | None:
    """The folder under `root` that holds USPS's file `name`, if any."""
    for folder in (root, root / "usps", root / "USPS"):
        if (folder / name).is_file():
            return folder
    return None
