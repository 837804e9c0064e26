"""Evaluation: logits in large batches under inference_mode, and the metrics derived from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lenet_cli.config import EVAL_BATCH_SIZE
from lenet_cli.data import Split, as_input
from lenet_cli.distributed import Cluster


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


def model_device(model: nn.Module) -> torch.device:
    """Where the model's weights live (the CPU for a model without torch weights, e.g. an ONNX file)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def predict_logits(
    model: nn.Module, images_u8: torch.Tensor, batch_size: int = EVAL_BATCH_SIZE
) -> torch.Tensor:
    """Logits for uint8 images (N, 28, 28), computed on the model's device, returned there."""
    device = model_device(model)
    was_training = model.training
    model.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(images_u8), batch_size):
            batch = images_u8[start : start + batch_size].to(device, non_blocking=True)
            outputs.append(model(as_input(batch)))
    model.train(was_training)
    if not outputs:
        return torch.empty(0, 10, device=device)
    return torch.cat(outputs)


def evaluate(
    model: nn.Module,
    split: Split,
    batch_size: int = EVAL_BATCH_SIZE,
    num_classes: int = 10,
    cluster: Cluster | None = None,
) -> Metrics:
    """Accuracy, mean loss and confusion matrix of `model` on `split`.

    Under torchrun (`cluster` from lenet_cli.distributed), each rank evaluates a disjoint share and
    the sums are combined, so every rank gets what one process computes on the same weights.
    """
    if cluster is not None and cluster.active:
        split = split.subset(torch.arange(cluster.rank, len(split), cluster.world_size))
    logits = predict_logits(model, split.images, batch_size)
    return metrics_from_logits(logits, split.labels.to(logits.device), num_classes, cluster)


def metrics_from_logits(
    logits: torch.Tensor, labels: torch.Tensor, num_classes: int = 10, cluster: Cluster | None = None
) -> Metrics:
    with torch.inference_mode():
        loss_sum = F.cross_entropy(logits, labels, reduction="sum").double()
        predictions = logits.argmax(dim=1)
        confusion = torch.bincount(labels * num_classes + predictions, minlength=num_classes**2).double()
    totals = torch.cat([loss_sum.reshape(1), confusion])
    if cluster is not None:
        cluster.sum_(totals)
    count = max(int(totals[1:].sum()), 1)
    confusion_matrix = totals[1:].round().long().reshape(num_classes, num_classes).cpu()
    return Metrics(loss=float(totals[0]) / count, confusion=confusion_matrix)


def evaluate_with_mistakes(
    model: nn.Module,
    split: Split,
    paths: list[str] | None = None,
    batch_size: int = EVAL_BATCH_SIZE,
    num_classes: int = 10,
) -> tuple[Metrics, list[Misclassified]]:
    """`evaluate`, plus every misclassified image, the most confident mistakes first."""
    logits = predict_logits(model, split.images, batch_size).cpu()
    labels = split.labels.cpu()
    metrics = metrics_from_logits(logits, labels, num_classes)
    confidences, predicted = logits.softmax(dim=1).max(dim=1)
    wrong = (predicted != labels).nonzero().flatten().tolist()
    mistakes = [
        Misclassified(
            index,
            int(labels[index]),
            int(predicted[index]),
            float(confidences[index]),
            paths[index] if paths else None,
        )
        for index in wrong
    ]
    mistakes.sort(key=lambda mistake: (-mistake.confidence, mistake.index))
    return metrics, mistakes
