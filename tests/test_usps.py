"""`--dataset usps`: torchvision's USPS files read offline, each 16x16 digit put into MNIST's form."""

import bz2
import json

import torch
from helpers import invoke
from idx import synthetic_digits

from lenet_cli.data.datasets import find_split, load_split


def write_usps(folder, train_count=96, test_count=40):
    """usps.bz2 and usps.t.bz2 as torchvision reads them: `LABEL 1:v ... 256:v`, labels 1-10, values in
    [-1, 1], here the tests' synthetic bars shrunk to 16x16."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, count, seed in (("usps.bz2", train_count, 1), ("usps.t.bz2", test_count, 2)):
        images, labels = synthetic_digits(count, seed)
        small = torch.nn.functional.interpolate(images[:, None].float(), size=(16, 16), mode="area")[:, 0]
        lines = []
        for image, label in zip(small / 127.5 - 1, labels.tolist(), strict=True):
            values = " ".join(
                f"{index}:{value:.4f}" for index, value in enumerate(image.flatten().tolist(), 1)
            )
            lines.append(f"{label + 1} {values}")
        (folder / name).write_bytes(bz2.compress(("\n".join(lines) + "\n").encode()))
    return folder


def test_usps_splits_are_digits_in_mnist_form(tmp_path):
    folder = write_usps(tmp_path / "usps")
    test = load_split("usps", folder, "test")
    assert test.images.shape == (40, 28, 28) and test.images.dtype == torch.uint8
    assert test.labels.tolist() == synthetic_digits(40, 2)[1].tolist()
    rows, cols = (test.images[0] > 0).nonzero(as_tuple=True)
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 <= 21  # the 20-pixel box of MNIST
    assert find_split("usps", tmp_path / "elsewhere", "test") is None  # never downloads


def test_train_and_evaluate_on_usps(tmp_path):
    folder = write_usps(tmp_path / "usps")
    trained = invoke(
        "train",
        "--dataset",
        "usps",
        "--data-dir",
        folder,
        "--epochs",
        1,
        "--batch-size",
        16,
        "--checkpoint-dir",
        tmp_path / "runs",
        "--json",
    )
    assert trained.exit_code == 0, trained.output
    result = json.loads(trained.stdout)
    assert result["dataset"] == "usps"
    evaluated = invoke("evaluate", tmp_path / "runs" / "run-1" / "last.pt", "--json")
    assert evaluated.exit_code == 0, evaluated.output
    document = json.loads(evaluated.stdout)
    assert document["dataset"] == "usps" and document["total"] == 40
    assert abs(document["accuracy"] - result["test_accuracy"]) < 1e-9


def test_a_damaged_usps_file_gets_one_clear_line(tmp_path):
    (tmp_path / "usps").mkdir()
    (tmp_path / "usps" / "usps.bz2").write_bytes(b"not bz2")
    result = invoke(
        "train", "--dataset", "usps", "--data-dir", tmp_path / "usps", "--checkpoint-dir", tmp_path
    )
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: USPS's train set (usps.bz2) is not in {tmp_path / 'usps'} or could not be read"
    )
    assert len(result.stderr.splitlines()) == 1
