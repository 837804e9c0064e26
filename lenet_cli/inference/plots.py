"""Pictures of runs and evaluations, drawn with matplotlib's Agg backend into PNG files.

matplotlib is imported inside each function (with `Figure` + the Agg canvas, never pyplot), so
`lenet --help` and training start-up never pay for it, and no global state or window is involved.
Every picture is written atomically.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lenet_cli.core.records import EpochRecord, Metrics, Misclassified
from lenet_cli.core.writing import atomic_write, make_folder

if TYPE_CHECKING:
    import torch

DPI = 100


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Any, path: Path) -> Path:
    return atomic_write(path, lambda handle: figure.savefig(handle, format="png"), "picture")


def draw_curves(history: Sequence[EpochRecord], path: Path) -> Path:
    """Loss per epoch (train, and validation when there is one); validation accuracy beside it."""
    epochs = [record.epoch for record in history]
    validated = [record for record in history if record.val_accuracy is not None]
    figure = _figure(10 if validated else 6, 4)
    axes = figure.subplots(1, 2 if validated else 1, squeeze=False)[0]
    loss_axes = axes[0]
    loss_axes.plot(epochs, [record.train_loss for record in history], "o-", label="train loss")
    if validated:
        loss_axes.plot(
            [r.epoch for r in validated], [r.val_loss for r in validated], "s-", label="validation loss"
        )
        accuracy_axes = axes[1]
        accuracy_axes.plot(
            [r.epoch for r in validated], [100 * r.val_accuracy for r in validated], "s-", color="tab:green"
        )
        accuracy_axes.set(title="Validation accuracy", xlabel="epoch", ylabel="accuracy (%)")
        accuracy_axes.grid(alpha=0.3)
        _integer_ticks(accuracy_axes)
    loss_axes.set(title="Loss", xlabel="epoch", ylabel="cross-entropy")
    positive = [v for r in history for v in (r.train_loss, r.val_loss) if v is not None and v > 0]
    if positive and max(positive) / min(positive) > 20:  # a loss falling by orders: log scale, plain labels
        from matplotlib.ticker import FuncFormatter

        loss_axes.set_yscale("log")
        loss_axes.set_title("Loss (log scale)")
        loss_axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:g}"))
        loss_axes.yaxis.set_minor_formatter(FuncFormatter(_two_and_five))
    loss_axes.grid(alpha=0.3)
    loss_axes.legend()
    _integer_ticks(loss_axes)
    return _save(figure, path)


def _two_and_five(value: float, _position: int) -> str:
    """Minor log-axis labels at 2 and 5 times a power of ten only, so they do not crowd."""
    leading = round(value / 10 ** math.floor(math.log10(value))) if value > 0 else 0
    return f"{value:g}" if leading in (2, 5) else ""


def _integer_ticks(axes: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(integer=True))


def draw_confusion_matrix(
    confusion: torch.Tensor, class_names: list[str], path: Path, title: str = ""
) -> Path:
    """Counts in the cells, colour by the row-normalised rate (sklearn's ConfusionMatrixDisplay look)."""
    import torch

    counts = confusion.to(torch.float64)
    rates = counts / counts.sum(dim=1, keepdim=True).clamp(min=1)
    size = len(class_names)
    figure = _figure(7.5, 6.5)
    axes = figure.subplots()
    image = axes.imshow(rates.numpy(), cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, label="share of the true class")
    for row in range(size):
        for column in range(size):
            count = int(confusion[row, column])
            if count == 0 and row != column:
                continue
            colour = "white" if rates[row, column] > 0.5 else ("tab:red" if row != column else "black")
            axes.text(column, row, f"{count:,}", ha="center", va="center", fontsize=8, color=colour)
    axes.set_xticks(range(size), class_names, rotation=45 if max(map(len, class_names)) > 2 else 0)
    axes.set_yticks(range(size), class_names)
    axes.set(xlabel="Predicted label", ylabel="True label")
    correct, total = int(confusion.diagonal().sum()), int(confusion.sum())
    accuracy = f"accuracy {100 * correct / total:.2f}% ({correct:,}/{total:,})" if total else ""
    axes.set_title(f"{title}\n{accuracy}" if title else accuracy)
    return _save(figure, path)


def draw_misclassified(
    images_u8: torch.Tensor,
    true_labels: Sequence[int],
    predicted: Sequence[int],
    confidences: Sequence[float],
    class_names: list[str],
    path: Path,
    total: int | None = None,
) -> Path:
    """A grid of misclassified 28x28 inputs (the first 100), each captioned `true → predicted` and
    the confidence; `total` is how many mistakes there were in all."""
    count = min(len(images_u8), 100)
    total = len(images_u8) if total is None else total
    columns = min(10, max(count, 1))
    rows = max(1, -(-count // columns))
    figure = _figure(1.25 * columns, 1.45 * rows + 0.4)
    grid = figure.subplots(rows, columns, squeeze=False)
    for slot, axes in enumerate(grid.flat):
        axes.set_axis_off()
        if slot >= count:
            continue
        axes.imshow(images_u8[slot].numpy(), cmap="gray", vmin=0, vmax=255)
        axes.set_title(
            f"{class_names[true_labels[slot]]} → {class_names[predicted[slot]]}\n{confidences[slot]:.1%}",
            fontsize=8,
            color="tab:red",
        )
    shown = f"{count} of {len(images_u8)}" if len(images_u8) > count else f"{count}"
    figure.suptitle(
        f"Misclassified: {shown} (true → predicted, confidence)" if count else "No misclassified images"
    )
    return _save(figure, path)


def draw_evaluation(
    folder: Path,
    metrics: Metrics,
    mistakes: Sequence[Misclassified],
    images_u8: torch.Tensor,
    class_names: list[str],
    title: str,
) -> list[Path]:
    """`lenet evaluate --plots`: folder/confusion_matrix.png and folder/misclassified.png."""
    make_folder(folder)
    shown = list(mistakes[:100])
    return [
        draw_confusion_matrix(metrics.confusion, class_names, folder / "confusion_matrix.png", title=title),
        draw_misclassified(
            images_u8[[mistake.index for mistake in shown]] if shown else images_u8[:0],
            [mistake.label for mistake in shown],
            [mistake.predicted for mistake in shown],
            [mistake.confidence for mistake in shown],
            class_names,
            folder / "misclassified.png",
            total=len(mistakes),
        ),
    ]


def draw_number_mistakes(mistakes: Sequence[Any], path: Path, total: int, shown: int = 16) -> Path:
    """`lenet evaluate --numbers --plots`: the most confident mistakes, each field as the reader saw it
    (its cleaned ink) with a box round each digit read, the label and the reading above."""
    from matplotlib.patches import Rectangle

    picked = list(mistakes[:shown])
    columns = 2
    rows = max(1, math.ceil(len(picked) / columns))
    figure = _figure(12, 1.5 * rows + 0.6)
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for axis, mistake in zip(axes.ravel(), picked, strict=False):
        reading = mistake.reading
        axis.imshow(reading.field, cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
        for digit in reading.digits:
            x, y, w, h = (value / reading.scale for value in digit.box)
            axis.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor="tab:red", linewidth=1))
            axis.text(x, y - 1, str(digit.label), color="tab:red", fontsize=8, va="bottom")
        name = Path(mistake.path).name
        axis.set_title(f"{name}: {mistake.label} read {mistake.read} ({mistake.confidence:.0%})", fontsize=9)
    if not picked:
        axes[0, 0].text(0.5, 0.5, "no mistakes", ha="center", va="center")
    figure.suptitle(
        f"Numbers read wrong: {total:,} (the {len(picked)} most confident; boxes: the digits read)"
    )
    return _save(figure, path)
