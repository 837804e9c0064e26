"""Teaching lenet a person's handwriting: their labelled images mixed into every training batch.

A few hundred images would be lost among 60,000, and training on them alone would make the model
forget the dataset. So a fixed share of every batch (`--image-share`) is drawn from the user's
images, each randomly rotated, scaled, sheared and shifted on the device in one batched
`grid_sample`, and the rest of the batch comes from the dataset as usual. Which images and which
augmentation each step gets depends on (seed, epoch) alone, so resume stays bit-identical.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from lenet_cli.core.config import TrainConfig
from lenet_cli.core.distributed import Cluster
from lenet_cli.core.errors import DataError, LenetError
from lenet_cli.core.reading import MAX_IMAGE_BYTES, read_regular
from lenet_cli.data.datasets import as_input, class_names
from lenet_cli.data.folders import LabelledImages, read_labelled_folders

MAX_ROTATION_DEGREES = 15.0
SCALE_RANGE = (0.85, 1.1)
MAX_SHEAR = 0.2
MAX_SHIFT = 0.1  # of half the image width: about 1.4 pixels


@dataclass
class EpochExtras:
    """The user's images for each step of one epoch: which ones, and how each is transformed."""

    images_u8: torch.Tensor  # (M, 28, 28) on the device
    labels: torch.Tensor  # (M,) on the device
    indices: torch.Tensor  # (steps, per_batch)
    transforms: torch.Tensor  # (steps, per_batch, 2, 3) affine matrices for affine_grid

    def batch(self, step: int, cluster: Cluster) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented inputs (k, 1, 28, 28) in [0, 1] and their labels; under torchrun, this rank's share."""
        indices = cluster.shard(self.indices[step])
        transforms = cluster.shard(self.transforms[step])
        inputs = as_input(self.images_u8[indices])
        grid = F.affine_grid(transforms, list(inputs.shape), align_corners=False)
        return F.grid_sample(inputs, grid, mode="bilinear", align_corners=False), self.labels[indices]


class OwnImages:
    """The user's labelled images, resident on the device, and what identifies them."""

    def __init__(
        self,
        labelled: LabelledImages,
        folders: tuple[str, ...],
        per_batch: int,
        seed: int,
        device: torch.device,
    ):
        self.images_u8 = labelled.images.to(device)
        self.labels = labelled.labels.to(device)
        self.folders, self.per_batch, self.seed = folders, per_batch, seed
        self.skipped = labelled.skipped
        self.digest = content_digest(folders, labelled)

    def __len__(self) -> int:
        return len(self.labels)

    def epoch_plan(self, epoch: int, steps: int) -> EpochExtras:
        generator = torch.Generator().manual_seed((self.seed + 1) * 2_000_003 + epoch)
        return extras_plan(self.images_u8, self.labels, self.per_batch, steps, generator)

    def identity(self) -> dict[str, Any]:
        """Recorded in every checkpoint, so a resume with other images is refused."""
        return {"folders": list(self.folders), "count": len(self), "sha256": self.digest}

    def check_same_as(self, saved: dict[str, Any] | None, checkpoint: str | Path) -> None:
        if saved is None:
            raise LenetError(f"{checkpoint} was trained without --images; resume it without them")
        if saved.get("sha256") != self.digest:
            raise LenetError(
                f"the images in {', '.join(self.folders)} have changed since {checkpoint} was saved "
                f"({saved.get('count')} images then, {len(self)} now, different content); "
                "resume needs the same images"
            )

    def summary(self) -> dict[str, Any]:
        return {
            "count": len(self),
            "per_batch": self.per_batch,
            "skipped": self.skipped,
            "folders": self.folders,
        }


def load_own_images(config: TrainConfig, device: torch.device, cluster: Cluster) -> OwnImages:
    """Read `config.images` for training; any unreadable image is an error (fix or remove it)."""
    labelled = read_labelled_folders(
        list(config.images), class_names(config.dataset), show_progress=cluster.is_main, regular_only=True
    )
    if labelled.errors:
        path, _, why = labelled.errors[0]
        more = f" and {len(labelled.errors) - 1} more" if len(labelled.errors) > 1 else ""
        raise DataError(f"cannot train on {path}: {why}{more}; fix or remove the unreadable images")
    per_batch = max(1, round(config.images_per_step * config.image_share))
    return OwnImages(labelled, config.images, per_batch, config.seed, device)


def extras_plan(
    images_u8: torch.Tensor, labels: torch.Tensor, per_batch: int, steps: int, generator: torch.Generator
) -> EpochExtras:
    """`per_batch` of `images_u8` for each of `steps` steps, every image equally often, each with its
    own random affine transform: all drawn from `generator`."""
    rounds = math.ceil(steps * per_batch / len(labels))
    order = torch.cat([torch.randperm(len(labels), generator=generator) for _ in range(rounds)])
    indices = order[: steps * per_batch].reshape(steps, per_batch)
    transforms = random_affine(steps * per_batch, generator).reshape(steps, per_batch, 2, 3)
    device = images_u8.device
    return EpochExtras(images_u8, labels, indices.to(device), transforms.to(device))


def random_affine(count: int, generator: torch.Generator) -> torch.Tensor:
    """`count` random 2x3 affine matrices (rotation, scale, shear, shift), for affine_grid."""
    uniform = torch.rand(count, 5, generator=generator, dtype=torch.float64)
    angle = torch.deg2rad((uniform[:, 0] * 2 - 1) * MAX_ROTATION_DEGREES)
    scale = SCALE_RANGE[0] + uniform[:, 1] * (SCALE_RANGE[1] - SCALE_RANGE[0])
    shear = (uniform[:, 2] * 2 - 1) * MAX_SHEAR
    shift = (uniform[:, 3:5] * 2 - 1) * MAX_SHIFT
    cos, sin = torch.cos(angle), torch.sin(angle)
    # affine_grid maps output coordinates to input ones: rotate, shear, then shrink by 1/scale.
    linear = (
        torch.stack(
            [torch.stack([cos, -sin + shear * cos], dim=1), torch.stack([sin, cos + shear * sin], dim=1)],
            dim=1,
        )
        / scale[:, None, None]
    )
    return torch.cat([linear, shift[:, :, None]], dim=2).to(torch.float32)


def content_digest(folders: tuple[str, ...], labelled: LabelledImages) -> str:
    """SHA-256 over each image's path within its folder, label and file bytes."""
    digest = hashlib.sha256()
    for path, label in zip(labelled.paths, labelled.labels.tolist(), strict=True):
        root = next((Path(f) for f in folders if Path(path).is_relative_to(f)), Path(path).parent)
        digest.update(f"{Path(path).relative_to(root)}\0{label}\0".encode())
        digest.update(hashlib.sha256(read_regular(path, MAX_IMAGE_BYTES)).digest())
    return digest.hexdigest()
