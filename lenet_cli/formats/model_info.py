"""What a model file says of itself, whatever its format: lenet checkpoints, bare state_dicts, ONNX and
torch.export files alike. Everyone who runs a model reads this record, never the file's own keys."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lenet_cli.core.config import DEFAULT_DATA_DIR

SUMMARY_KEYS = (
    "dataset",
    "epoch",
    "config",
    "metrics",
    "versions",
    "created",
    "init",
    "images",
    "styles",
    "cuts",
)


@dataclass
class ModelInfo:
    """What a model file says of itself, for whoever runs it: lenet checkpoints, bare state_dicts and
    exports alike."""

    path: str
    format: str  # "checkpoint", "onnx" or "pt2"
    dataset: str = "mnist"
    test_accuracy: float | None = None
    data_dir: str | None = None  # the folder it was trained from, if recorded
    record: dict[str, Any] = field(default_factory=dict)  # a checkpoint's own keys, or an export's metadata

    @classmethod
    def of_checkpoint(cls, path: str | os.PathLike, checkpoint: dict[str, Any]) -> ModelInfo:
        config = checkpoint.get("config") or {}
        record = {key: value for key, value in checkpoint.items() if key != "model"}
        return cls(
            str(path),
            "checkpoint",
            checkpoint.get("dataset") or "mnist",
            (checkpoint.get("metrics") or {}).get("test_accuracy"),
            config.get("data_dir") or None,
            record,
        )

    @classmethod
    def of_export(cls, path: str | os.PathLike, export_format: str, metadata: dict[str, str]) -> ModelInfo:
        """An ONNX or .pt2 export, from the metadata lenet wrote into it."""
        accuracy = metadata.get("test_accuracy")
        return cls(
            str(path),
            export_format,
            metadata.get("dataset") or "mnist",
            float(accuracy) if accuracy else None,
            metadata.get("data_dir") or None,
            metadata,
        )

    @property
    def bare(self) -> bool:
        """A bare state_dict: weights with no training record."""
        return self.format == "checkpoint" and self.record.get("format_version") is None

    def summary(self) -> dict[str, Any]:
        """`lenet summary --json`'s `checkpoint` entry."""
        return {"path": self.path, **{key: self.record.get(key) for key in SUMMARY_KEYS}}

    def test_data_dir(self, dataset: str, data_dir: str | os.PathLike | None = None) -> Path:
        """Where to find `dataset`'s test set: `data_dir` when given, else the folder this model was
        trained from (same dataset, still there), else the default data folder."""
        if data_dir is not None:
            return Path(data_dir)
        recorded = self.data_dir
        if recorded and self.dataset == dataset and Path(recorded).is_dir():
            return Path(recorded)
        return Path(DEFAULT_DATA_DIR)
