"""Test helpers: write real-format IDX files of learnable synthetic digits.

The product never parses IDX itself (torchvision does); writing a few hundred images here lets every
test run the real loading code with no network and no ../shared.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import torch

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def synthetic_digits(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class k is a bright bar whose row and length depend on k, jittered, over faint noise."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % 10
    labels = labels[torch.randperm(count, generator=generator)]
    images = torch.randint(0, 40, (count, 28, 28), generator=generator, dtype=torch.int64)
    for index, label in enumerate(labels.tolist()):
        row = 3 + 2 * label + int(torch.randint(0, 2, (1,), generator=generator))
        left = 4 + int(torch.randint(0, 4, (1,), generator=generator))
        length = 8 + label
        images[index, row : row + 2, left : left + length] = 255
        images[index, 4:24, 2] = 200 if label % 2 else 0  # a second cue
    return images.to(torch.uint8), labels.to(torch.uint8)


def idx_bytes(tensor: torch.Tensor) -> bytes:
    magic = 0x0800 + tensor.dim()
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", extent) for extent in tensor.shape)
    return header + tensor.contiguous().numpy().tobytes()


def write_idx_set(folder: Path, train_count: int = 600, test_count: int = 200, gzipped: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, count, seed in (("train", train_count, 1), ("test", test_count, 2)):
        images, labels = synthetic_digits(count, seed)
        for name, tensor in zip(FILES[split], (images, labels), strict=True):
            payload = idx_bytes(tensor)
            if gzipped:
                (folder / f"{name}.gz").write_bytes(gzip.compress(payload, mtime=0))
            else:
                (folder / name).write_bytes(payload)
    return folder
