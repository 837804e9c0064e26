"""Tables fit the terminal at 80 and 60 columns: file names whole on one line, the number or prediction
always shown, errors wrapped, the least useful column dropped first (cli/tables.py)."""

import random

import pytest
from drawing import draw_digit
from helpers import invoke
from PIL import Image
from rich.console import Console

from lenet_cli.cli.tables import KEEP, NAME, WRAP, Column, ConfusionTable, FittedTable, left_shortened

FOLDER = "scans-of-the-cheques-received-in-2026"
ERROR = "error: cannot decode image (UnidentifiedImageError)"


@pytest.fixture(scope="module")
def cheques(tmp_path_factory):
    """Two written numbers and one file that is not an image, in a folder with a long name."""
    folder = tmp_path_factory.mktemp("cheques") / FOLDER
    folder.mkdir()
    digits = [draw_digit(label, random.Random(label)) for label in (4, 7)]
    field = Image.new(digits[0].mode, (digits[0].width * 2, digits[0].height), "white")
    field.paste(digits[0], (0, 0))
    field.paste(digits[1], (digits[0].width, 0))
    field.save(folder / "cheque-0042.png")
    field.save(folder / "a-longer-name-for-cheque-0043.png")
    (folder / "cheque-0044.png").write_text("not an image")
    digits[0].save(folder.parent / "digit.png")
    return folder


def table_rows(output):
    """Each row of the table as (first line's cells, the cells of all its lines joined)."""
    rows = []
    for line in output.splitlines():
        if "│" not in line:
            continue
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if cells[0] or not rows:
            rows.append((cells, cells))
        else:
            rows[-1] = (
                rows[-1][0],
                [f"{before} {after}".strip() for before, after in zip(rows[-1][1], cells, strict=True)],
            )
    return rows


def headers(output):
    line = next(line for line in output.splitlines() if line.startswith("┃"))
    return [cell.strip() for cell in line.split("┃")[1:-1]]


def whole(name):
    return name in ("digit.png", f"…/{name.rsplit('/', 1)[-1]}", f"{FOLDER}/{name.rsplit('/', 1)[-1]}")


@pytest.mark.parametrize("width", [80, 60])
def test_read_keeps_file_names_and_numbers_and_fits(cheques, width, monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", str(width))
    monkeypatch.chdir(tmp_path)
    files = ["cheque-0042.png", "a-longer-name-for-cheque-0043.png", "cheque-0044.png"]
    result = invoke("read", *(cheques / name for name in files), cheques.parent / "digit.png")
    assert result.exit_code == 1
    assert max(len(line) for line in result.stdout.splitlines()) <= width
    assert headers(result.stdout) == ["Image", "Number", "Confidence"][: 3 if width == 80 else 2]
    rows = table_rows(result.stdout)
    assert [first[0] for first, _ in rows] == [f"…/{name}" for name in files] + ["digit.png"]
    numbers = [joined[1] for _, joined in rows]
    assert all(number.isdigit() for index, number in enumerate(numbers) if index != 2)
    assert numbers[2].replace(" ", "") == ERROR.replace(" ", "")
    assert result.stderr.splitlines()[-1] == "Error: 1 of 4 images could not be read"


@pytest.mark.parametrize("width", [80, 60])
def test_predict_keeps_file_names_and_predictions_and_fits(cheques, width, monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", str(width))
    monkeypatch.chdir(tmp_path)
    files = [
        cheques.parent / "digit.png",
        cheques / "a-longer-name-for-cheque-0043.png",
        cheques / "cheque-0044.png",
    ]
    result = invoke("predict", *files, "--show")
    assert result.exit_code == 1
    assert max(len(line) for line in result.stdout.splitlines()) <= width
    assert headers(result.stdout) == ["Image", "Prediction"]  # the pictures go first
    rows = table_rows(result.stdout)
    assert [first[0].rsplit("/", 1)[-1] for first, _ in rows] == [path.name for path in files]
    assert all(whole(first[0]) for first, _ in rows)
    assert rows[0][0][1].split()[0].isdigit() and rows[1][0][1].split()[0].isdigit()
    assert rows[2][1][1].replace(" ", "") == ERROR.replace(" ", "")


@pytest.mark.parametrize(
    ("width", "headers"),
    [
        (80, ["Layer", "Output Shape", "Formula", "Params", "Mult-adds"]),
        (60, ["Layer", "Output Shape", "Params", "Mult-adds"]),
    ],
)
def test_summary_drops_the_formulas_first(width, headers, monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", str(width))
    monkeypatch.chdir(tmp_path)
    result = invoke("summary")
    assert result.exit_code == 0
    table = result.stdout.split("\n\n")[0] if "\n\n" in result.stdout else result.stdout
    header = next(line for line in table.splitlines() if line.startswith("┃"))
    assert [cell.strip() for cell in header.split("┃")[1:-1]] == headers
    assert max(len(line) for line in table.splitlines() if line[:1] in "┏┃┡│├└") <= width


def test_columns_give_way_in_order_and_headers_are_never_cut():
    columns = [
        Column("Image", NAME),
        Column("Label", KEEP),
        Column("Detail", WRAP, drop=2),
        Column("Extra", drop=1),
    ]
    rows = [["a/very/long/folder/name/file.png", "7", "some words that wrap well enough", "x" * 20]]
    for width, shown in [(120, 4), (50, 3), (30, 2)]:
        console = Console(width=width, record=True)
        console.print(FittedTable(columns, rows))
        text = console.export_text()
        assert max(len(line) for line in text.splitlines()) <= width
        header = [cell.strip() for cell in text.splitlines()[1].split("┃")[1:-1]]
        assert header == ["Image", "Label", "Detail", "Extra"][:shown]
        assert "file.png" in text.splitlines()[3] and "7" in text.splitlines()[3]


def test_paths_are_shortened_from_the_left_never_into_the_file_name():
    assert left_shortened("a/b/c/file.png", 20) == "a/b/c/file.png"
    assert left_shortened("folder/sub/file.png", 15) == "…/sub/file.png"
    assert left_shortened("folder/sub/a-long-file-name.png", 5) == "…/a-long-file-name.png"
    assert left_shortened("a-long-file-name.png", 5) == "a-long-file-name.png"


@pytest.mark.parametrize("width", [80, 60])
def test_the_confusion_matrix_keeps_every_count_whole(width):
    counts = [[1135 if row == column else row + column for column in range(10)] for row in range(10)]
    console = Console(width=width, record=True, color_system=None)
    console.print(ConfusionTable(counts, [str(label) for label in range(10)]))
    lines = [line for line in console.export_text().splitlines() if line.startswith("│")]
    assert max(len(line) for line in lines) <= width
    for row, line in enumerate(lines):
        assert [int(cell) for cell in line.split("│")[1:-1]] == [row, *counts[row]]
