import gzip
import re
import time

import pytest
import torch
from idx import FILES, idx_bytes, synthetic_digits, write_idx_set

from lenet_cli.core.errors import DataError
from lenet_cli.data.datasets import Split, as_input, load_split, split_train_val


def test_loads_gzipped_flat_folder(tiny_mnist):
    train = load_split("mnist", tiny_mnist, "train")
    test = load_split("mnist", tiny_mnist, "test")
    expected_images, expected_labels = synthetic_digits(600, seed=1)
    assert train.images.dtype == torch.uint8 and train.images.shape == (600, 28, 28)
    assert torch.equal(train.images, expected_images)
    assert torch.equal(train.labels, expected_labels.long())
    assert len(test) == 200


def test_loads_plain_files_and_torchvision_layout(tmp_path):
    write_idx_set(tmp_path / "flat", gzipped=False)
    assert len(load_split("mnist", tmp_path / "flat", "train")) == 600
    write_idx_set(tmp_path / "root" / "FashionMNIST" / "raw", gzipped=False)
    assert len(load_split("fashion-mnist", tmp_path / "root", "test")) == 200


def test_as_input_is_float_in_unit_range():
    images = torch.tensor([[[0, 255], [128, 0]]], dtype=torch.uint8)
    batch = as_input(images)
    assert batch.shape == (1, 1, 2, 2) and batch.dtype == torch.float32
    assert batch.max() == 1.0 and batch.min() == 0.0


def test_validation_split_is_seeded_and_disjoint(tiny_mnist):
    train = load_split("mnist", tiny_mnist, "train")
    kept, held = split_train_val(train, 100, seed=4)
    again, held_again = split_train_val(train, 100, seed=4)
    assert len(kept) == 500 and len(held) == 100
    assert torch.equal(held.images, held_again.images)
    # Tag every image with its index (as its label) to see where each one went.
    tagged = Split(train.images, torch.arange(len(train)))
    kept_ids, held_ids = (set(part.labels.tolist()) for part in split_train_val(tagged, 100, seed=4))
    assert not kept_ids & held_ids and kept_ids | held_ids == set(range(600))
    other_kept, other_held = split_train_val(tagged, 100, seed=5)
    assert set(other_held.labels.tolist()) != held_ids  # the seed chooses the hold-out
    with pytest.raises(DataError, match="--val-size 600 leaves no training images"):
        split_train_val(train, 600, seed=0)


def test_missing_data_fails_fast_with_the_file_names(tmp_path, monkeypatch):
    from torchvision.datasets import MNIST

    # An address that refuses at once: the real download code runs, and fails, with no network.
    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])
    started = time.monotonic()
    with pytest.raises(DataError) as raised:
        load_split("mnist", tmp_path / "empty", "train")
    assert time.monotonic() - started < 10
    message = str(raised.value)
    assert message.startswith(f"mnist is not in {tmp_path / 'empty'} and could not be downloaded")
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        assert name in message
    assert "--data-dir" in message


def test_some_files_missing(tmp_path):
    folder = write_idx_set(tmp_path / "d")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"is missing t10k-labels-idx1-ubyte \(gzipped or not\)"):
        load_split("mnist", folder, "train")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda data: b"\x00\x00\x08\x01" + data[4:],
            "is not an IDX image file (magic number 2049, expected 2051)",
        ),
        (
            lambda data: data[:-100],
            "is truncated or padded: its header promises 470416 bytes, the file has 470316",
        ),
        (lambda data: b"", "is empty or truncated"),
    ],
)
def test_corrupt_image_file(tmp_path, damage, message):
    folder = write_idx_set(tmp_path / "d", gzipped=False)
    path = folder / FILES["train"][0]
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataError, match=re.escape(message)):
        load_split("mnist", folder, "train")


def test_not_gzip(tmp_path):
    folder = write_idx_set(tmp_path / "d")
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"this is not gzip at all")
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz is not a readable gzip file"):
        load_split("mnist", folder, "train")


def test_truncated_gzip(tmp_path):
    folder = write_idx_set(tmp_path / "d")
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz is not a readable gzip file"):
        load_split("mnist", folder, "train")


def test_image_and_label_counts_disagree(tmp_path):
    folder = write_idx_set(tmp_path / "d")
    _, labels = synthetic_digits(599, seed=1)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    with pytest.raises(DataError, match="holds 600 images but .* holds 599 labels"):
        load_split("mnist", folder, "train")
