"""What a training run learns from and is tested on, loaded once and checked before the first step."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lenet_cli.core.config import CUT_SHARE, NUMBER_SHARE, TrainConfig
from lenet_cli.core.distributed import Cluster
from lenet_cli.core.errors import LenetError
from lenet_cli.data.datasets import Split, load_split, split_train_val
from lenet_cli.training.cuts import ReaderCuts, load_cuts
from lenet_cli.training.loop import EpochPlan, epoch_batches, epoch_order
from lenet_cli.training.made_pool import check_dataset
from lenet_cli.training.number_pool import OwnNumbers, load_numbers
from lenet_cli.training.own_images import OwnImages, load_own_images
from lenet_cli.training.styles import StyleMix, load_styles


@dataclass
class TrainingData:
    train: Split  # on the device
    val: Split | None  # held out from the training set (--val-size)
    test: Split
    own_images: OwnImages | None  # --images, on the device
    styles: StyleMix | None  # --styles, on the device
    cuts: ReaderCuts | None  # --cuts, on the device
    dataset_per_step: int  # dataset images in every (global) batch, beside the user's own
    steps_per_epoch: int
    seed: int
    numbers: OwnNumbers | None = None  # --numbers, on the device, aligned each epoch

    def plan(self, epoch: int) -> EpochPlan:
        """The data of epoch `epoch` (0-based): the same for the same (seed, epoch), so resume is exact."""
        sources = (self.own_images, self.styles, self.cuts, self.numbers)
        mixed = [source for source in sources if source is not None]
        extras = tuple(source.epoch_plan(epoch, self.steps_per_epoch) for source in mixed)
        order = epoch_order(len(self.train), self.seed, epoch)
        return EpochPlan(epoch, self.train, order, self.dataset_per_step, extras)

    def describe(self) -> dict[str, object]:
        return {
            "train_images": len(self.train),
            "val_images": len(self.val) if self.val else 0,
            "test_images": len(self.test),
            "own_images": self.own_images.summary() if self.own_images else None,
            "styles": self.styles.summary() if self.styles else None,
            "cuts": self.cuts.summary() if self.cuts else None,
            "numbers": self.numbers.summary() if self.numbers else None,
        }


def load_training_data(config: TrainConfig, device: torch.device, cluster: Cluster) -> TrainingData:
    """The dataset's splits (and the user's images, the style pool, the reader's cuts), with the batch size checked against them."""
    check_dataset(config)
    train_full = load_split(config.dataset, config.data_dir, "train")
    test = load_split(config.dataset, config.data_dir, "test")
    train, val = split_train_val(train_full, config.val_size, config.seed)
    own_images = load_own_images(config, device, cluster) if config.images else None
    styles = load_styles(config, train, device) if config.styles else None
    cuts = load_cuts(config, train, device) if config.cuts else None
    numbers = load_numbers(config, device, cluster.is_main) if config.numbers else None
    mixed_in = sum(source.per_batch for source in (own_images, styles, cuts, numbers) if source is not None)
    dataset_per_step = config.images_per_step - mixed_in
    if dataset_per_step < cluster.world_size:
        shares = (
            [f"--image-share {config.image_share}"] * bool(own_images)
            + [f"--style-share {config.style_share}"] * bool(styles)
            + [f"--cuts (a share of {CUT_SHARE})"] * bool(cuts)
            + [f"--numbers (a share of {NUMBER_SHARE})"] * bool(numbers)
        )
        raise LenetError(
            f"--batch-size {config.images_per_step} with {' and '.join(shares)} leaves "
            f"{dataset_per_step} dataset images per step; use a larger --batch-size"
            if mixed_in
            else f"--batch-size {config.images_per_step} is global and must be at least the number of "
            f"processes ({cluster.world_size})"
        )
    steps = len(epoch_batches(torch.arange(len(train)), dataset_per_step, cluster.world_size))
    on_device = Split(train.images.to(device), train.labels.to(device))
    return TrainingData(
        on_device, val, test, own_images, styles, cuts, dataset_per_step, steps, config.seed, numbers
    )
