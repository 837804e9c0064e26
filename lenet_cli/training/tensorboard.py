"""TensorBoard event files in the run folder, when the optional extra is installed
(`pip install 'lenet-cli[tensorboard]'`); without it, nothing is written and nothing warns.

Open them with `tensorboard --logdir checkpoints`. Scalars: the training loss of every step, and per
epoch the losses, learning rate and training/validation accuracy; at the end the test accuracy and loss,
the misclassified test images and the confusion matrix as images, and the run's settings (hparams).
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lenet_cli.core.config import class_names
from lenet_cli.core.records import EpochRecord, TrainResult
from lenet_cli.training.reporters import Reporter, RunView

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

HPARAM_TYPES = (int, float, str, bool)  # what add_hparams accepts
GRID_IMAGES, GRID_COLUMNS, GRID_GAP = 100, 10, 2  # the misclassified grid: at most 10 x 10 digits


def tensorboard_log() -> list[Reporter]:
    """A TensorBoard reporter if the `tensorboard` package is installed, else none."""
    return [TensorBoardLog()] if importlib.util.find_spec("tensorboard") is not None else []


class TensorBoardLog(Reporter):
    """Event files in run-N/ (next to last.pt), so `tensorboard --logdir checkpoints` shows every run."""

    def __init__(self) -> None:
        self.writer: SummaryWriter | None = None

    def open(self, run: RunView) -> SummaryWriter:
        """The writer, made at the first epoch's end: a run that fails before it leaves no event file (and
        so no run folder) behind."""
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(run.run_dir))
        return self.writer

    def on_epoch_end(self, run: RunView, record: EpochRecord) -> None:
        writer = self.open(run)
        steps_per_epoch = run.describe()["steps_per_epoch"]
        progress = run.last_epoch
        first_step = (record.epoch - 1) * steps_per_epoch
        if progress is not None:
            for step, loss in enumerate(progress.step_losses[: progress.steps_done].tolist(), first_step + 1):
                writer.add_scalar("loss/train_step", loss, step)
        step = first_step + (progress.steps_done if progress is not None else steps_per_epoch)
        scalars = {
            "loss/train": record.train_loss,
            "loss/val": record.val_loss,
            "accuracy/train": record.train_accuracy,
            "accuracy/val": record.val_accuracy,
            "lr": record.lr,
        }
        for name, value in scalars.items():
            if value is not None:
                writer.add_scalar(name, value, step)
        writer.flush()

    def on_stop(self, run: RunView) -> None:
        if self.writer is not None:
            self.writer.close()

    def on_end(self, run: RunView, result: TrainResult) -> None:
        writer = self.open(run)
        if result.test is not None:
            step = result.steps
            writer.add_scalar("accuracy/test", result.test.accuracy, step)
            writer.add_scalar("loss/test", result.test.loss, step)
            for tag, picture in _test_pictures(run, result.test.confusion).items():
                writer.add_image(tag, picture, step, dataformats="HWC")
            writer.add_hparams(
                _settings(run),
                {"hparam/test_accuracy": result.test.accuracy, "hparam/test_loss": result.test.loss},
                run_name=".",  # in the run folder itself, not a sub-folder
                global_step=step,
            )
        writer.close()


def _settings(run: RunView) -> dict[str, Any]:
    """The run's settings as hparams: scalars and strings only (a list of folders becomes one string)."""
    settings = {}
    for name, value in run.config.to_dict().items():
        if isinstance(value, list | tuple):
            value = ", ".join(map(str, value))
        settings[name] = value if isinstance(value, HPARAM_TYPES) else str(value)
    return settings


def _test_pictures(run: RunView, confusion: Any) -> dict[str, Any]:
    """The misclassified test images (a grid, the most confident mistakes first) and the confusion
    matrix (RunPictures' confusion_matrix.png, drawn first), as (H, W, 3) uint8 arrays."""
    import numpy as np
    from PIL import Image

    from lenet_cli.inference.evaluate import evaluate_with_mistakes
    from lenet_cli.inference.plots import draw_confusion_matrix

    test = run.data.test
    mistakes = run.test_mistakes
    if mistakes is None:  # under torchrun each process tested a share: rank 0 tests all of them here
        mistakes = evaluate_with_mistakes(run.model, test)[1]
    wrong = test.images.cpu()[[mistake.index for mistake in mistakes[:GRID_IMAGES]]]
    pictures = {"test/misclassified": np.repeat(_grid(wrong.numpy())[..., None], 3, axis=2)}
    drawn = run.run_dir / "confusion_matrix.png"
    with tempfile.TemporaryDirectory() as folder:
        if not drawn.is_file():
            drawn = draw_confusion_matrix(
                confusion, class_names(run.config.dataset), Path(folder) / drawn.name
            )
        with Image.open(drawn) as image:
            pictures["test/confusion_matrix"] = np.asarray(image.convert("RGB"))
    return pictures


def _grid(images: Any) -> Any:
    """(N, 28, 28) uint8 tiled GRID_COLUMNS across on a grey ground (a blank tile when there are none)."""
    import numpy as np

    count = max(len(images), 1)
    rows, size = -(-count // GRID_COLUMNS), 28 + GRID_GAP
    grid = np.full((rows * size + GRID_GAP, min(count, GRID_COLUMNS) * size + GRID_GAP), 128, np.uint8)
    for slot, image in enumerate(images):
        top, left = (slot // GRID_COLUMNS) * size + GRID_GAP, (slot % GRID_COLUMNS) * size + GRID_GAP
        grid[top : top + 28, left : left + 28] = image
    return grid
