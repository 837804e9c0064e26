"""lenet predict on images as people give them: formats, modes, polarity, alpha, EXIF, errors."""

import io
import json
import random
import struct
import zlib

import numpy as np
import pytest
import torch
from drawing import draw_digit, variant
from helpers import runner
from PIL import Image, ImageDraw

from lenet_cli.cli.commands import app
from lenet_cli.formats.checkpoint import load_model
from lenet_cli.images.preprocess import load_digit
from lenet_cli.inference.predict import predict_files


def centre_of_mass(image_u8: torch.Tensor) -> tuple[float, float]:
    weights = image_u8.float()
    rows = (weights.sum(1) * torch.arange(28)).sum() / weights.sum()
    cols = (weights.sum(0) * torch.arange(28)).sum() / weights.sum()
    return float(rows), float(cols)


def ink_box(image_u8: torch.Tensor, level: int = 60) -> tuple[int, int]:
    mask = image_u8 > level
    rows, cols = mask.any(1).nonzero(), mask.any(0).nonzero()
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


@pytest.fixture(scope="module")
def drawn_seven():
    return draw_digit(7, random.Random(3), pen_range=(3, 3))


def test_thin_strokes_on_a_large_canvas_become_an_mnist_digit(drawn_seven, tmp_path):
    drawn_seven.save(tmp_path / "seven.png")
    assert drawn_seven.size == (1000, 800)
    digit = load_digit(tmp_path / "seven.png")
    assert digit.shape == (28, 28) and digit.dtype == torch.uint8
    assert int(digit.max()) == 255
    assert max(ink_box(digit)) in (19, 20, 21)  # longer side scaled to 20 pixels
    row, col = centre_of_mass(digit)
    assert abs(row - 14) <= 0.5 and abs(col - 14) <= 0.5  # MNIST: mass at the centre pixel
    assert int(digit[0].max()) == 0 and int(digit[:, 0].max()) == 0  # black background
    strong = (digit > 128).sum(dim=1)
    assert float(strong[strong > 0].float().median()) >= 2  # strokes kept MNIST-thick, not faded


@pytest.mark.parametrize("kind", ["inverted", "alpha", "exif-rotated", "colour", "photo"])
def test_every_form_of_the_same_drawing_gives_nearly_the_same_input(drawn_seven, tmp_path, kind):
    drawn_seven.save(tmp_path / "plain.png")
    reference = load_digit(tmp_path / "plain.png").float()
    image, save_args = variant(drawn_seven, kind, random.Random(1))
    path = tmp_path / f"{kind}.{'jpg' if kind == 'photo' else 'png'}"
    image.save(path, **save_args)
    if kind == "exif-rotated":
        assert Image.open(path).size == (800, 1000)  # stored sideways
    seen = load_digit(path).float()
    difference = (seen - reference).abs().mean() / 255
    assert difference < (0.06 if kind == "photo" else 0.02), difference


def mnist_like(tmp_path):
    """A 28x28 MNIST-form digit, to check saving in every format and mode keeps it."""
    image = np.zeros((28, 28), dtype=np.uint8)
    image[6:22, 12:16] = 255
    image[6:9, 9:16] = 255
    return image


@pytest.mark.parametrize(
    ("suffix", "mode"),
    [
        ("png", "L"),
        ("png", "1"),
        ("png", "I;16"),
        ("png", "P"),
        ("png", "RGB"),
        ("png", "RGBA"),
        ("jpg", "L"),
        ("jpg", "RGB"),
        ("bmp", "L"),
        ("bmp", "RGB"),
        ("gif", "P"),
        ("tiff", "L"),
        ("tiff", "I;16"),
        ("webp", "RGB"),
    ],
)
def test_formats_and_modes(tmp_path, suffix, mode):
    pixels = mnist_like(tmp_path)
    if mode == "I;16":
        image = Image.fromarray(pixels.astype(np.uint16) * 257)
    else:
        image = Image.fromarray(pixels).convert(mode)
    path = tmp_path / f"digit.{suffix}"
    image.save(path)
    digit = load_digit(path)
    assert digit.shape == (28, 28)
    assert ink_box(digit)[0] in ((17, 18, 19, 20, 21) if suffix == "jpg" else (19, 20, 21))  # JPEG is lossy
    assert abs(centre_of_mass(digit)[1] - 14) <= 0.5


def test_mnist_form_passes_through_unchanged():
    """A digit already in MNIST's form (as the first pass leaves it) comes out of a second pass
    bit for bit: the normalisation cannot hurt MNIST-like digits. (On the real MNIST test set this
    gives the same accuracy as the tensors: bench/predict/predict_accuracy.py.)"""
    from lenet_cli.images.decode import decode_grey
    from lenet_cli.images.preprocess import normalize_digit

    rng = random.Random(0)
    for digit in range(10):
        drawn = io.BytesIO()
        draw_digit(digit, rng).save(drawn, format="PNG")
        once = normalize_digit(decode_grey(io.BytesIO(drawn.getvalue())))
        assert np.array_equal(normalize_digit(once.astype(np.float32) / 255), once), digit


def test_gif_uses_its_first_frame(tmp_path):
    first = Image.fromarray(mnist_like(tmp_path))
    second = Image.new("L", (28, 28), 0)
    first.save(tmp_path / "anim.gif", save_all=True, append_images=[second], duration=100)
    assert int(load_digit(tmp_path / "anim.gif").max()) == 255  # the second frame is blank


def huge_png(path, width=20_000, height=20_000):
    """A tiny file whose header claims a huge image: what a decompression bomb looks like."""
    Image.new("L", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = 8 + 8  # signature, then the IHDR chunk's length and type
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))


def test_errors_per_image_and_the_rest_still_predicted(trained_checkpoint, tmp_path):
    Image.fromarray(mnist_like(tmp_path)).save(tmp_path / "a-good.png")
    Image.new("L", (300, 200), 255).save(tmp_path / "b-blank.png")
    (tmp_path / "c-text.png").write_text("not an image")
    huge_png(tmp_path / "d-bomb.png")
    (tmp_path / "notes.txt").write_text("ignored: not an image file name")
    model, _ = load_model(trained_checkpoint)
    calls = []
    model.register_forward_hook(lambda module, args, output: calls.append(len(args[0])))
    predictions = predict_files(model, [tmp_path, tmp_path / "e-missing.png"])
    assert [p.path.rsplit("/", 1)[-1] for p in predictions] == [
        "a-good.png",
        "b-blank.png",
        "c-text.png",
        "d-bomb.png",
        "e-missing.png",
    ]
    assert predictions[0].error is None and predictions[0].label is not None
    assert [p.error for p in predictions[1:]] == [
        "no digit found (the image is blank)",
        "cannot decode image (UnidentifiedImageError)",
        "image is over the 40,000,000-pixel limit (refused as a possible decompression bomb)",
        "no such file",
    ]
    assert calls == [1]  # one batch for all readable images


def test_cli_show_and_save_preprocessed(trained_checkpoint, tmp_path):
    Image.fromarray(255 - mnist_like(tmp_path)).save(tmp_path / "digit.png")
    out = tmp_path / "seen"
    out.mkdir()
    (out / "digit.png").write_bytes(b"the user's own file")
    result = runner.invoke(
        app,
        [
            "predict",
            str(tmp_path / "digit.png"),
            "-c",
            str(trained_checkpoint),
            "--show",
            "--save-preprocessed",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Network input" in result.stdout
    assert "████" in result.stdout  # the digit drawn in half-blocks (black and white: no colour here)
    assert (out / "digit.png").read_bytes() == b"the user's own file"  # never overwritten
    saved = np.asarray(Image.open(out / "digit-1.png"))
    assert saved.shape == (28, 28) and saved.max() == 255 and saved[0].max() == 0


def test_cli_json_shape(trained_checkpoint, tmp_path):
    Image.fromarray(mnist_like(tmp_path)).save(tmp_path / "digit.png")
    result = runner.invoke(
        app, ["predict", str(tmp_path / "digit.png"), "-c", str(trained_checkpoint), "--json"]
    )
    assert result.exit_code == 0
    (prediction,) = json.loads(result.stdout)["predictions"]
    assert set(prediction) == {"path", "label", "confidence", "top_k"}
    assert [entry["label"] for entry in prediction["top_k"]][0] == prediction["label"]
    assert sum(1 for _ in prediction["top_k"]) == 3


@pytest.mark.parametrize("show", [False, True])
def test_predict_table_fits_80_columns_with_names_whole(trained_checkpoint, tmp_path, monkeypatch, show):
    deep = tmp_path / "a-rather-long-folder-name" / "scans-from-the-second-exam-of-the-term"
    deep.mkdir(parents=True)
    names = ["student-0042-question-7.png", "student-0043-question-7.png"]
    for name in names:
        Image.fromarray(255 - mnist_like(tmp_path)).save(deep / name)
    monkeypatch.setenv("COLUMNS", "80")
    args = ["predict", str(deep / names[0]), str(deep / names[1]), "-c", str(trained_checkpoint)]
    result = runner.invoke(app, args + (["--show"] if show else []))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines[:-1]) <= 80  # the table; the caption names the folder
    header = next(line for line in lines if "Image" in line)
    for title in ["Image", "Prediction"] + (["Network input"] if show else []):
        assert f" {title} " in header
    for name in names:
        assert any(name in line for line in lines), name  # on one line, not folded
    assert lines[-1] == f"in {deep}"


def test_large_images_keep_one_pixel_strokes_the_sampled_analysis_could_miss(tmp_path, monkeypatch):
    """A 1-pixel bar on an odd row of a large canvas (the ink is located on a sample of every other
    row): the crop must hold all of it, as when the whole image is analysed."""
    import lenet_cli.images.preprocess as preprocess

    canvas = Image.new("L", (700, 600), 255)
    pen = ImageDraw.Draw(canvas)
    pen.line([(201, 201), (455, 201)], fill=0, width=1)  # the bar of a 7, one pixel high, odd row
    pen.line([(455, 201), (330, 451)], fill=0, width=5)  # its stem
    canvas.save(tmp_path / "seven.png")
    sampled = load_digit(tmp_path / "seven.png")
    monkeypatch.setattr(preprocess, "SAMPLED_PIXELS", 10**9)  # analyse every pixel
    whole = load_digit(tmp_path / "seven.png")
    assert ink_box(sampled, level=1) == ink_box(whole, level=1)
    assert float((sampled.float() - whole.float()).abs().mean()) < 2  # of 255
