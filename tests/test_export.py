"""`lenet export`: ONNX and torch.export files that match the checkpoint, and that lenet itself runs."""

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
import tutorial
from helpers import invoke
from PIL import Image

import lenet_cli.inference.export
from lenet_cli.data.datasets import as_input, load_split
from lenet_cli.inference.export import export_checkpoint, synthetic_digits


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, trained_checkpoint):
    """A private copy: exports land beside it."""
    folder = tmp_path_factory.mktemp("export")
    return Path(shutil.copy(trained_checkpoint, folder / "last.pt"))


@pytest.fixture(scope="module")
def tutorial_model(checkpoint):
    model = tutorial.LeNet5()
    model.load_state_dict(torch.load(checkpoint, weights_only=True)["model"], strict=True)
    return model.eval()


@pytest.fixture(scope="module")
def exported(checkpoint):
    files = {}
    for export_format in ("onnx", "pt2"):
        result = invoke("export", checkpoint, "--format", export_format, "--json")
        assert result.exit_code == 0, result.output
        files[export_format] = json.loads(result.stdout)
    return files


def inputs_at(batch_size):
    return as_input(synthetic_digits(batch_size, seed=99))


def test_export_reports_its_own_verification(checkpoint, exported):
    for export_format, suffix in (("onnx", ".onnx"), ("pt2", ".pt2")):
        report = exported[export_format]
        path = checkpoint.with_suffix(suffix)
        assert report["path"] == str(path) and report["format"] == export_format
        assert report["bytes"] == path.stat().st_size
        assert report["images_checked"] == 1000
        assert report["checked_on"] == "synthetic digits"  # the tiny test set has only 200 images
        assert 0 <= report["max_abs_diff"] <= 1e-4 and report["argmax_agreement"] == 1.0
    assert not [p for p in checkpoint.parent.iterdir() if ".tmp-" in p.name]


@pytest.mark.parametrize("batch_size", [1, 1000])
def test_independent_onnxruntime_matches_the_tutorials_model(
    checkpoint, exported, tutorial_model, batch_size
):
    session = onnxruntime.InferenceSession(
        str(checkpoint.with_suffix(".onnx")), providers=["CPUExecutionProvider"]
    )
    (image_input,) = session.get_inputs()
    assert (image_input.name, image_input.type) == ("image", "tensor(float)")
    assert image_input.shape[1:] == [1, 28, 28] and isinstance(image_input.shape[0], str)  # a free batch
    assert [output.name for output in session.get_outputs()] == ["logits"]
    inputs = inputs_at(batch_size)
    (logits,) = session.run(["logits"], {"image": inputs.numpy()})
    with torch.inference_mode():
        reference = tutorial_model(inputs).numpy()
    assert logits.shape == (batch_size, 10)
    assert np.abs(logits - reference).max() <= 1e-4
    assert (logits.argmax(1) == reference.argmax(1)).all()


@pytest.mark.parametrize("batch_size", [1, 1000])
def test_torch_export_load_matches_the_tutorials_model(checkpoint, exported, tutorial_model, batch_size):
    program = torch.export.load(str(checkpoint.with_suffix(".pt2"))).module()
    inputs = inputs_at(batch_size)
    with torch.inference_mode():
        difference = (program(inputs) - tutorial_model(inputs)).abs().max()
    assert float(difference) <= 1e-4


def test_onnx_file_carries_its_metadata(checkpoint, exported):
    model = onnx.load(str(checkpoint.with_suffix(".onnx")))
    assert not model.graph.initializer[0].external_data  # weights inside the one file
    metadata = {entry.key: entry.value for entry in model.metadata_props}
    assert metadata["dataset"] == "mnist"
    assert json.loads(metadata["class_names"]) == [str(d) for d in range(10)]
    assert metadata["input"].startswith("float32 (N, 1, 28, 28) in [0, 1], white digit on black")
    saved = torch.load(checkpoint, weights_only=True)
    assert float(metadata["test_accuracy"]) == pytest.approx(saved["metrics"]["test_accuracy"], abs=1e-6)


def test_lenet_evaluates_and_predicts_with_its_exports(checkpoint, exported, tiny_mnist, tmp_path):
    test = load_split("mnist", tiny_mnist, "test")
    for index in range(6):
        Image.fromarray(test.images[index].numpy()).save(tmp_path / f"{index}.png")

    def evaluated(path):
        result = invoke("evaluate", path, "--data-dir", tiny_mnist, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def labels(path):
        result = invoke("predict", tmp_path, "-c", path, "--json")
        assert result.exit_code == 0, result.output
        return [entry["label"] for entry in json.loads(result.stdout)["predictions"]]

    reference = evaluated(checkpoint)
    for suffix in (".onnx", ".pt2"):
        report = evaluated(checkpoint.with_suffix(suffix))
        assert abs(report["correct"] - reference["correct"]) <= 2
        assert report["loss"] == pytest.approx(reference["loss"], abs=1e-4)
        assert labels(checkpoint.with_suffix(suffix)) == labels(checkpoint)


def test_summary_of_an_onnx_file(checkpoint, exported):
    result = invoke("summary", checkpoint.with_suffix(".onnx"), "--json")
    assert result.exit_code == 0, result.output
    description = json.loads(result.stdout)
    assert description["inputs"] == [{"name": "image", "type": "float", "shape": ["batch", 1, 28, 28]}]
    assert description["outputs"] == [{"name": "logits", "type": "float", "shape": ["batch", 10]}]
    assert description["opset"]["ai.onnx"] >= 18
    text = invoke("summary", checkpoint.with_suffix(".onnx")).stdout
    assert "image: float (batch, 1, 28, 28)" in text and "logits: float (batch, 10)" in text


def test_existing_output_needs_force_and_is_never_half_written(checkpoint, exported, tmp_path):
    onnx_path = checkpoint.with_suffix(".onnx")
    before = onnx_path.read_bytes()
    result = invoke("export", checkpoint)
    assert result.exit_code == 1
    assert result.stderr == f"Error: {onnx_path} already exists; pass --force to replace it\n"
    assert onnx_path.read_bytes() == before


def test_a_failed_verification_leaves_no_file(checkpoint, tmp_path, monkeypatch):
    monkeypatch.setattr(lenet_cli.inference.export, "TOLERANCE", -1.0)  # nothing can pass
    target = tmp_path / "model.onnx"
    with pytest.raises(lenet_cli.inference.export.LenetError, match="disagrees with .* nothing written"):
        export_checkpoint(checkpoint, "onnx", target)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "Error: checkpoint {tmp}/missing.pt does not exist\n"),
        ("suffix", "Error: --output for --format onnx must end in .onnx: {tmp}/model.pt2\n"),
        ("folder", "Error: cannot write {tmp}/blocker/model.onnx: folder {tmp}/blocker does not exist\n"),
        ("broken-onnx", "Error: {tmp}/broken.onnx is not a readable ONNX model"),
        ("broken-pt2", "Error: {tmp}/broken.pt2 is not a readable torch.export program"),
        ("export-of-export", "Error: {tmp}/broken.onnx is already an export; export from the checkpoint"),
    ],
)
def test_bad_export_inputs(checkpoint, tmp_path, case, message):
    (tmp_path / "blocker").write_text("a file, not a folder")
    (tmp_path / "broken.onnx").write_bytes(b"\x08\x07 not protobuf at all")
    (tmp_path / "broken.pt2").write_bytes(b"not a zip archive")
    args = {
        "missing": ["export", tmp_path / "missing.pt"],
        "suffix": ["export", checkpoint, "-o", tmp_path / "model.pt2"],
        "folder": ["export", checkpoint, "-o", tmp_path / "blocker" / "model.onnx"],
        "broken-onnx": ["evaluate", tmp_path / "broken.onnx"],
        "broken-pt2": ["predict", tmp_path / "blocker", "-c", tmp_path / "broken.pt2"],
        "export-of-export": ["export", tmp_path / "broken.onnx"],
    }[case]
    result = invoke(*args)
    assert result.exit_code == 1
    assert result.stderr.startswith(message.format(tmp=tmp_path))
    assert result.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "broken.onnx", "broken.pt2"]


def test_unknown_format_is_a_usage_error(checkpoint):
    result = invoke("export", checkpoint, "--format", "tflite")
    assert result.exit_code == 2


def test_an_export_is_evaluated_on_the_data_its_checkpoint_was_trained_from(checkpoint, exported, tiny_mnist):
    reference = json.loads(invoke("evaluate", checkpoint, "--json").stdout)
    for suffix in (".onnx", ".pt2"):
        result = invoke("evaluate", checkpoint.with_suffix(suffix), "--json")  # no --data-dir
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["correct"] == reference["correct"]
