"""`lenet train --cuts`: the number reader's cuts (cut_data.py) made once per run and mixed into every batch.

As with --styles, a fixed share of every batch (CUT_SHARE) comes from the pool, augmented on the device;
which pieces each step takes depends on (seed, epoch) alone, so runs are reproducible and resume exactly.
A bad cut's label is NOT_A_DIGIT, for which the loss (loop.batch_loss) asks for no digit: the uniform
answer. The network keeps the tutorial's ten outputs, so the model it makes loads, exports and serves
like any other; `lenet read` takes its low confidence on a bad cut as the cost of that cut.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lenet_cli.core.config import CUT_SHARE, TrainConfig
from lenet_cli.core.errors import LenetError
from lenet_cli.data.datasets import Split
from lenet_cli.training.cut_data import NOT_A_DIGIT, make_cut_pool
from lenet_cli.training.made_pool import MadePool, check_dataset

POOL_SIZE = 20_000  # pieces cut per run; at most half of them bad cuts


class ReaderCuts(MadePool):
    """The cut pool on the device, its digest and its share of every batch."""

    salt = 5_000_011

    def __init__(
        self, images_u8: np.ndarray, labels: np.ndarray, per_batch: int, seed: int, device: torch.device
    ):
        super().__init__(images_u8, labels, per_batch, seed, device)
        self.bad = int((labels == NOT_A_DIGIT).sum())

    def identity(self) -> dict[str, Any]:
        """Recorded in every checkpoint: how many pieces, how many bad, and their digest."""
        return {"count": len(self), "bad_cuts": self.bad, "sha256": self.digest}

    def check_same_as(self, saved: dict[str, Any] | None, checkpoint: object) -> None:
        if saved is None:
            raise LenetError(f"{checkpoint} was trained without --cuts; resume it without it")
        if saved.get("sha256") != self.digest:
            raise LenetError(
                f"the cuts made here differ from those {checkpoint} was trained on; resume needs the same training images"
            )

    def summary(self) -> dict[str, Any]:
        return {"count": len(self), "bad_cuts": self.bad, "per_batch": self.per_batch}


def load_cuts(config: TrainConfig, train: Split, device: torch.device) -> ReaderCuts:
    """Compose numbers from `train` (the run's training images, after any hold-out) and cut them."""
    check_dataset(config)
    pool = make_cut_pool(train.images.cpu().numpy(), train.labels.cpu().numpy(), POOL_SIZE, config.seed)
    per_batch = max(1, round(config.images_per_step * CUT_SHARE))
    return ReaderCuts(pool.images_u8, pool.labels, per_batch, config.seed, device)
