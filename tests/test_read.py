"""lenet read: whole numbers written as people write them, read by the shipped LeNet-5 through the CLI."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
from drawing import draw_number
from helpers import invoke, run_lenet
from PIL import Image

from lenet_cli.formats.shipped import PRETRAINED, READER
from lenet_cli.images.segment import label_components, segment
from lenet_cli.inference.numbers import parse_length


def written(tmp_path, name: str, text: str, **options) -> tuple[str, list]:
    image, boxes = draw_number(text, **options)
    path = tmp_path / name
    image.save(path)
    return str(path), boxes


def read_json(*args):
    """`lenet read --json` with its default model, the one shipped for reading."""
    result = invoke("read", *args, "--json")
    return result, json.loads(result.stdout)


@pytest.mark.parametrize("text", ["2024", "90210", "31415", "7", "11", "0123456789"])
def test_a_written_number_is_read_digit_by_digit(tmp_path, text):
    path, boxes = written(tmp_path, "number.png", text)
    result, document = read_json(path)
    assert result.exit_code == 0, result.output
    (reading,) = document["readings"]
    assert set(reading) == {"path", "number", "confidence", "digits"}
    assert reading["path"] == path
    assert reading["number"] == text
    assert [digit["label"] for digit in reading["digits"]] == [int(char) for char in text]
    assert 0 < reading["confidence"] <= 1
    for digit, (x, y, w, h) in zip(reading["digits"], boxes, strict=True):
        assert set(digit) == {"label", "confidence", "box"}
        found_x, found_y, found_w, found_h = digit["box"]
        # The box found holds the ink of the digit drawn there (the pen's width and slant aside).
        assert abs(found_x + found_w / 2 - (x + w / 2)) < 0.3 * h
        assert abs(found_y + found_h / 2 - (y + h / 2)) < 0.15 * h
        assert 0.8 * h <= found_h <= 1.2 * h


@pytest.mark.parametrize("text", ["12.345", "1,250", "3.141,59-", "-42-"])
def test_separators_and_dashes_are_skipped(tmp_path, text):
    path, _ = written(tmp_path, "amount.png", text)
    result, document = read_json(path)
    assert result.exit_code == 0, result.output
    assert document["readings"][0]["number"] == "".join(char for char in text if char.isdigit())


def test_an_underline_and_a_printed_box_are_not_digits(tmp_path):
    path, _ = written(tmp_path, "field.png", "4096", underline=True, box=True)
    _, document = read_json(path)
    assert document["readings"][0]["number"] == "4096"


@pytest.mark.parametrize(("text", "gap"), [("1234567", -0.1), ("2357", -0.15), ("0707", -0.15)])
def test_touching_digits_are_cut_apart(tmp_path, text, gap):
    path, _ = written(tmp_path, "touching.png", text, gap=gap)
    image = np.asarray(Image.open(path)) < 128
    _, components = label_components(image)
    assert components < len(text)  # some digits do touch
    _, document = read_json(path)
    assert document["readings"][0]["number"] == text


def test_length_tells_how_many_digits_to_find(tmp_path):
    path, _ = written(tmp_path, "zip.png", "90210")
    _, document = read_json(path, "--length", "5")
    assert document["readings"][0]["number"] == "90210"
    _, document = read_json(path, "--length", "4-6")
    assert document["readings"][0]["number"] == "90210"
    result, document = read_json(path, "--length", "12")
    assert result.exit_code == 1
    assert document["readings"][0]["error"].startswith("could not find 12 digits in the image")


@pytest.mark.parametrize("given", ["x", "0", "5-3", "2-x"])
def test_a_bad_length_is_an_error_line(tmp_path, given):
    path, _ = written(tmp_path, "n.png", "12")
    result = invoke("read", path, "--checkpoint", PRETRAINED, "--length", given)
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith("Error: --length takes N or N-M")


def test_blank_and_broken_files_get_error_rows_and_the_rest_are_read(tmp_path):
    good, _ = written(tmp_path, "a-good.png", "42")
    Image.new("L", (200, 60), 240).save(tmp_path / "b-blank.png")
    (tmp_path / "c-broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    result, document = read_json(tmp_path)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "Error: 2 of 3 images could not be read"
    readings = document["readings"]
    assert [reading["path"] for reading in readings] == [
        good,
        str(tmp_path / "b-blank.png"),
        str(tmp_path / "c-broken.png"),
    ]
    assert readings[0]["number"] == "42"
    assert readings[1] == {
        "path": str(tmp_path / "b-blank.png"),
        "error": "no digit found (the image is blank)",
    }
    assert readings[2]["error"].startswith("cannot decode image")


def test_the_table_and_show(tmp_path):
    path, _ = written(tmp_path, "year.png", "1990")
    result = invoke("read", path, "--checkpoint", PRETRAINED, "--show")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].split() == ["┃", "Image", "┃", "Number", "┃", "Confidence", "┃", "Digits", "┃"]
    assert "│ 1990 " in lines[3]
    assert "year.png: 1990" in result.output
    # The field (10 lines) and the four 28x28 inputs (14 lines) drawn in half-blocks.
    drawn = [line for line in lines if "█" in line or "▀" in line or "▄" in line]
    assert len(drawn) >= 10 + 14 - 4


def test_standard_input(tmp_path):
    path, _ = written(tmp_path, "n.png", "73")
    with open(path, "rb") as handle:
        result = invoke("read", "-", "--checkpoint", PRETRAINED, "--json", input=handle.read())
    assert json.loads(result.stdout)["readings"][0]["number"] == "73"


def test_components_are_8_connected():
    mask = np.array(
        [
            [1, 0, 0, 1, 1],
            [0, 1, 0, 0, 0],
            [0, 0, 0, 1, 0],
            [1, 1, 0, 0, 1],
        ],
        bool,
    )
    labels, count = label_components(mask)
    assert count == 4
    assert labels[0, 0] == labels[1, 1] != labels[0, 3]
    assert labels[2, 3] == labels[3, 4]
    assert labels[3, 0] == labels[3, 1]
    assert (labels > 0).tolist() == mask.tolist()


def test_a_dot_is_dropped_and_a_digit_split_only_where_wide():
    mask = np.zeros((40, 80), bool)
    mask[5:35, 10:14] = True  # a "1"
    mask[31:34, 20:23] = True  # a dot on the line
    mask[5:35, 30:34] = True  # another "1"
    segmentation = segment(mask)
    assert segmentation.count == 2
    assert [box.left for box in segmentation.boxes] == [10, 30]
    assert [box.xywh() for box in segmentation.dropped] == [(20, 31, 3, 3)]


def test_parse_length():
    assert parse_length(None) is None
    assert parse_length("5") == (5, 5)
    assert parse_length("4-6") == (4, 6)


@pytest.fixture
def numbers_folder(tmp_path):
    """Three written numbers (one labelled wrong on purpose: 2024 as 2025) and a broken file."""
    folder = tmp_path / "numbers"
    folder.mkdir()
    for name, text in (("a.png", "2024"), ("b.png", "90210"), ("c.png", "7")):
        draw_number(text)[0].save(folder / name)
    (folder / "d.png").write_bytes(b"not an image")
    (folder / "labels.csv").write_text("file,label\na.png,2025\nb.png,90210\nc.png,7\nd.png,31\n")
    return folder


def test_evaluate_numbers_scores_exact_match_and_edit_distance(numbers_folder, tmp_path):
    plots = tmp_path / "plots"
    args = ("evaluate", PRETRAINED, "--numbers", numbers_folder, "--plots", plots, "--json")
    result = invoke(*args)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "Error: 1 of 4 images could not be read"
    document = json.loads(result.stdout)
    assert document["total"] == 4 and document["exact"] == 2 and document["exact_match"] == 0.5
    # 2025 read 2024: one edit in four digits; the broken file counts as nothing read (distance 1).
    assert document["anld"] == pytest.approx((1 / 4 + 0 + 0 + 1) / 4)
    assert document["by_length"] == [
        {"length": 1, "count": 1, "exact_match": 1.0},
        {"length": 2, "count": 1, "exact_match": 0.0},
        {"length": 4, "count": 1, "exact_match": 0.0},
        {"length": 5, "count": 1, "exact_match": 1.0},
    ]
    (mistake,) = document["mistakes"]
    assert (mistake["label"], mistake["read"]) == ("2025", "2024")
    assert mistake["path"].endswith("a.png")
    (error,) = document["errors"]
    assert error["path"].endswith("d.png") and error["label"] == "31"
    assert error["error"].startswith("cannot decode image")
    assert Image.open(plots / "number_mistakes.png").size[0] > 600


def test_evaluate_numbers_table(numbers_folder):
    result = invoke("evaluate", PRETRAINED, "--numbers", numbers_folder)
    assert result.exit_code == 1
    assert "Exact match  50.00%  (2 of 4 numbers)" in result.output
    assert "ANLD         0.3125" in result.output
    assert "│ a.png │  2025 │ 2024 │" in result.output


def test_evaluate_numbers_needs_labels(tmp_path):
    result = invoke("evaluate", PRETRAINED, "--numbers", tmp_path)
    assert result.exit_code == 1
    assert (
        result.output
        == f"Error: {tmp_path} has no labels.csv (one `file,label` row per image, the label the digits)\n"
    )
    (tmp_path / "labels.csv").write_text("file,label\na.png,12a\n")
    result = invoke("evaluate", PRETRAINED, "--numbers", tmp_path)
    assert result.output.endswith("line 2: expected `file,label` with the label's digits only\n")


def test_edit_distance():
    from lenet_cli.inference.number_metrics import edit_distance, normalised_distance

    assert edit_distance("12345", "12345") == 0
    assert edit_distance("12345", "1245") == 1
    assert edit_distance("12345", "13245") == 2
    assert edit_distance("", "123") == 3
    assert normalised_distance("1234", "12") == 0.5


@pytest.fixture(scope="module")
def api():
    from fastapi.testclient import TestClient

    from lenet_cli.formats.model_files import load_any_model
    from lenet_cli.serving.app import create_app
    from lenet_cli.serving.options import ServeOptions
    from lenet_cli.serving.workers import PreprocessingPool

    pool = PreprocessingPool(0)
    model, info = load_any_model(PRETRAINED)
    yield TestClient(create_app(model, info, ServeOptions(), pool), base_url="http://127.0.0.1:8000")
    pool.close()


def test_read_defaults_to_the_model_shipped_for_reading(tmp_path):
    path, _ = written(tmp_path, "amount.png", "4096")
    default = invoke("read", path, "--json")
    named = invoke("read", path, "--checkpoint", READER, "--json")
    assert default.exit_code == 0 and json.loads(default.stdout) == json.loads(named.stdout)
    assert default.stderr.startswith("Reading with the model shipped for reading numbers (LeNet-5 on mnist")
    assert named.stderr == ""


def test_post_read_uses_the_served_model_when_it_is_not_the_shipped_one(tmp_path):
    from fastapi.testclient import TestClient

    from lenet_cli.formats.model_files import load_any_model
    from lenet_cli.serving.app import create_app
    from lenet_cli.serving.options import ServeOptions
    from lenet_cli.serving.workers import PreprocessingPool

    own = tmp_path / "own.pt"
    own.write_bytes(Path(PRETRAINED).read_bytes())  # the digit model, under another name: the user's own
    path, _ = written(tmp_path, "amount.png", "12.345-")
    expected = json.loads(invoke("read", path, "--checkpoint", own, "--json").stdout)["readings"][0]
    pool = PreprocessingPool(0)
    model, info = load_any_model(own)
    client = TestClient(create_app(model, info, ServeOptions(), pool), base_url="http://127.0.0.1:8000")
    try:
        answer = client.post("/read", content=png(Image.open(path)))
    finally:
        pool.close()
    assert answer.json() == {"readings": [{**expected, "path": "-"}]}
    reader = json.loads(invoke("read", path, "--json").stdout)["readings"][0]
    assert reader["confidence"] != expected["confidence"]  # the two models differ, so the test can tell


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_post_read_answers_like_lenet_read_json(api, tmp_path):
    path, _ = written(tmp_path, "amount.png", "12.345-")
    _, document = read_json(path)
    expected = document["readings"][0]
    raw = api.post("/read", content=png(Image.open(path)))
    assert raw.status_code == 200
    assert raw.json() == {"readings": [{**expected, "path": "-"}]}
    files = [
        ("images", ("a.png", png(Image.open(path)), "image/png")),
        ("images", ("b.png", b"junk", "image/png")),
    ]
    multipart = api.post("/read", files=files).json()["readings"]
    assert multipart[0] == {**expected, "path": "a.png"}
    assert multipart[1]["path"] == "b.png" and multipart[1]["error"].startswith("cannot decode image")


def test_post_read_errors(api, tmp_path):
    blank = api.post("/read", content=png(Image.new("L", (200, 60), 240)))
    assert (blank.status_code, blank.json()) == (422, {"error": "no digit found (the image is blank)"})
    path, _ = written(tmp_path, "zip.png", "90210")
    data = png(Image.open(path))
    assert api.post("/read?length=5", content=data).json()["readings"][0]["number"] == "90210"
    wrong = api.post("/read?length=x", content=data)
    assert wrong.status_code == 422 and wrong.json()["error"].startswith("--length takes N or N-M")


def hostile_images(folder):
    """Images no number is in, or that stretch the reader: each must give a reading or an error row."""
    rng = np.random.default_rng(0)
    tall = np.full((3000, 20), 255, np.uint8)
    tall[100:2500, 8:12] = 0
    dot = np.full((60, 300), 255, np.uint8)
    dot[28:31, 140:143] = 0
    ruled = np.full((60, 300), 255, np.uint8)
    ruled[30, :] = 0
    ruled[:, 2] = 0
    images = {
        "tall.png": tall,
        "dot.png": dot,
        "ruled.png": ruled,
        "noise.png": (rng.random((600, 800)) * 255).astype(np.uint8),
        "tiny.png": np.zeros((1, 1), np.uint8),
        "sixteen.png": np.full((40, 40), 65535, np.uint16),
    }
    for name, pixels in images.items():
        Image.fromarray(pixels).save(folder / name)
    return sorted(images)


def test_hostile_images_give_readings_or_error_rows(tmp_path):
    names = hostile_images(tmp_path)
    result, document = read_json(tmp_path)
    assert "unexpected" not in result.output
    readings = {Path(reading["path"]).name: reading for reading in document["readings"]}
    assert sorted(readings) == names
    assert readings["dot.png"]["error"] == "no digit found (only specks, dots, dashes or ruled lines)"
    assert readings["ruled.png"]["error"] == "no digit found (only specks, dots, dashes or ruled lines)"
    assert readings["tall.png"]["number"] == "1"


def test_post_read_can_include_each_digits_input_and_probabilities(api, tmp_path):
    path, _ = written(tmp_path, "n.png", "47")
    (reading,) = api.post("/read?include_inputs=true", content=png(Image.open(path))).json()["readings"]
    assert reading["number"] == "47"
    for digit in reading["digits"]:
        assert digit["input"].startswith("data:image/png;base64,")
        assert len(digit["probabilities"]) == 10
        assert digit["probabilities"][digit["label"]] == pytest.approx(digit["confidence"])


def test_read_never_imports_torch_and_answers_as_the_torch_model(tmp_path):
    from lenet_cli.formats.model_files import load_any_model
    from lenet_cli.inference.number_files import read_files

    path, _ = written(tmp_path, "number.png", "4096")
    code, stdout, stderr, imported = run_lenet("read", path, "--checkpoint", PRETRAINED, "--json")
    assert (code, stderr, imported) == (0, "", False)
    (ours,) = json.loads(stdout)["readings"]
    torch_model, _ = load_any_model(PRETRAINED, "cpu")
    (theirs,) = [reading.to_dict() for reading in read_files(torch_model, [path])]
    assert ours["number"] == theirs["number"] == "4096"
    assert ours["confidence"] == pytest.approx(theirs["confidence"], abs=1e-5)
    assert [digit["box"] for digit in ours["digits"]] == [digit["box"] for digit in theirs["digits"]]
