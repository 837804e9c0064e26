"""Evaluation: which labelled images to test on, logits in large batches under inference_mode, and the
metrics derived from them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lenet_cli.core.config import EVAL_BATCH_SIZE
from lenet_cli.core.distributed import Cluster
from lenet_cli.core.errors import DataError
from lenet_cli.core.records import Metrics, Misclassified
from lenet_cli.data.datasets import Split, load_split
from lenet_cli.data.folders import read_labelled_folders
from lenet_cli.formats.model_info import ModelInfo
from lenet_cli.inference.forward import predict_logits


@dataclass
class EvaluationData:
    """Labelled images to evaluate on, and how to name them."""

    split: Split
    title: str  # "the mnist test set (.data)" or "1,000 images in my-digits"
    short_title: str  # for pictures: "mnist test set", "my-digits: 1,000 images"
    paths: list[str] | None = None  # image files, for labelled folders
    folders: list[str] = field(default_factory=list)  # the labelled folders
    errors: list[tuple[str, int, str]] = field(default_factory=list)  # (path, label, why) unreadable


def evaluation_data(
    info: ModelInfo,
    dataset: str,
    class_names: list[str],
    data_dir: str | os.PathLike | None = None,
    images: list[str | os.PathLike] | None = None,
    show_progress: bool = False,
) -> EvaluationData:
    """The labelled folders when given, else the dataset's test set from where the model was trained
    (`ModelInfo.test_data_dir`)."""
    if images:
        folders = [Path(folder) for folder in images]
        labelled = read_labelled_folders(folders, class_names, show_progress=show_progress)
        if not len(labelled):
            path, _, why = labelled.errors[0]
            raise DataError(f"none of the {len(labelled.errors)} images could be read (first: {path}: {why})")
        skipped = f" ({labelled.skipped:,} other files skipped)" if labelled.skipped else ""
        title = f"{len(labelled):,} images in {', '.join(map(str, folders))}{skipped}"
        short_title = f"{', '.join(folder.resolve().name for folder in folders)}: {len(labelled):,} images"
        split = Split(labelled.images, labelled.labels)
        return EvaluationData(
            split, title, short_title, labelled.paths, [str(folder) for folder in folders], labelled.errors
        )
    folder = info.test_data_dir(dataset, data_dir)
    split = load_split(dataset, folder, "test")
    return EvaluationData(split, f"the {dataset} test set ({folder})", f"{dataset} test set")


def evaluate(
    model: nn.Module,
    split: Split,
    batch_size: int = EVAL_BATCH_SIZE,
    num_classes: int = 10,
    cluster: Cluster | None = None,
) -> Metrics:
    """Accuracy, mean loss and confusion matrix of `model` on `split`.

    Under torchrun (`cluster` from lenet_cli.core.distributed), each rank evaluates a disjoint share and
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
