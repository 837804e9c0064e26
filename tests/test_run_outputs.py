"""What a run folder holds besides checkpoints: metrics.csv, curves.png, confusion_matrix.png."""

import csv
import json
import os

import pytest
from helpers import interrupt_at, runner
from PIL import Image

from lenet_cli.cli.commands import app
from lenet_cli.core.config import TrainConfig
from lenet_cli.core.writing import remove_stale_temporaries
from lenet_cli.formats.checkpoint import resume_config
from lenet_cli.training.fit import TrainingInterrupted, fit


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def assert_png(path, min_size=(400, 300)):
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size[0] >= min_size[0] and image.size[1] >= min_size[1]


def test_run_folder_has_metrics_matching_the_history_and_pictures(tiny_mnist, tmp_path):
    result = runner.invoke(
        app,
        ["train", "--epochs", "2", "--val-size", "100", "--data-dir", str(tiny_mnist)]
        + ["--checkpoint-dir", str(tmp_path), "--json"],
    )
    assert result.exit_code == 0, result.output
    history = json.loads(result.stdout)["history"]
    run_dir = tmp_path / "run-1"
    rows = read_rows(run_dir / "metrics.csv")
    assert list(rows[0]) == ["epoch", "train_loss", "val_loss", "val_accuracy", "lr", "seconds"]
    assert len(rows) == len(history) == 2
    for row, record in zip(rows, history, strict=True):
        assert int(row["epoch"]) == record["epoch"]
        for column in ("train_loss", "val_loss", "val_accuracy", "lr", "seconds"):
            assert float(row[column]) == pytest.approx(record[column], rel=1e-12), column
    assert_png(run_dir / "curves.png")
    assert_png(run_dir / "confusion_matrix.png")
    written = sorted(p.name for p in run_dir.iterdir() if not p.name.startswith("events.out.tfevents."))
    assert written == [  # and TensorBoard's files when it is installed (tests/test_train_budget.py)
        "best.pt",
        "confusion_matrix.png",
        "curves.png",
        "last.pt",
        "metrics.csv",
    ]


def test_interrupted_then_resumed_run_has_each_epoch_once_and_no_stale_temporary(tiny_mnist, tmp_path):
    config = TrainConfig(epochs=3, batch_size=32, data_dir=str(tiny_mnist), checkpoint_dir=str(tmp_path))
    with pytest.raises(TrainingInterrupted) as stopped:
        fit(config, on_step=interrupt_at(19 + 7))  # 19 steps per epoch: step 7 of epoch 2
    run_dir = stopped.value.checkpoint.parent
    assert [row["epoch"] for row in read_rows(run_dir / "metrics.csv")] == ["1"]
    assert_png(run_dir / "curves.png")  # an interrupted run draws what it has
    stale = run_dir / ".last.pt.tmp-999999999"  # as a `kill -9` mid-write leaves it
    stale.write_bytes(b"half a checkpoint")

    resumed = fit(resume_config(stopped.value.checkpoint, {}), resume_from=stopped.value.checkpoint)
    rows = read_rows(run_dir / "metrics.csv")
    assert [row["epoch"] for row in rows] == ["1", "2", "3"]
    assert [float(row["train_loss"]) for row in rows] == [r.train_loss for r in resumed.history]
    assert not stale.exists()
    assert not [p for p in run_dir.iterdir() if ".tmp-" in p.name]
    assert_png(run_dir / "confusion_matrix.png")


def test_only_temporaries_of_dead_processes_are_removed(tmp_path):
    alive = tmp_path / f".last.pt.tmp-{os.getppid()}"  # our parent is running
    dead = tmp_path / ".best.pt.tmp-999999999"
    unrelated = tmp_path / "notes.tmp-1"
    for path in (alive, dead, unrelated):
        path.write_bytes(b"x")
    assert remove_stale_temporaries(tmp_path) == [dead]
    assert alive.exists() and unrelated.exists() and not dead.exists()
