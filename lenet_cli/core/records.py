"""Plain records of what lenet computed: an epoch of training, a finished run, an evaluation.

They sit at the bottom of the house: the training loop writes them, and everything that reads a run
(reporters, pictures, the console, `--json`) reads them without importing the loop.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lenet_cli.core.config import TrainConfig

if TYPE_CHECKING:
    import torch


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    lr: float  # learning rate at the end of the epoch
    seconds: float
    val_loss: float | None = None
    val_accuracy: float | None = None
    data_per_rank: list[dict[str, int]] | None = None  # under torchrun: images and index sum per rank
    train_accuracy: float | None = None  # of the batches as trained on (this process's share under torchrun)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Metrics:
    loss: float  # mean cross-entropy
    confusion: torch.Tensor  # (classes, classes) int64; rows = true label, columns = prediction

    @property
    def total(self) -> int:
        return int(self.confusion.sum())

    @property
    def correct(self) -> int:
        return int(self.confusion.diagonal().sum())

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def per_class(self) -> list[dict[str, Any]]:
        true_counts = self.confusion.sum(dim=1)
        predicted_counts = self.confusion.sum(dim=0)
        hits = self.confusion.diagonal()
        rows = []
        for label in range(len(hits)):
            hit = int(hits[label])
            predicted, support = int(predicted_counts[label]), int(true_counts[label])
            rows.append(
                {
                    "label": label,
                    "precision": hit / predicted if predicted else 0.0,
                    "recall": hit / support if support else 0.0,
                    "support": support,
                }
            )
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "loss": self.loss,
            "correct": self.correct,
            "total": self.total,
            "per_class": self.per_class(),
            "confusion_matrix": self.confusion.tolist(),
        }


@dataclass
class Misclassified:
    index: int  # position in the evaluated set
    label: int
    predicted: int
    confidence: float  # the probability given to `predicted`
    path: str | None = None  # the image file, for labelled folders

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "label": self.label,
            "predicted": self.predicted,
            "confidence": self.confidence,
        }


@dataclass
class TrainResult:
    config: TrainConfig
    device: str
    run_dir: Path
    checkpoint: Path  # the final weights (last.pt)
    best_checkpoint: Path | None  # best validation accuracy (best.pt), when validating
    history: list[EpochRecord] = field(default_factory=list)
    test: Metrics | None = None
    seconds: float = 0.0
    rank: int = 0  # under torchrun, only rank 0 reports
    world_size: int = 1
    steps: int = 0  # optimizer steps taken in all
    ended: str | None = None  # how a --time run ended, or why --patience stopped it

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": str(self.checkpoint),
            "best_checkpoint": str(self.best_checkpoint) if self.best_checkpoint else None,
            "run_dir": str(self.run_dir),
            "device": self.device,
            "world_size": self.world_size,
            "dataset": self.config.dataset,
            "epochs": len(self.history),
            "config": self.config.to_dict(),
            "history": [record.to_dict() for record in self.history],
            "test_accuracy": self.test.accuracy if self.test else None,
            "test_loss": self.test.loss if self.test else None,
            "seconds": round(self.seconds, 3),
            "steps": self.steps,
            "ended": self.ended,
        }
