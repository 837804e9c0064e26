"""What the sources a run makes for itself share: the pool of digits made at its start and mixed into every
batch (MadePool, the base of the style mix and the reader's cuts), and the check, before any data is read,
that the dataset suits each made or cut source (--styles, --cuts, --numbers)."""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from lenet_cli.core.config import DIGIT_DATASETS, TrainConfig
from lenet_cli.core.errors import LenetError
from lenet_cli.training.own_images import EpochExtras, extras_plan


class MadePool:
    """Digits made at the start of a run (the style pool, the reader's cuts), resident on the device: a
    share of every batch, drawn per (seed, epoch) with `salt` keeping each source's draws its own, and a
    digest of the images and labels that a resume must match."""

    salt = 0

    def __init__(
        self, images_u8: np.ndarray, labels: np.ndarray, per_batch: int, seed: int, device: torch.device
    ):
        self.images_u8 = torch.from_numpy(images_u8).to(device)
        self.labels = torch.from_numpy(labels).to(device)
        self.per_batch, self.seed = per_batch, seed
        digest = hashlib.sha256(images_u8.tobytes())
        digest.update(labels.tobytes())
        self.digest = digest.hexdigest()

    def __len__(self) -> int:
        return len(self.labels)

    def epoch_plan(self, epoch: int, steps: int) -> EpochExtras:
        generator = torch.Generator().manual_seed((self.seed + 1) * self.salt + epoch)
        return extras_plan(self.images_u8, self.labels, self.per_batch, steps, generator)


def check_dataset(config: TrainConfig) -> None:
    """Before any data is read: the style digits are digits, the reader reads digits, numbers are written
    in digits."""
    if config.styles and config.dataset != "mnist":
        raise LenetError(f"--styles draws digits; it works with --dataset mnist, not {config.dataset}")
    if config.cuts and config.dataset != "mnist":
        raise LenetError(
            f"--cuts composes numbers from digits; it works with --dataset mnist, not {config.dataset}"
        )
    if config.numbers and config.dataset not in DIGIT_DATASETS:
        raise LenetError(
            f"--numbers learns digits; it works with --dataset mnist or usps, not {config.dataset}"
        )
