"""`lenet explain` through the CLI runner: the layers by name and shape as `lenet summary` gives them, FC3
equal to predict's logits, the JSON document, pictures, and the errors."""

import json
import random

import numpy as np
import pytest
from drawing import draw_digit
from helpers import invoke
from PIL import Image

from lenet_cli.formats.shipped import PRETRAINED
from lenet_cli.images.many_files import read_digits
from lenet_cli.inference.fast_predict import load_predict_model
from lenet_cli.inference.summary import layer_table

LAYERS = [(row.layer, list(row.output_shape)) for row in layer_table().rows if row.layer != "Flatten"]


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """Six hand-drawn-style digits (dark pen on large light canvases) as PNG files, in a folder."""
    folder = tmp_path_factory.mktemp("digits")
    rng = random.Random(32)
    for index, digit in enumerate([7, 1, 0, 4, 3, 8]):
        draw_digit(digit, rng).save(folder / f"{index}-{digit}.png")
    return folder


def explained(*args):
    result = invoke("explain", *args, "-c", PRETRAINED, "--json")
    return result, json.loads(result.stdout)


def test_json_holds_every_layer_by_name_and_shape_with_its_values(digits):
    result, document = explained(digits / "0-7.png")
    assert result.exit_code == 0, result.output
    assert list(document) == ["checkpoint", "method", "explanations"]
    assert document["method"] == "occlusion"
    [explanation] = document["explanations"]
    assert [(layer["name"], layer["shape"]) for layer in explanation["layers"]] == LAYERS
    assert LAYERS == [
        ("Input", [1, 28, 28]),
        ("Conv1", [6, 28, 28]),
        ("Pool1", [6, 14, 14]),
        ("Conv2", [16, 10, 10]),
        ("Pool2", [16, 5, 5]),
        ("FC1", [120]),
        ("FC2", [84]),
        ("FC3", [10]),
    ]
    for layer in explanation["layers"]:
        assert np.asarray(layer["values"]).shape == tuple(layer["shape"])
    assert explanation["label"] == 7
    runner_up = explanation["runner_up"]["label"]
    assert list(explanation["attribution"]["classes"]) == ["7", str(runner_up)]
    for attribution in explanation["attribution"]["classes"].values():
        assert np.asarray(attribution).shape == (28, 28)
    assert sum(explanation["probabilities"]) == pytest.approx(1, abs=1e-6)
    assert explanation["confidence"] == max(explanation["probabilities"])


def test_fc3_is_predicts_logits_for_every_image(digits):
    paths = sorted(digits.iterdir())
    result, document = explained(digits)  # a folder: every image in it, as predict takes it
    assert result.exit_code == 0, result.output
    model, _ = load_predict_model(PRETRAINED)  # what `lenet predict` runs
    logits = model.logits(np.stack(read_digits(paths)))
    assert [e["path"] for e in document["explanations"]] == [str(path) for path in paths]
    for explanation, expected in zip(document["explanations"], logits, strict=True):
        fc3 = explanation["layers"][-1]["values"]
        np.testing.assert_allclose(fc3, expected, atol=1e-5)
        np.testing.assert_allclose(explanation["logits"], expected, atol=1e-5)
    assert [e["label"] for e in document["explanations"]] == [int(p.stem[-1]) for p in paths]


def test_brief_summarises_each_map(digits):
    result = invoke("explain", digits / "1-1.png", "-c", PRETRAINED, "--json", "--brief", "--method", "ig")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["method"] == "ig"
    layers = document["explanations"][0]["layers"]
    assert [(layer["name"], layer["shape"]) for layer in layers] == LAYERS
    assert [len(layer["maps"]) for layer in layers[:5]] == [1, 6, 6, 16, 16]
    assert all("values" not in layer for layer in layers)
    assert set(layers[1]["maps"][0]) == {"min", "max", "mean", "active"}
    assert set(layers[-1]["summary"]) == {"min", "max", "mean", "active"}


def test_terminal_view_names_every_layer_and_the_answer(digits):
    result = invoke("explain", digits / "0-7.png", "-c", PRETRAINED)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{digits / '0-7.png'}: 7 (")
    assert "Attribution by occlusion (+: pushed the score up, -: down)" in lines
    for caption in (
        "Conv1 6×28×28  after ReLU",
        "Pool1 6×14×14  2x2 max",
        "Conv2 16×10×10  after ReLU",
        "Pool2 16×5×5  2x2 max",
        "FC1 120  after ReLU",
        "FC2 84  after ReLU",
        "FC3 10  logits",
    ):
        assert caption in lines
    scores = [line for line in lines if " logit " in line]
    assert len(scores) == 10 and scores[7].endswith("answer")


def test_out_saves_the_pictures_and_never_overwrites(digits, tmp_path):
    out = tmp_path / "notes"
    for _ in range(2):
        result = invoke("explain", digits / "0-7.png", "-c", PRETRAINED, "--out", out)
        assert result.exit_code == 0, result.output
    assert sorted(path.name for path in out.iterdir()) == [
        "0-7-layers-1.png",
        "0-7-layers.png",
        "0-7-why-1.png",
        "0-7-why.png",
        "kernels-1.png",
        "kernels.png",
    ]
    assert Image.open(out / "0-7-why.png").size[0] > 500


def test_a_bad_image_is_reported_and_the_rest_explained(digits, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    result, document = explained(digits / "1-1.png", bad)
    assert result.exit_code == 1
    assert document["explanations"][1] == {
        "path": str(bad),
        "error": "cannot decode image (UnidentifiedImageError)",
    }
    assert document["explanations"][0]["label"] == 1
    assert result.stderr == "Error: 1 of 2 images could not be explained\n"


@pytest.mark.parametrize(
    ("args", "code", "error"),
    [
        (["missing.png"], 1, "Error: 2 of 2 images could not be explained\n"),
        (
            ["-c", "model.onnx"],
            1,
            "Error: explain needs a .pt checkpoint; model.onnx is an exported model, which keeps no layers to look into\n",
        ),
        (
            ["-c", "model.pt2"],
            1,
            "Error: explain needs a .pt checkpoint; model.pt2 is an exported model, which keeps no layers to look into\n",
        ),
        (["--brief"], 2, "Error: --brief goes with --json\n"),
    ],
)
def test_errors(digits, tmp_path, args, code, error):
    result = invoke("explain", tmp_path / "missing.png", *args)
    assert result.exit_code == code
    assert result.stderr.endswith(error)


def test_the_attribution_classes_are_captums_own():
    """attribution.py imports them without Captum's package __init__s; a later full import finds the same."""
    from lenet_cli.inference.attribution import captum_class

    integrated_gradients = captum_class("integrated_gradients", "IntegratedGradients")
    occlusion = captum_class("occlusion", "Occlusion")
    input_x_gradient = captum_class("input_x_gradient", "InputXGradient")
    import captum.attr

    assert integrated_gradients is captum.attr.IntegratedGradients
    assert occlusion is captum.attr.Occlusion
    assert input_x_gradient is captum.attr.InputXGradient


def test_every_method_explains_the_log_probability(digits):
    """Occlusion's value at a pixel is the mean fall of the class's log-probability when a square holding
    it goes black; integrated gradients' values add up to its fall from a black image; gradient x input is
    its gradient times the pixel: all three checked against the model's own log-softmax."""
    import torch

    from lenet_cli.data.datasets import as_input
    from lenet_cli.inference.attribution import OCCLUSION_WINDOW, attribute
    from lenet_cli.inference.explain import load_explain_model

    model, _ = load_explain_model(PRETRAINED)
    [digit] = read_digits([digits / "0-7.png"])
    inputs = as_input(torch.from_numpy(digit[None]))
    runner_up = 1

    def log_probability(images):
        with torch.no_grad():
            return torch.log_softmax(model(images), dim=1)[:, runner_up].numpy()

    occlusion = attribute(model, inputs, [runner_up], "occlusion")[0]
    side = OCCLUSION_WINDOW
    for row, column in np.argwhere(digit > 0)[::40]:  # a sample of the ink and its rim
        corners = [(row - down, column - left) for down in range(side) for left in range(side)]
        blanked = inputs.repeat(len(corners), 1, 1, 1)
        for index, (top, left) in enumerate(corners):
            blanked[index, 0, top : top + side, left : left + side] = 0
        falls = log_probability(inputs) - log_probability(blanked)
        assert occlusion[row, column] == pytest.approx(falls.mean(), abs=1e-4)

    ig = attribute(model, inputs, [runner_up], "ig")[0]
    whole_fall = (log_probability(inputs) - log_probability(inputs * 0))[0]
    assert ig.sum() == pytest.approx(whole_fall, rel=0.1)

    gradient = attribute(model, inputs, [runner_up], "gradient")[0]
    pixels = inputs.clone().requires_grad_()
    torch.log_softmax(model(pixels), dim=1)[0, runner_up].backward()
    expected = (pixels.grad * inputs)[0, 0].numpy()
    np.testing.assert_allclose(gradient, expected, atol=1e-5)


def test_occlusion_on_the_numpy_model_is_captums_on_torchs(digits):
    """`lenet explain` without --out or another --method runs on the numpy model (no torch to import):
    its layers are torch's forward pass and its occlusion maps Captum's, within float32 rounding."""
    from lenet_cli.inference.explain import LAYER_NAMES, explain_digits, load_explain_model
    from lenet_cli.inference.numpy_forward import NumpyLeNet5

    numpy_model, _ = load_explain_model(PRETRAINED, torch_free=True)
    torch_model, _ = load_explain_model(PRETRAINED)
    assert isinstance(numpy_model, NumpyLeNet5) and not isinstance(torch_model, NumpyLeNet5)
    images = np.stack(read_digits(sorted(digits.iterdir())))
    ours = explain_digits(numpy_model, images, "occlusion", also=(5,))
    captums = explain_digits(torch_model, images, "occlusion", also=(5,))
    for numpy_explanation, torch_explanation in zip(ours, captums, strict=True):
        assert numpy_explanation.ranking[:2] == torch_explanation.ranking[:2]
        for name in LAYER_NAMES:
            np.testing.assert_allclose(
                numpy_explanation.layers[name], torch_explanation.layers[name], atol=1e-4
            )
        assert list(numpy_explanation.attributions) == list(torch_explanation.attributions)
        for label, attribution in numpy_explanation.attributions.items():
            captums_map = torch_explanation.attributions[label]
            scale = np.abs(captums_map).max()  # the answer's own map is small: its probability is near 1
            assert scale > 1e-4
            np.testing.assert_allclose(attribution, captums_map, rtol=0, atol=1e-3 * scale)
    with pytest.raises(ValueError, match="integrated gradients needs the torch model"):
        explain_digits(numpy_model, images[:1], "ig")


def test_standard_input_is_one_image(digits):
    result = invoke(
        "explain", "-", "-c", PRETRAINED, "--json", "--brief", input=(digits / "3-4.png").read_bytes()
    )
    assert result.exit_code == 0, result.output
    [explanation] = json.loads(result.stdout)["explanations"]
    assert (explanation["path"], explanation["label"]) == ("-", 4)


@pytest.mark.parametrize("method", ["occlusion", "ig"])
def test_a_broken_checkpoint_is_one_line_with_or_without_torch(digits, tmp_path, method):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    result = invoke("explain", digits / "0-7.png", "-c", broken, "--method", method)
    assert result.exit_code == 1
    assert result.stderr == f"Error: {broken} is not a readable PyTorch checkpoint (corrupt or truncated?)\n"
