"""`lenet train --numbers DIR`: learn from labelled whole numbers by forced alignment.

The numbers are cut once (number_cuts.py). At the start of every epoch the model being trained scores
every candidate, and each number's label is spelled through its cuts by the reader's best path
constrained to that label (inference/alignment.py): the candidates on it are learned as their digits,
the other candidates as "no digit" (the uniform answer loop.batch_loss gives NOT_A_DIGIT), so the
alignment improves as the model does; where the model's own reading takes other cuts than the label's,
its wrong pieces are no digit too. A share of every batch (NUMBER_SHARE) comes from these pieces, half of
it digits and half not, every piece of each half equally often, augmented like --images.

Which pieces each step takes depends on (seed, epoch) and on the alignment, which depends on the weights
at the epoch's start; a checkpoint records the folders' digest and the alignment of the epoch under way,
so a resumed run trains on exactly what the uninterrupted one would have.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from lenet_cli.core.config import NUMBER_SHARE, TrainConfig
from lenet_cli.core.errors import LenetError
from lenet_cli.inference.alignment import candidate_targets, read_through, spell, wrong_turns
from lenet_cli.inference.forward import predict_logits
from lenet_cli.training.cut_data import NOT_A_DIGIT
from lenet_cli.training.made_pool import check_dataset
from lenet_cli.training.number_cuts import CutNumbers, cut_numbers
from lenet_cli.training.own_images import EpochExtras, random_affine

# Of the numbers' share of a batch: pieces on the path; the rest, pieces off it. Neither half draws the
# pieces of the numbers the model misreads more often than the others: that read dev worse
# (docs/performance.md, "what --numbers teaches").
DIGIT_SHARE = 0.5
SHOWN_UNSPELLABLE = 3  # numbers named in the start line when some cannot be spelled


class OwnNumbers:
    """The cut numbers on the device, the alignment of the current epoch, and their share of every batch."""

    salt = 6_000_011

    def __init__(
        self, cut: CutNumbers, folders: tuple[str, ...], per_batch: int, seed: int, device: torch.device
    ):
        self.cut, self.folders, self.per_batch, self.seed = cut, folders, per_batch, seed
        self.images_u8 = torch.from_numpy(cut.inputs_u8).to(device)
        self.model: nn.Module | None = None
        self.aligned_epoch = -1
        self.targets = np.full(len(cut.inputs_u8), -1, np.int64)
        self.cuts_digest = hashlib.sha256(cut.inputs_u8.tobytes() + cut.penalties.tobytes()).hexdigest()

    def __len__(self) -> int:
        return len(self.cut.numbers)

    def follow(self, model: nn.Module) -> None:
        """Align with this model (the one being trained) at the start of each epoch."""
        self.model = model

    def align(self) -> np.ndarray:
        """Each candidate's target under the current weights: its digit, NOT_A_DIGIT, or -1 (left out)."""
        assert self.model is not None, "follow(model) first"
        logits = predict_logits(self.model, self.images_u8).double()
        scores = torch.log_softmax(logits, dim=1).cpu().numpy() - self.cut.penalties[:, None]
        targets = np.full(len(scores), -1, np.int64)
        for number in self.cut.numbers:
            rows = slice(number.first, number.first + len(number.runs))
            ends = number.spelling_ends or number.ends
            path = spell(number.runs, number.pieces, scores[rows], number.label, ends)
            assert path is not None  # spellability does not depend on the scores; checked when cut
            wanted = candidate_targets(number.runs, number.ink, path, number.label, NOT_A_DIGIT)
            read = read_through(number.runs, number.pieces, scores[rows], number.ends)
            wrong = wrong_turns(number.runs, read, path)
            # a misreading through other cuts: its wrong pieces are no digit
            wanted[[index for index in wrong if wanted[index] < 0]] = NOT_A_DIGIT
            targets[rows] = wanted
        return targets

    def epoch_plan(self, epoch: int, steps: int) -> EpochExtras:
        """The pieces of each step of `epoch`: half on the alignment's paths, half off them."""
        if self.aligned_epoch != epoch:
            self.targets, self.aligned_epoch = self.align(), epoch
        generator = torch.Generator().manual_seed((self.seed + 1) * self.salt + epoch)
        digit = (self.targets >= 0) & (self.targets < NOT_A_DIGIT)
        other = self.targets == NOT_A_DIGIT
        on_path = max(1, round(self.per_batch * DIGIT_SHARE)) if other.any() else self.per_batch
        indices = _draws(np.flatnonzero(digit), on_path, steps, generator)
        if self.per_batch > on_path:
            more = _draws(np.flatnonzero(other), self.per_batch - on_path, steps, generator)
            indices = torch.cat([indices, more], dim=1)
        transforms = random_affine(steps * self.per_batch, generator).reshape(steps, self.per_batch, 2, 3)
        device = self.images_u8.device
        labels = torch.from_numpy(self.targets).to(device)
        return EpochExtras(self.images_u8, labels, indices.to(device), transforms.to(device))

    def identity(self) -> dict[str, Any]:
        """Recorded in every checkpoint: the folders, their digest, and the alignment of the epoch under way."""
        return {
            "folders": list(self.folders),
            "count": len(self),
            "unspellable": len(self.cut.unspellable),
            "pieces": len(self.cut.inputs_u8),
            "sha256": self.cut.digest,
            "cuts_sha256": self.cuts_digest,
            "aligned_epoch": self.aligned_epoch,
            "targets": torch.from_numpy(self.targets.astype(np.int8)),
        }

    def check_same_as(self, saved: dict[str, Any] | None, checkpoint: object) -> None:
        """Refuse other numbers by name, and take over the alignment of the epoch the run stopped in."""
        if saved is None:
            raise LenetError(f"{checkpoint} was trained without --numbers; resume it without it")
        if saved.get("sha256") != self.cut.digest:
            raise LenetError(
                f"the numbers in {', '.join(self.folders)} have changed since {checkpoint} was saved "
                f"({saved.get('count')} numbers then, {len(self)} now, different content); "
                "resume needs the same numbers"
            )
        if saved.get("cuts_sha256") != self.cuts_digest:
            raise LenetError(
                f"the reader cuts the numbers in {', '.join(self.folders)} differently from when {checkpoint} "
                "was saved (another version of lenet?); resume needs the same cuts"
            )
        self.aligned_epoch = int(saved.get("aligned_epoch", -1))
        self.targets = saved["targets"].numpy().astype(np.int64)

    def summary(self) -> dict[str, Any]:
        return {
            "count": len(self),
            "pieces": len(self.cut.inputs_u8),
            "per_batch": self.per_batch,
            "folders": list(self.folders),
            "unspellable": len(self.cut.unspellable),
            "unspellable_examples": [
                f"{path} ({why})" for path, why in self.cut.unspellable[:SHOWN_UNSPELLABLE]
            ],
        }


def _draws(pool: np.ndarray, per_step: int, steps: int, generator: torch.Generator) -> torch.Tensor:
    """(steps, per_step) indices of `pool`, every one equally often, in an order drawn from `generator`."""
    rounds = math.ceil(steps * per_step / len(pool))
    order = torch.cat([torch.randperm(len(pool), generator=generator) for _ in range(rounds)])
    return torch.from_numpy(pool)[order[: steps * per_step]].reshape(steps, per_step)


def load_numbers(config: TrainConfig, device: torch.device, show_progress: bool) -> OwnNumbers:
    """Cut the numbers of `config.numbers` for training."""
    check_dataset(config)
    cut = cut_numbers(list(config.numbers), show_progress)
    per_batch = max(2, round(config.images_per_step * NUMBER_SHARE))
    return OwnNumbers(cut, config.numbers, per_batch, config.seed, device)
