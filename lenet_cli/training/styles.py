"""`lenet train --styles`: the style pool (style_data.py) made once per run and mixed into every batch.

Like the user's own images (own_images.py), a fixed share of every batch (`--style-share`) comes from
the pool, each digit randomly rotated, scaled, sheared and shifted on the device, the rest from the
dataset. The pool depends on (seed, training images, fonts found) and each step's draw on (seed,
epoch) alone, so a run is reproducible and resumes exactly; a checkpoint records the pool's digest,
and a resume whose pool differs (other fonts on this machine) is refused by name.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lenet_cli.core.config import TrainConfig
from lenet_cli.core.errors import LenetError
from lenet_cli.data.datasets import Split
from lenet_cli.training.made_pool import MadePool, check_dataset
from lenet_cli.training.style_data import SOURCES, StylePool, make_style_pool
from lenet_cli.training.style_fonts import FoundFonts, find_fonts

POOL_SIZE = 20_000  # style digits made per run; each is seen about twice an epoch, differently augmented


class StyleMix(MadePool):
    """The style pool on the device, what it was made from, and its share of every batch."""

    salt = 3_000_017

    def __init__(self, pool: StylePool, fonts: FoundFonts, per_batch: int, seed: int, device: torch.device):
        super().__init__(pool.images_u8, pool.labels, per_batch, seed, device)
        self.fonts = fonts
        self.counts = {name: int((pool.sources == index).sum()) for index, name in enumerate(SOURCES)}

    def identity(self) -> dict[str, Any]:
        """Recorded in every checkpoint: what the pool was made from, and its digest."""
        return {"fonts": self.fonts.names, "count": len(self), "sources": self.counts, "sha256": self.digest}

    def check_same_as(self, saved: dict[str, Any] | None, checkpoint: object) -> None:
        if saved is None:
            raise LenetError(f"{checkpoint} was trained without --styles; resume it without it")
        if saved.get("sha256") != self.digest:
            then, now = set(saved.get("fonts", [])), set(self.fonts.names)
            fonts = (
                f" (fonts then but not here: {', '.join(sorted(then - now)) or 'none'})"
                if then != now
                else ""
            )
            raise LenetError(
                f"the style digits made here differ from those {checkpoint} was trained on{fonts}; "
                "resume needs the same fonts and training images"
            )

    def summary(self) -> dict[str, Any]:
        return {
            "count": len(self),
            "per_batch": self.per_batch,
            "sources": self.counts,
            "fonts": len(self.fonts.names),
            "font_files": len(self.fonts.paths),
            "missing": self.fonts.missing_line(),
        }


def load_styles(config: TrainConfig, train: Split, device: torch.device) -> StyleMix:
    """Find the fonts and make the pool from `train` (the run's training images, after any hold-out)."""
    check_dataset(config)
    fonts = find_fonts()
    pool = make_style_pool(
        train.images.cpu().numpy(),
        train.labels.cpu().numpy().astype(np.int64),
        fonts.paths,
        POOL_SIZE,
        config.seed,
    )
    per_batch = max(1, round(config.images_per_step * config.style_share))
    return StyleMix(pool, fonts, per_batch, config.seed, device)
