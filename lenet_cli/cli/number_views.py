"""Rich renderings of whole numbers read and of how well a folder of them was read. Layout only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from lenet_cli.cli.render import digit_picture, percent, short_paths, within

if TYPE_CHECKING:
    from lenet_cli.inference.number_metrics import NumberMetrics
    from lenet_cli.inference.numbers import Reading


def readings_view(readings: list[Reading], show: bool, color: bool, width: int = 80) -> Group:
    """A table of the numbers read, each digit's label and confidence beside; with `show`, then for each
    image the field with the digits' boxes outlined and the 28x28 input of each digit, as many to a line
    as `width` columns hold."""
    from lenet_cli.inference.numbers import inputs_strip, overview

    folder, names = short_paths([reading.path for reading in readings])
    table = Table(caption=f"in {escape(folder)}" if folder else None, caption_justify="left")
    table.add_column("Image", overflow="fold", min_width=8)
    table.add_column("Number", no_wrap=True)
    table.add_column("Confidence", justify="right", no_wrap=True)
    table.add_column("Digits", overflow="fold")
    pictures: list[Any] = []
    for name, reading in zip(names, readings, strict=True):
        if reading.error is not None:
            table.add_row(escape(name), f"[red]error: {escape(reading.error)}[/]", "", "")
            continue
        digits = "  ".join(f"{digit.label} [dim]{digit.confidence:.0%}[/]" for digit in reading.digits)
        table.add_row(escape(name), f"[bold]{reading.number}[/]", f"{reading.confidence:.1%}", digits)
        if show:
            per_line = max(1, (width + 2) // 30)
            pictures += [
                Text(f"{name}: {reading.number}"),
                digit_picture(overview(reading, 20, width), color),
            ]
            for start in range(0, len(reading.digits), per_line):
                pictures.append(digit_picture(inputs_strip(reading.digits[start : start + per_line]), color))
            pictures.append(Text(""))
    return Group(table, *pictures)


def number_evaluation_view(metrics: NumberMetrics, folder: str, worst: int = 10) -> Group:
    """Exact match and ANLD, accuracy by length, the most confident mistakes, the unreadable files."""
    lines = Text(
        f"Exact match  {percent(metrics.exact_match)}  ({metrics.exact:,} of {metrics.total:,} numbers)\n"
        f"ANLD         {metrics.anld:.4f}  (average normalised edit distance; 0 is perfect)"
    )
    by_length = Table(title="By length", title_justify="left")
    for header in ("Digits", "Numbers", "Exact match"):
        by_length.add_column(header, justify="right")
    for length, (count, right) in sorted(metrics.by_length.items()):
        by_length.add_row(str(length), f"{count:,}", percent(right / count))
    parts: list[Any] = [lines, by_length]
    if metrics.mistakes:
        shown = metrics.mistakes[:worst]
        table = Table(title=f"The {len(shown)} most confident mistakes", title_justify="left")
        table.add_column("Image", overflow="fold")
        for header in ("Label", "Read", "Confidence"):
            table.add_column(header, justify="right")
        for mistake in shown:
            name = within(mistake.path, [folder])
            table.add_row(escape(name), mistake.label, mistake.read, percent(mistake.confidence))
        parts.append(table)
    if metrics.errors:
        table = Table(title=f"Could not be read: {len(metrics.errors):,}", title_justify="left")
        table.add_column("Image", overflow="fold")
        table.add_column("Error")
        for path, _label, why in metrics.errors:
            table.add_row(escape(within(path, [folder])), f"[red]{escape(why)}[/]")
        parts.append(table)
    return Group(*parts)
