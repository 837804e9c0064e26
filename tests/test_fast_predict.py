"""`lenet predict` without torch: the same inputs and answers as the torch path, torch never imported,
and files that name code refused as before."""

import json
import random
import shutil
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch
from drawing import draw_digit, variant
from helpers import invoke, run_lenet, write_code_running_checkpoint, write_digit_png
from without_torch import run_without_torch

from lenet_cli.core.model import LeNet5
from lenet_cli.data.datasets import load_split
from lenet_cli.formats.checkpoint import load_checkpoint
from lenet_cli.formats.checkpoint_rules import STATE_DICT_SHAPES
from lenet_cli.formats.model_file import open_model
from lenet_cli.formats.model_files import load_any_model
from lenet_cli.formats.pt_weights import NeedsTorch, read_checkpoint
from lenet_cli.images.many_files import read_digits
from lenet_cli.inference.export import export_checkpoint
from lenet_cli.inference.fast_predict import load_array_model
from lenet_cli.inference.numpy_forward import ArrayModel
from lenet_cli.inference.predict import predict_files


@pytest.fixture(scope="module")
def models(tmp_path_factory, trained_checkpoint):
    folder = tmp_path_factory.mktemp("fast")
    checkpoint = shutil.copy(trained_checkpoint, folder / "last.pt")
    return {"pt": checkpoint, "onnx": export_checkpoint(checkpoint, "onnx").path}


@pytest.fixture(scope="module")
def images(tmp_path_factory, tiny_mnist):
    """MNIST-form PNGs and drawings in every form users send."""
    folder = tmp_path_factory.mktemp("images")
    test = load_split("mnist", tiny_mnist, "test")
    paths = [write_digit_png(folder / f"mnist-{index}.png", test.images[index]) for index in range(40)]
    rng = random.Random(24)
    for kind in ("plain", "inverted", "alpha", "exif-rotated", "photo", "colour"):
        for digit in (1, 4, 8):
            image, save_args = variant(draw_digit(digit, rng), kind, rng)
            path = folder / f"{kind}-{digit}.{'jpg' if kind == 'photo' else 'png'}"
            image.save(path, **save_args)
            paths.append(path)
    return paths


def test_the_inputs_are_the_same_with_torch_loaded_or_blocked(images, tmp_path):
    """One resampler on both paths: every image gives the same 28x28 input to within 1e-6 (uint8: exactly)."""
    code = (
        "import sys, numpy as np\n"
        "from lenet_cli.images.many_files import read_digits\n"
        "np.save(sys.argv[1], np.stack(read_digits(sys.argv[2:])))\n"
    )
    result = run_without_torch(code, str(tmp_path / "inputs.npy"), *map(str, images))
    assert result.returncode == 0, result.stderr
    without_torch = np.load(tmp_path / "inputs.npy")
    with_torch = read_digits(images)
    assert "torch" in sys.modules
    for path, mine, reference in zip(images, without_torch, with_torch, strict=True):
        assert mine.dtype == reference.dtype == np.uint8
        assert np.abs(mine.astype(np.float64) - reference).max() <= 1e-6, path


@pytest.mark.parametrize("kind", ["pt", "onnx"])
def test_the_answers_are_the_torch_paths(models, images, kind):
    fast, info = load_array_model(open_model(models[kind]))
    assert isinstance(fast, ArrayModel) and info.dataset == "mnist"
    torch_model, torch_info = load_any_model(models[kind])
    assert info.format == torch_info.format and info.test_accuracy == torch_info.test_accuracy
    pairs = zip(
        predict_files(fast, images, top_k=10), predict_files(torch_model, images, top_k=10), strict=True
    )
    for ours, theirs in pairs:
        assert ours.label == theirs.label, ours.path
        assert np.array_equal(ours.seen, np.asarray(theirs.seen))
        by_label = dict(theirs.top_k)
        assert all(abs(p - by_label[label]) <= 1e-5 for label, p in ours.top_k), ours.path


def test_an_image_gets_the_same_answer_alone_or_with_others(models, images):
    fast, _ = load_array_model(open_model(models["pt"]))
    alone = predict_files(fast, images[:1])[0]
    together = predict_files(fast, images[:7])[0]
    assert alone.to_dict() == together.to_dict()


def test_the_pt_reader_reads_what_torch_reads(trained_checkpoint):
    ours, theirs = read_checkpoint(open_model(trained_checkpoint)), load_checkpoint(trained_checkpoint)
    assert list(ours["model"]) == list(theirs["model"]) == list(STATE_DICT_SHAPES)
    for key, tensor in theirs["model"].items():
        assert ours["model"][key].dtype == np.float32 and np.array_equal(ours["model"][key], tensor.numpy())
    for key in ("format_version", "epoch", "config", "dataset", "metrics", "history", "created"):
        assert ours[key] == theirs[key]
    assert {key: tuple(value.shape) for key, value in LeNet5().state_dict().items()} == STATE_DICT_SHAPES


@pytest.mark.slow
def test_predict_on_the_fast_path_never_imports_torch(models, images, tmp_path, monkeypatch):
    digit = images[0]
    monkeypatch.chdir(tmp_path)  # no checkpoints/ here: the shipped model is the default
    monkeypatch.setattr("lenet_cli.inference.fast_predict.load_array_model", lambda model_file: None)
    for model in (models["pt"], models["onnx"]):
        code, stdout, stderr, imported = run_lenet("predict", digit, "-c", model, "--json")
        assert (code, imported, stderr) == (0, False, "")
        expected = invoke("predict", digit, "-c", model, "--json")  # through torch
        (ours,), (theirs,) = json.loads(stdout)["predictions"], json.loads(expected.stdout)["predictions"]
        assert ours["label"] == theirs["label"] and ours["confidence"] == pytest.approx(
            theirs["confidence"], abs=1e-5
        )
    code, stdout, stderr, imported = run_lenet("predict", digit, "--show", cwd=tmp_path)
    expected = invoke("predict", digit, "--show")
    assert (code, imported) == (0, False) and stderr.startswith("Using the model shipped with lenet")
    assert (stdout, stderr) == (expected.stdout, expected.stderr)
    for args in (["--help"], ["--version"], ["predict", "--help"]):
        assert run_lenet(*args)[::3] == (0, False)


@pytest.mark.slow
def test_a_hostile_pt_is_refused_on_the_fast_path_as_before(tmp_path, images):
    marker = tmp_path / "pwned"
    evil = write_code_running_checkpoint(tmp_path / "evil.pt", marker)
    code, stdout, stderr, imported = run_lenet("predict", images[0], "-c", evil)
    expected = (
        f"Error: refusing to load {evil}: it holds Python objects that are not allowed in a safe checkpoint\n"
    )
    assert (code, stdout, stderr, imported) == (1, "", expected, False)
    assert invoke("summary", evil).stderr == expected  # the torch path's words
    assert not marker.exists()


@pytest.mark.slow
def test_checkpoints_only_torch_reads_still_predict_through_it(trained_checkpoint, tmp_path, images):
    weights = load_checkpoint(trained_checkpoint)["model"]
    legacy = tmp_path / "legacy.pt"
    torch.save(weights, legacy, _use_new_zipfile_serialization=False)
    parameters = tmp_path / "parameters.pt"
    torch.save(OrderedDict((key, torch.nn.Parameter(value)) for key, value in weights.items()), parameters)
    expected = json.loads(invoke("predict", images[0], "-c", trained_checkpoint, "--json").stdout)[
        "predictions"
    ]
    for path in (legacy, parameters):
        assert load_array_model(open_model(path)) is None
        code, stdout, stderr, imported = run_lenet("predict", images[0], "-c", path, "--json")
        assert (code, stderr, imported) == (0, "", True)
        assert json.loads(stdout)["predictions"][0]["label"] == expected[0]["label"]


def test_a_broken_pt_gets_torchs_message(tmp_path, images, trained_checkpoint):
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(trained_checkpoint.read_bytes()[:5000])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all" * 10)
    for path in (truncated, garbage):
        result = invoke("predict", images[0], "-c", path)
        assert result.exit_code == 1
        assert (
            result.stderr == f"Error: {path} is not a readable PyTorch checkpoint (corrupt or truncated?)\n"
        )


def test_the_layer_table_without_torch_is_the_models():
    from lenet_cli.inference.summary import layer_table, summarize

    assert layer_table().to_dict() == summarize().to_dict()


@pytest.mark.slow
def test_summary_of_a_checkpoint_never_imports_torch(models, trained_checkpoint, tmp_path, monkeypatch):
    code, stdout, stderr, imported = run_lenet("summary", models["pt"])
    assert (code, stderr, imported) == (0, "", False)
    assert stdout == invoke("summary", models["pt"]).stdout

    def only_torch(model_file):
        raise NeedsTorch("as if")

    monkeypatch.setattr("lenet_cli.inference.fast_predict.read_checkpoint", only_torch)
    assert stdout == invoke("summary", models["pt"]).stdout  # the checkpoint read by torch
    code, stdout, _, imported = run_lenet("summary", "--json", cwd=tmp_path)
    assert (code, imported) == (0, False) and json.loads(stdout)["default_model"]["dataset"] == "mnist"


def test_a_tensor_the_reader_would_have_to_multiply_goes_to_torch():
    from lenet_cli.formats.pt_weights import _rebuild_tensor_v2

    storage = np.zeros(4, np.float32)
    assert _rebuild_tensor_v2(storage, 1, (3,), (1,)).array.shape == (3,)
    for offset, size, stride in [(0, (10**9,), (0,)), (0, (5,), (1,)), (2, (2, 2), (1, 1)), (0, (2,), (-1,))]:
        with pytest.raises(NeedsTorch):
            _rebuild_tensor_v2(storage, offset, size, stride)
