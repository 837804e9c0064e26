"""Tables that fit the terminal: laid out when printed, at the width they are printed at.

Every column says what it holds, and so what may give way when the table is too wide:
- a file's path (`NAME`) is shortened from the left ("…/folder/file.png"), the file name always whole
  and on one line;
- a value that must show (`KEEP`: a number read, a class, a count) is never cut or wrapped;
- free text (`WRAP`: an error, a digit list) wraps to fit;
- a column with `drop` set goes when the rest cannot fit otherwise, the lowest `drop` first.
Headers are never cut. The confusion matrix keeps every count whole by dropping its cells' padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.markup import escape
from rich.table import Table
from rich.text import Text

NAME, KEEP, WRAP = "name", "keep", "wrap"
WRAPPED_AT_LEAST = 12  # free text narrower than this is hard to read: columns are dropped first
BORDERS = 3  # a column's share of the box: its two spaces of padding and one rule


@dataclass(frozen=True)
class Column:
    header: str
    role: str = KEEP
    justify: str = "left"
    drop: int = 0  # 0: never dropped; else the order in which columns go when the table is too wide
    at_least: int = 0  # a WRAP column's width where some of its values must stay whole


class FittedTable:
    """A Rich table whose columns are sized for the width it is printed at. `rows` hold, per column, a
    plain path for a NAME column, else a Rich markup string or a renderable (Text); `total`, a last
    row below a rule."""

    def __init__(
        self,
        columns: list[Column],
        rows: list[list[Any]],
        total: list[Any] | None = None,
        **table_options: Any,
    ):
        self.columns, self.table_options = columns, table_options
        self.rows, self.total_at = rows + ([total] if total else []), len(rows) if total else None

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.table(options.max_width)

    def table(self, width: int) -> Table:
        """The Rich table laid out for `width` columns of terminal."""
        widths = self._widths(width)
        table = Table(**self.table_options)
        for index in widths:
            column = self.columns[index]
            table.add_column(
                column.header,
                justify=column.justify,  # type: ignore[arg-type]
                width=widths[index],
                no_wrap=column.role != WRAP,
                overflow="fold",
            )
        for number, row in enumerate(self.rows):
            if number == self.total_at:
                table.add_section()
            cells = []
            for index in widths:
                cell = row[index]
                if self.columns[index].role == NAME:
                    cell = escape(left_shortened(cell, widths[index]))
                cells.append(cell)
            table.add_row(*cells)
        return table

    def _widths(self, width: int) -> dict[int, int]:
        """Each shown column's width: droppable columns gone while the rest cannot fit comfortably,
        wrapped text narrowed while it still cannot, then what is left given to paths, then text."""
        natural = [self._natural(index) for index in range(len(self.columns))]
        least = [self._least(index) for index in range(len(self.columns))]
        comfortable = [
            max(least[index], min(natural[index], WRAPPED_AT_LEAST)) if column.role == WRAP else least[index]
            for index, column in enumerate(self.columns)
        ]
        kept = list(range(len(self.columns)))
        droppable = sorted((column.drop, index) for index, column in enumerate(self.columns) if column.drop)
        while _total(comfortable[index] for index in kept) > width and droppable:
            kept.remove(droppable.pop(0)[1])
        widths = {index: comfortable[index] for index in kept}
        for index in sorted(kept, key=lambda index: -widths[index]):
            over = _total(widths.values()) - width
            if over > 0 and self.columns[index].role == WRAP:
                widths[index] = max(least[index], widths[index] - over)
        for role in (NAME, WRAP):  # the room left: to paths, then to the text nearest to fitting whole
            for index in sorted(kept, key=lambda index: natural[index] - widths[index]):
                room = width - _total(widths.values())
                if self.columns[index].role == role and room > 0:
                    widths[index] = min(natural[index], widths[index] + room)
                    if role == NAME:  # only as wide as the paths shortened to that width
                        shortened = (cell_len(left_shortened(row[index], widths[index])) for row in self.rows)
                        widths[index] = max(least[index], *shortened)
        return widths

    def _natural(self, index: int) -> int:
        """The width the column would take if the terminal were wide enough."""
        cells = [row[index] for row in self.rows]
        column = self.columns[index]
        widths = [_cell_width(escape(cell) if column.role == NAME else cell) for cell in cells]
        return max([cell_len(column.header), *widths])

    def _least(self, index: int) -> int:
        """The narrowest the column may be: its header, whole file names, values kept whole."""
        column = self.columns[index]
        header = cell_len(column.header)
        if column.role == NAME:
            names = [cell_len(left_shortened(row[index], 0)) for row in self.rows]
            return max([header, *names])
        if column.role == WRAP:
            return max(header, column.at_least)
        return self._natural(index)


def left_shortened(path: str, width: int) -> str:
    """`path` if it fits in `width`, else "…/" and as many of its last parts as fit: never less than
    the file name, whole."""
    if cell_len(path) <= width:
        return path
    parts = PurePath(path).parts
    if len(parts) < 2:
        return path
    kept = parts[-1]
    for folder in reversed(parts[:-1]):
        if cell_len(f"…/{folder}/{kept}") > width:
            break
        kept = f"{folder}/{kept}"
    return f"…/{kept}"


def _cell_width(cell: Any) -> int:
    text = Text.from_markup(cell) if isinstance(cell, str) else cell
    if not isinstance(text, Text):
        return 0
    return max((cell_len(line) for line in text.plain.split("\n")), default=0)


def _total(widths: Any) -> int:
    widths = list(widths)
    return sum(widths) + BORDERS * len(widths) + 1


class ConfusionTable:
    """`confusion_table`, its cells unpadded where the terminal is too narrow for padded ones: every
    count stays whole."""

    def __init__(self, counts: list[list[int]], class_names: list[str]):
        self.counts, self.class_names = counts, class_names

    def __rich_console__(self, console: Any, options: Any) -> Any:
        cell = max(len(str(count)) for row in self.counts for count in row)
        padded = 1 + (len(self.counts) + 1) * (max(cell, len(str(len(self.counts) - 1))) + 3)
        yield confusion_table(self.counts, self.class_names, padding=1 if padded <= options.max_width else 0)


def confusion_table(counts: list[list[int]], class_names: list[str], padding: int = 1) -> Table:
    """Correct counts on the diagonal in green; each error on a red that is brighter the more often
    that confusion happens (relative to the worst one), so the worst stand out at a glance."""
    confusion = Table(
        title="Confusion matrix (rows: true class, columns: predicted)",
        title_justify="left",
        padding=(0, padding),
    )
    confusion.add_column("", style="bold")
    for label in range(len(class_names)):
        confusion.add_column(str(label), justify="right")
    worst = max((count for t, row in enumerate(counts) for p, count in enumerate(row) if p != t), default=0)
    for label, row in enumerate(counts):
        cells = []
        for column, count in enumerate(row):
            if column == label:
                cells.append(f"[bold green]{count}[/]")
            elif count == 0:
                cells.append("[dim]0[/]")
            else:
                cells.append(f"[{error_style(count / worst)}]{count}[/]")
        confusion.add_row(str(label), *cells)
    return confusion


def error_style(strength: float) -> str:
    """White on red, from dark red (a rare confusion) to bright red (the most frequent one)."""
    red = round(70 + 185 * strength**0.7)
    return f"bold white on rgb({red},0,0)"
