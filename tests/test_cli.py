import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch
from helpers import invoke, write_digit_png

from lenet_cli import __version__


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.output == f"lenet {__version__}\n"


def test_help_lists_commands_with_examples():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("train", "evaluate", "predict", "summary"):
        assert command in result.output
    for command in ("train", "evaluate", "predict", "summary"):
        help_text = invoke(command, "--help").output
        assert f"Example: lenet {command}" in help_text


def test_train_end_to_end(tiny_mnist, tmp_path):
    result = invoke(
        "train", "--epochs", 4, "--data-dir", tiny_mnist, "--checkpoint-dir", tmp_path, "--seed", 1
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    threads = torch.get_num_threads()
    assert (
        lines[0]
        == f"Training on cpu ({threads} thread{'s' if threads > 1 else ''}) · mnist: 600 training, 200 test images"
    )
    assert lines[1] == f"Run folder: {tmp_path / 'run-1'}"
    epoch_lines = lines[2:6]
    for number, line in enumerate(epoch_lines, start=1):
        assert re.fullmatch(rf"Epoch {number}/4  train_loss \d+\.\d{{4}}  lr \S+  \d+\.\ds", line), line
    losses = [float(line.split()[3]) for line in epoch_lines]
    assert losses[-1] < losses[0] / 2  # training really learns
    test_line = lines[6]
    accuracy = float(re.match(r"Test accuracy: ([\d.]+)% \(\d+/200\)", test_line).group(1))
    assert accuracy > 50  # chance is 10%
    assert lines[7] == f"Checkpoint: {tmp_path / 'run-1' / 'last.pt'}"
    saved = torch.load(tmp_path / "run-1" / "last.pt", weights_only=True)
    assert saved["metrics"]["test_accuracy"] == pytest.approx(accuracy / 100)


def test_train_json_and_no_overwrite(tiny_mnist, tmp_path):
    args = ("train", "--epochs", 2, "--data-dir", tiny_mnist, "--checkpoint-dir", tmp_path, "--json")
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    document = json.loads(first.stdout)  # stdout is exactly one JSON document
    assert document["checkpoint"] == str(tmp_path / "run-1" / "last.pt")
    assert document["epochs"] == 2 and len(document["history"]) == 2
    assert 0.0 <= document["test_accuracy"] <= 1.0
    assert "Epoch 1/2" in first.stderr
    before = (tmp_path / "run-1" / "last.pt").read_bytes()
    second = invoke(*args)
    assert json.loads(second.stdout)["checkpoint"] == str(tmp_path / "run-2" / "last.pt")
    assert (tmp_path / "run-1" / "last.pt").read_bytes() == before  # the earlier run is untouched


def test_train_with_validation_keeps_best(tiny_mnist, tmp_path):
    result = invoke(
        "train",
        "--epochs",
        2,
        "--val-size",
        100,
        "--data-dir",
        tiny_mnist,
        "--checkpoint-dir",
        tmp_path,
        "--schedule",
        "constant",
        "--json",
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["best_checkpoint"] == str(tmp_path / "run-1" / "best.pt")
    assert document["config"]["lr"] == 1e-3 and document["config"]["schedule"] == "constant"
    assert all(0 <= record["val_accuracy"] <= 1 for record in document["history"])
    best = torch.load(tmp_path / "run-1" / "best.pt", weights_only=True)
    assert best["metrics"]["val_accuracy"] == max(r["val_accuracy"] for r in document["history"])


def test_evaluate_text_and_json_agree_with_training(trained_checkpoint, tiny_mnist):
    saved = torch.load(trained_checkpoint, weights_only=True)
    result = invoke("evaluate", trained_checkpoint, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["accuracy"] == saved["metrics"]["test_accuracy"]
    assert document["total"] == 200 and sum(map(sum, document["confusion_matrix"])) == 200
    assert sum(row["support"] for row in document["per_class"]) == 200
    text = invoke("evaluate", trained_checkpoint, "--data-dir", tiny_mnist)
    assert text.exit_code == 0
    assert text.stdout.splitlines()[1] == (
        f"Accuracy: {document['accuracy'] * 100:.2f}% ({document['correct']}/200)   Loss: {document['loss']:.4f}"
    )
    assert "Confusion matrix (rows: true class, columns: predicted)" in text.stdout


def test_evaluate_tutorial_state_dict(trained_checkpoint, tiny_mnist, tmp_path):
    weights = torch.load(trained_checkpoint, weights_only=True)["model"]
    torch.save(weights, tmp_path / "tutorial.pt")  # what the tutorial's own code writes
    ours = json.loads(invoke("evaluate", trained_checkpoint, "--json").stdout)
    theirs = json.loads(
        invoke("evaluate", tmp_path / "tutorial.pt", "--data-dir", tiny_mnist, "--json").stdout
    )
    assert theirs["accuracy"] == ours["accuracy"] and theirs["correct"] == ours["correct"]


SUMMARY = """\
LeNet-5
┏━━━━━━━━━┳━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━┳━━━━━━━━━━━┓
┃ Layer   ┃ Output Shape ┃ Formula                     ┃ Params ┃ Mult-adds ┃
┡━━━━━━━━━╇━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━╇━━━━━━━━━━━┩
│ Input   │ (1, 28, 28)  │                             │      0 │         0 │
│ Conv1   │ (6, 28, 28)  │ (28 + 2·2 − 5) / 1 + 1 = 28 │    156 │   117,600 │
│ Pool1   │ (6, 14, 14)  │ 28 / 2 = 14                 │      0 │         0 │
│ Conv2   │ (16, 10, 10) │ (14 + 2·0 − 5) / 1 + 1 = 10 │  2,416 │   240,000 │
│ Pool2   │ (16, 5, 5)   │ 10 / 2 = 5                  │      0 │         0 │
│ Flatten │ (400,)       │ 16·5·5 = 400                │      0 │         0 │
│ FC1     │ (120,)       │ 400 → 120                   │ 48,120 │    48,000 │
│ FC2     │ (84,)        │ 120 → 84                    │ 10,164 │    10,080 │
│ FC3     │ (10,)        │ 84 → 10                     │    850 │       840 │
├─────────┼──────────────┼─────────────────────────────┼────────┼───────────┤
│ Total   │              │                             │ 61,706 │   416,520 │
└─────────┴──────────────┴─────────────────────────────┴────────┴───────────┘
Parameters: 61,706 (241.0 KiB as float32) · mult-adds per image: 416,520 · forward activations per image: 36.2 KiB
"""


def test_summary_exact(tmp_path, monkeypatch):
    from lenet_cli.formats.shipped import PRETRAINED

    monkeypatch.chdir(tmp_path)  # no checkpoints/ here: the default model is the one in the package
    result = invoke("summary")
    assert result.exit_code == 0
    table, default = result.stdout[: len(SUMMARY)], result.stdout[len(SUMMARY) :].splitlines()
    assert table == SUMMARY
    assert default[:2] == ["The model predict and serve use when none is named:", f"Checkpoint {PRETRAINED}"]
    assert "│ Test accuracy │ 99.42%" in result.stdout and "│ Epochs        │ 8 of 8" in result.stdout
    document = json.loads(invoke("summary", "--json").stdout)
    assert document["default_model"]["path"] == str(PRETRAINED) and "checkpoint" not in document


def test_summary_of_a_checkpoint(trained_checkpoint):
    result = invoke("summary", trained_checkpoint)
    assert result.exit_code == 0
    assert result.stdout.startswith(SUMMARY)
    assert "│ Epochs        │ 3 of 3" in result.stdout
    document = json.loads(invoke("summary", trained_checkpoint, "--json").stdout)
    assert document["total_params"] == 61_706 and document["mult_adds"] == 416_520
    assert document["checkpoint"]["dataset"] == "mnist" and document["checkpoint"]["epoch"] == 3


def test_predict_json_and_errors(trained_checkpoint, tiny_mnist, tmp_path):
    from lenet_cli.data.datasets import load_split

    test = load_split("mnist", tiny_mnist, "test")
    write_digit_png(tmp_path / "a.png", test.images[0])
    write_digit_png(tmp_path / "b.png", 255 - test.images[1])  # dark ink on white paper
    (tmp_path / "broken.png").write_bytes(b"not an image")
    result = invoke(
        "predict",
        tmp_path / "a.png",
        tmp_path / "b.png",
        tmp_path / "broken.png",
        tmp_path / "missing.png",
        "--checkpoint",
        trained_checkpoint,
        "--json",
        "--top-k",
        2,
    )
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    first, second, broken, missing = document["predictions"]
    assert first["path"] == str(tmp_path / "a.png")
    assert len(first["top_k"]) == 2 and first["top_k"][0]["label"] == first["label"]
    assert 0 < first["confidence"] <= 1
    assert broken == {
        "path": str(tmp_path / "broken.png"),
        "error": "cannot decode image (UnidentifiedImageError)",
    }
    assert missing == {"path": str(tmp_path / "missing.png"), "error": "no such file"}
    assert result.stderr == "Error: 2 of 4 images could not be predicted\n"


def test_predict_defaults_to_the_newest_checkpoint(trained_checkpoint, tiny_mnist, tmp_path, monkeypatch):
    from lenet_cli.data.datasets import load_split

    monkeypatch.chdir(tmp_path)
    write_digit_png(tmp_path / "a.png", load_split("mnist", tiny_mnist, "test").images[0])
    shipped = invoke("predict", "a.png", "--json")  # no checkpoints/ here: the model in the package answers
    assert shipped.exit_code == 0, shipped.output
    assert shipped.stderr == (
        "Using the model shipped with lenet (LeNet-5 on mnist, 99.42% test accuracy); "
        "train your own with: lenet train\n"
    )
    assert json.loads(shipped.stdout)["checkpoint"].endswith("lenet_cli/formats/pretrained/lenet5-mnist.pt")
    (tmp_path / "checkpoints" / "run-1").mkdir(parents=True)
    shutil.copy(trained_checkpoint, tmp_path / "checkpoints" / "run-1" / "last.pt")
    result = invoke("predict", "a.png")
    assert result.exit_code == 0, result.output
    assert "a.png" in result.stdout and result.stderr == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["train", "--epochs", "0"],
            "Invalid value for '--epochs': 0 is not in the range x>=1.",
        ),
        (
            ["train", "--batch-size", "0"],
            "Invalid value for '--batch-size': 0 is not in the range x>=1.",
        ),
        (["train", "--lr", "-1"], "Invalid value for '--lr': -1.0 is not a positive finite number"),
        (["train", "--lr", "nan"], "Invalid value for '--lr': nan is not a positive finite number"),
        (
            ["train", "--device", "tpu"],
            "Invalid value for '--device': 'tpu' is not one of 'auto', 'cpu', 'cuda', 'mps'.",
        ),
        (["evaluate"], "Missing argument 'CHECKPOINT'."),
    ],
)
def test_usage_errors_exit_2(args, message):
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == f"Error: {message}"


def test_errors_are_one_line_exit_1(tmp_path, tiny_mnist):
    result = invoke("evaluate", tmp_path / "nope.pt")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: checkpoint {tmp_path / 'nope.pt'} does not exist\n",
    )
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    result = invoke("summary", tmp_path / "bad.pt")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {tmp_path / 'bad.pt'} is not a readable PyTorch checkpoint (corrupt or truncated?)\n",
    )
    if not torch.cuda.is_available():
        result = invoke("train", "--device", "cuda", "--data-dir", tiny_mnist, "--checkpoint-dir", tmp_path)
        assert result.exit_code == 1
        assert (
            result.stderr
            == "Error: --device cuda was asked for, but no CUDA GPU is available here; use --device cpu\n"
        )
    result = invoke("train", "--val-size", 600, "--data-dir", tiny_mnist, "--checkpoint-dir", tmp_path / "ck")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: --val-size 600 leaves no training images (the training set has 600)\n",
    )
    assert not (tmp_path / "ck").exists()  # nothing written for a refused run


@pytest.mark.slow  # a subprocess of its own; `pytest -m "not slow"` skips it
def test_installed_script_and_module_entry_point(trained_checkpoint):
    script = shutil.which("lenet", path=os.path.dirname(sys.executable)) or shutil.which("lenet")
    assert script, "the lenet console script is not installed"
    result = subprocess.run([script, "summary", "--json"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["total_params"] == 61_706
    module = subprocess.run(
        [sys.executable, "-m", "lenet_cli", "evaluate", str(trained_checkpoint), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert module.returncode == 0, module.stderr
    assert json.loads(module.stdout)["total"] == 200
    failing = subprocess.run(
        [script, "evaluate", "/nonexistent.pt"], capture_output=True, text=True, timeout=120
    )
    assert failing.returncode == 1 and failing.stderr == "Error: checkpoint /nonexistent.pt does not exist\n"
    assert "Traceback" not in failing.stderr
