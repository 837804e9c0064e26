"""Rich renderings of the core's results. Only layout lives here: no arithmetic on tensors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from lenet_cli.cli.number_lines import numbers_start_line, numbers_summary
from lenet_cli.cli.tables import NAME, WRAP, Column, ConfusionTable, FittedTable
from lenet_cli.training.reporters import Reporter

if TYPE_CHECKING:
    from lenet_cli.core.records import EpochRecord, Metrics, Misclassified, TrainResult
    from lenet_cli.formats.model_info import ModelInfo
    from lenet_cli.inference.export import ExportResult
    from lenet_cli.inference.predict import Prediction
    from lenet_cli.inference.summary import ModelSummary
    from lenet_cli.training.reporters import RunView


def percent(fraction: float | None) -> str:
    return "—" if fraction is None else f"{fraction * 100:.2f}%"


def human_bytes(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count} B" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


class ConsoleReport(Reporter):
    """The lines a run prints: where it trains and on what, then one line per epoch."""

    def __init__(self, console: Console):
        self.console = console

    def on_start(self, run: RunView) -> None:
        from lenet_cli.core.device import describe_device

        self.console.print(train_start_line(run.describe(), describe_device(run.device)))

    def on_epoch_end(self, run: RunView, record: EpochRecord) -> None:
        self.console.print(epoch_line(record, run.epochs_planned))


def train_start_line(info: dict[str, Any], device_text: str) -> str:
    held_out = f", {info['val_images']:,} validation" if info["val_images"] else ""
    if info.get("world_size", 1) > 1:
        device_text += f" × {info['world_size']} processes (torchrun)"
    line = (
        f"Training on {device_text} · {info['dataset']}: {info['train_images']:,} training{held_out}, "
        f"{info['test_images']:,} test images\nRun folder: {escape(str(info['run_dir']))}"
    )
    if info.get("init"):
        line += f"\nStarting from the weights of {escape(str(info['init']))}"
    if info.get("own_images"):
        own = info["own_images"]
        skipped = f"; {own['skipped']:,} other files skipped" if own["skipped"] else ""
        line += (
            f"\nYour images: {own['count']:,} from {escape(', '.join(own['folders']))}, "
            f"{own['per_batch']} in every batch, augmented{skipped}"
        )
    if info.get("styles"):
        styles = info["styles"]
        sources = ", ".join(f"{count:,} {name}" for name, count in styles["sources"].items() if count)
        line += (
            f"\nStyle digits: {styles['count']:,} ({sources}; {styles['fonts']} fonts, "
            f"{styles['font_files']} files), {styles['per_batch']} in every batch, augmented"
        )
        if styles["missing"]:
            line += "\n" + escape(styles["missing"])
    if info.get("cuts"):
        cuts = info["cuts"]
        line += (
            f"\nReader's cuts: {cuts['count']:,} pieces of composed numbers ({cuts['bad_cuts']:,} bad cuts, "
            f"taught as no digit), {cuts['per_batch']} in every batch, augmented"
        )
    if info.get("numbers"):
        line += numbers_start_line(info["numbers"])
    if info.get("resumed_at"):
        epoch, step = info["resumed_at"]
        line += f"\nResuming after epoch {epoch}" + (f", step {step}" if step else "")
    return line


def epoch_line(record: EpochRecord, epochs: int) -> str:
    line = f"Epoch {record.epoch}/{epochs}  train_loss {record.train_loss:.4f}"
    if record.val_accuracy is not None:
        line += f"  val_loss {record.val_loss:.4f}  val_acc {percent(record.val_accuracy)}"
    return line + f"  lr {record.lr:.2e}  {record.seconds:.1f}s"


def train_end_lines(result: TrainResult) -> list[str]:
    lines = [
        f"Test accuracy: {percent(result.test.accuracy)} ({result.test.correct:,}/{result.test.total:,})"
        f" · test loss {result.test.loss:.4f} · {result.seconds:.1f}s in all",
        f"Checkpoint: {escape(str(result.checkpoint))}",
    ]
    if result.ended:  # --time or --patience
        lines.insert(0, escape(result.ended))
    if result.best_checkpoint:
        best = max(record.val_accuracy or 0.0 for record in result.history)
        lines.append(f"Best validation checkpoint ({percent(best)}): {escape(str(result.best_checkpoint))}")
    return lines


def metrics_view(metrics: Metrics, class_names: list[str]) -> Group:
    headline = Text(
        f"Accuracy: {percent(metrics.accuracy)} ({metrics.correct:,}/{metrics.total:,})   "
        f"Loss: {metrics.loss:.4f}"
    )
    per_class = Table(title="Per class", title_justify="left")
    per_class.add_column("Class")
    for name in ("Precision", "Recall", "Support"):
        per_class.add_column(name, justify="right")
    for row in metrics.per_class():
        per_class.add_row(
            escape(class_names[row["label"]]),
            percent(row["precision"]),
            percent(row["recall"]),
            f"{row['support']:,}",
        )
    return Group(headline, per_class, ConfusionTable(metrics.confusion.tolist(), class_names))


def evaluation_view(
    metrics: Metrics,
    class_names: list[str],
    mistakes: list[Misclassified],
    images_u8: Any,
    errors: list[tuple[str, int, str]],
    show: bool,
    color: bool,
    folders: list[str],
    worst: int = 10,
) -> Group:
    """The metrics; for labelled folders also the most confident mistakes and the unreadable files
    (named within their folder, which the title line gives)."""
    list_mistakes = bool(folders)
    parts: list[Any] = [metrics_view(metrics, class_names)]
    if list_mistakes and mistakes:
        shown = mistakes[:worst]
        title = f"Misclassified: {len(mistakes):,} (the {len(shown)} most confident)"
        columns = [Column("Image", NAME)]
        if show:
            columns.append(Column("Network input", drop=1))
        columns += [Column(header, justify="right") for header in ("True", "Predicted", "Confidence")]
        rows = []
        for mistake in shown:
            name = within(mistake.path or str(mistake.index), folders)
            picture = [digit_picture(images_u8[mistake.index], color)] if show else []
            rows.append(
                [
                    name,
                    *picture,
                    escape(class_names[mistake.label]),
                    escape(class_names[mistake.predicted]),
                    percent(mistake.confidence),
                ]
            )
        table = FittedTable(columns, rows, title=title, title_justify="left")
        parts.append(table)
    if errors:
        parts.append(errors_table(errors, folders))
    return Group(*parts)


def errors_table(errors: list[tuple[str, Any, str]], folders: list[str]) -> FittedTable:
    """The files that could not be read, named within their folder, and why."""
    rows = [[within(path, folders), f"[red]{escape(why)}[/]"] for path, _label, why in errors]
    columns = [Column("Image", NAME), Column("Error", WRAP)]
    return FittedTable(columns, rows, title=f"Could not be read: {len(errors):,}", title_justify="left")


def within(path: str, folders: list[str]) -> str:
    """`path` relative to the first of `folders` that holds it, else as it is."""
    from pathlib import Path

    for folder in folders:
        if Path(path).is_relative_to(folder):
            return str(Path(path).relative_to(folder))
    return path


def without_common_folder(paths: list[str]) -> tuple[str | None, list[str]]:
    """(the leading folder every path shares, or None; the paths without it). Tables shorten what is
    still too long from the left (tables.py)."""
    from pathlib import PurePath

    parts = [PurePath(path).parts for path in paths]
    common = 0
    if len(paths) > 1:
        while all(len(p) > common + 1 and p[common] == parts[0][common] for p in parts):
            common += 1
    names = [
        str(PurePath(*path_parts[common:])) if common else path
        for path, path_parts in zip(paths, parts, strict=True)
    ]
    return (str(PurePath(*parts[0][:common])) if common else None), names


def summary_table(summary: ModelSummary) -> Group:
    """The layers, one a row; the formulas go first where the terminal is narrow, then mult-adds."""
    columns = [
        Column("Layer"),
        Column("Output Shape"),
        Column("Formula", drop=1),
        Column("Params", justify="right"),
        Column("Mult-adds", justify="right", drop=2),
    ]
    rows = []
    for row in summary.rows:
        shape = "(" + ", ".join(map(str, row.output_shape)) + (",)" if len(row.output_shape) == 1 else ")")
        rows.append([row.layer, shape, row.formula, f"{row.params:,}", f"{row.mult_adds:,}"])
    total = [
        "[bold]Total[/]",
        "",
        "",
        f"[bold]{summary.total_params:,}[/]",
        f"[bold]{summary.total_mult_adds:,}[/]",
    ]
    table = FittedTable(columns, rows, total=total, title="LeNet-5", title_justify="left")
    footer = Text(
        f"Parameters: {summary.total_params:,} ({human_bytes(summary.param_bytes)} as float32) · "
        f"mult-adds per image: {summary.total_mult_adds:,} · "
        f"forward activations per image: {human_bytes(summary.activation_bytes)}"
    )
    return Group(table, footer)


def checkpoint_table(info: ModelInfo) -> Table:
    table = Table(title=f"Checkpoint {escape(info.path)}", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    if info.bare:
        table.add_row("Kind", "bare state_dict (no training record)")
        return table
    checkpoint = info.record
    config = checkpoint.get("config", {})
    metrics = checkpoint.get("metrics", {})
    versions = checkpoint.get("versions", {})
    table.add_row("Dataset", escape(str(checkpoint.get("dataset", "?"))))
    table.add_row("Epochs", f"{checkpoint.get('epoch', '?')} of {config.get('epochs', '?')}")
    table.add_row("Test accuracy", percent(metrics.get("test_accuracy")))
    if metrics.get("val_accuracy") is not None:
        table.add_row("Validation accuracy", percent(metrics.get("val_accuracy")))
    table.add_row(
        "Recipe",
        f"{config.get('optimizer', '?')}, {config.get('schedule', '?')} lr {config.get('lr', '?')}, "
        f"batch {config.get('batch_size', '?')}, seed {config.get('seed', '?')}, val_size {config.get('val_size', 0)}",
    )
    if checkpoint.get("init"):
        start = checkpoint["init"]
        accuracy = f" (test accuracy {percent(start['test_accuracy'])})" if start.get("test_accuracy") else ""
        table.add_row("Started from", escape(f"{start['path']}{accuracy}"))
    if checkpoint.get("images"):
        images = checkpoint["images"]
        learned = f"{images['count']:,} from {', '.join(images['folders'])}, sha256 {images['sha256'][:12]}…"
        table.add_row("Your images", escape(learned))
    if checkpoint.get("styles"):
        styles = checkpoint["styles"]
        sources = ", ".join(f"{count:,} {name}" for name, count in styles.get("sources", {}).items() if count)
        share = config.get("style_share", "?")
        table.add_row(
            "Style digits", escape(f"{sources} (--styles, share {share}; {len(styles['fonts'])} fonts)")
        )
    if checkpoint.get("cuts"):
        cuts = checkpoint["cuts"]
        table.add_row("Reader's cuts", f"{cuts['count']:,} pieces, {cuts['bad_cuts']:,} bad cuts (--cuts)")
    if checkpoint.get("numbers"):
        table.add_row("Your numbers", numbers_summary(checkpoint["numbers"]))
    table.add_row("Created", escape(str(checkpoint.get("created", "?"))))
    table.add_row("Versions", escape(", ".join(f"{name} {version}" for name, version in versions.items())))
    return table


def predictions_table(
    predictions: list[Prediction], class_names: list[str], show: bool, color: bool
) -> FittedTable:
    """One row per image, fitted to the terminal (tables.py): file names whole (shared folders dropped,
    in the caption), headers never cut; the prediction, then the rest of the top-k, one class per line;
    an error wrapped in its place."""
    folder, names = without_common_folder([prediction.path for prediction in predictions])
    columns = [Column("Image", NAME)]
    if show:
        columns.append(Column("Network input", drop=1))
    columns.append(Column("Prediction", WRAP))
    rows = []
    for name, prediction in zip(names, predictions, strict=True):
        picture = (
            [digit_picture(prediction.seen, color) if prediction.seen is not None else ""] if show else []
        )
        if prediction.error is not None:
            rows.append([name, *picture, f"[red]error: {escape(prediction.error)}[/]"])
            continue
        ranked = [
            f"{escape(class_names[label])} {probability:.1%}" for label, probability in prediction.top_k
        ]
        # The prediction in bold, the runners-up dimmed beneath it.
        rows.append(
            [name, *picture, "\n".join([f"[bold]{ranked[0]}[/]", *(f"[dim]{r}[/]" for r in ranked[1:])])]
        )
    return FittedTable(
        columns, rows, caption=f"in {escape(folder)}" if folder else None, caption_justify="left"
    )


def digit_picture(image_u8: Any, color: bool) -> Text:
    """A 28x28 uint8 image in 14 terminal lines: each character cell shows two pixel rows with
    half-blocks, in true grey levels on a colour terminal, else black-or-white at half intensity."""
    rows = image_u8.tolist()
    text = Text()
    for top_row, bottom_row in zip(rows[0::2], rows[1::2], strict=True):
        for top, bottom in zip(top_row, bottom_row, strict=True):
            if color:
                text.append("▀", style=f"rgb({top},{top},{top}) on rgb({bottom},{bottom},{bottom})")
            else:
                text.append(" ▄▀█"[(top >= 128) * 2 + (bottom >= 128)])
        text.append("\n")
    text.rstrip()
    return text


def export_lines(result: ExportResult, checkpoint: Any) -> list[str]:
    kind = f"ONNX opset {result.opset}" if result.format == "onnx" else "torch.export program"
    runner = "onnxruntime" if result.format == "onnx" else "torch.export.load"
    return [
        f"Exported {checkpoint} -> {result.path} ({kind}, {human_bytes(result.bytes)})",
        f"Verified with {runner} on {result.images_checked:,} images ({result.checked_on}): "
        f"largest logit difference {result.max_abs_diff:.1e}, same class for {result.argmax_agreement:.2%}",
        f"Try it: lenet evaluate {result.path}",
    ]


def export_table(description: dict[str, Any]) -> Table:
    """What an exported file holds: its inputs and outputs, opset, and the metadata lenet wrote."""
    table = Table(
        title=f"Exported model {escape(description['path'])}", title_justify="left", show_header=False
    )
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("Format", "ONNX" if description["format"] == "onnx" else "torch.export program (.pt2)")
    for kind in ("inputs", "outputs"):
        for tensor in description[kind]:
            shape = ", ".join(str(extent) for extent in tensor["shape"])
            table.add_row(kind[:-1].capitalize(), escape(f"{tensor['name']}: {tensor['type']} ({shape})"))
    if "opset" in description:
        table.add_row(
            "Opset",
            escape(", ".join(f"{domain} {version}" for domain, version in description["opset"].items())),
        )
        table.add_row("Producer", escape(description["producer"]))
    for key, value in description["metadata"].items():
        table.add_row(escape(key), escape(value))
    return table
