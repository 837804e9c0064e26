"""Rich renderings of whole numbers read and of how well a folder of them was read. Layout only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from lenet_cli.cli.number_pictures import inputs_strip, overview
from lenet_cli.cli.render import digit_picture, errors_table, percent, within, without_common_folder
from lenet_cli.cli.tables import NAME, WRAP, Column, FittedTable

if TYPE_CHECKING:
    from lenet_cli.inference.number_metrics import NumberMetrics
    from lenet_cli.inference.numbers import Reading


def readings_view(readings: list[Reading], show: bool, color: bool, width: int = 80) -> Group:
    """A table of the numbers read, each digit's label and confidence beside; with `show`, then for each
    image the field with the digits' boxes outlined and the 28x28 input of each digit, as many to a line
    as `width` columns hold."""

    folder, names = without_common_folder([reading.path for reading in readings])
    longest = max((len(reading.number) for reading in readings if reading.error is None), default=0)
    columns = [
        Column("Image", NAME),
        Column("Number", WRAP, at_least=longest),  # numbers whole, errors wrapped
        Column("Confidence", justify="right", drop=2),
        Column("Digits", WRAP, drop=1),
    ]
    rows = []
    pictures: list[Any] = []
    for name, reading in zip(names, readings, strict=True):
        if reading.error is not None:
            rows.append([name, f"[red]error: {escape(reading.error)}[/]", "", ""])
            continue
        digits = "  ".join(f"{digit.label} [dim]{digit.confidence:.0%}[/]" for digit in reading.digits)
        rows.append([name, f"[bold]{reading.number}[/]", f"{reading.confidence:.1%}", digits])
        if show:
            per_line = max(1, (width + 2) // 30)
            pictures += [
                Text(f"{name}: {reading.number}"),
                digit_picture(overview(reading, 20, width), color),
            ]
            for start in range(0, len(reading.digits), per_line):
                pictures.append(digit_picture(inputs_strip(reading.digits[start : start + per_line]), color))
            pictures.append(Text(""))
    caption = f"in {escape(folder)}" if folder else None
    table = FittedTable(columns, rows, caption=caption, caption_justify="left")
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
        columns = [Column("Image", NAME)]
        columns += [Column(header, justify="right") for header in ("Label", "Read", "Confidence")]
        rows = [
            [within(mistake.path, [folder]), mistake.label, mistake.read, percent(mistake.confidence)]
            for mistake in shown
        ]
        table = FittedTable(
            columns, rows, title=f"The {len(shown)} most confident mistakes", title_justify="left"
        )
        parts.append(table)
    if metrics.errors:
        parts.append(errors_table(metrics.errors, [folder]))
    return Group(*parts)
