"""`lenet train --cuts`: the reader's cuts of composed numbers, labelled by whose ink they hold, taught with
bad cuts as no digit, mixed into training exactly and resumably."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import invoke, stop_and_resume
from PIL import Image, ImageDraw

from lenet_cli.core.config import TrainConfig
from lenet_cli.training import cuts
from lenet_cli.training.cut_data import NOT_A_DIGIT, cut_field
from lenet_cli.training.fit import fit
from lenet_cli.training.loop import batch_loss


@pytest.fixture
def small_pool(monkeypatch):
    monkeypatch.setattr(cuts, "POOL_SIZE", 60)


def written_field(strokes: list[list[tuple[int, int]]], size=(150, 60)) -> tuple[np.ndarray, np.ndarray]:
    """Dark strokes on light paper, one digit each, and which digit (1-based) owns each pixel."""
    owner = np.zeros(size[::-1], np.int64)
    for index, points in enumerate(strokes):
        layer = Image.new("L", size, 0)
        ImageDraw.Draw(layer).line(points, fill=255, width=4, joint="curve")
        owner[np.asarray(layer) > 0] = index + 1
    grey = np.where(owner > 0, 20, 235).astype(np.uint8)
    return grey, owner


def test_a_cut_is_labelled_by_whose_ink_it_holds():
    one = [(30, 12), (30, 48)]
    seven = [(44, 12), (64, 12), (50, 48)]
    grey, owner = written_field([one, seven])
    found = cut_field(grey, owner, [1, 7])
    labels = [label for _, label in found]
    assert labels.count(1) >= 1 and labels.count(7) >= 1  # each digit alone keeps its label
    assert NOT_A_DIGIT in labels  # the two together, or a part of the 7, is a bad cut
    assert all(seen.shape == (28, 28) and seen.dtype == np.uint8 for seen, _ in found)


def test_blank_fields_give_no_cuts():
    assert cut_field(np.full((40, 120), 230, np.uint8), np.zeros((40, 120), np.int64), [3]) == []


def test_bad_cuts_are_taught_as_no_digit():
    logits = torch.tensor([[2.0, 0.5, -1.0] + [0.0] * 7, [0.3, 1.0, 4.0] + [0.0] * 7])
    labels = torch.tensor([0, NOT_A_DIGIT])
    uniform = torch.full((10,), 0.1)
    expected = (
        F.cross_entropy(logits[:1], labels[:1], reduction="sum")
        + F.cross_entropy(logits[1:], uniform[None], reduction="sum")
    ) / 2
    assert torch.allclose(batch_loss(logits, labels, bad_cuts=True), expected)
    digits = torch.tensor([0, 2])
    assert torch.equal(batch_loss(logits, digits), F.cross_entropy(logits, digits))


def test_cuts_runs_are_reproducible_and_resume_bit_identically(tiny_mnist, tmp_path, monkeypatch, small_pool):
    config = TrainConfig(
        epochs=2, batch_size=32, data_dir=str(tiny_mnist), checkpoint_dir=str(tmp_path), cuts=True
    )
    straight = fit(config, run_outputs=False)
    reference = torch.load(straight.checkpoint, weights_only=True)
    assert (
        30 <= reference["cuts"]["count"] <= 60 and 0 < reference["cuts"]["bad_cuts"] <= 30
    )  # bars give few digits
    again = torch.load(fit(config, run_outputs=False).checkpoint, weights_only=True)["model"]
    assert all(torch.equal(again[key], reference["model"][key]) for key in again)
    plain = torch.load(fit(config.with_changes(cuts=False), run_outputs=False).checkpoint, weights_only=True)
    assert not all(torch.equal(plain["model"][key], reference["model"][key]) for key in again)

    final, kept = stop_and_resume(config, tmp_path, "cuts")  # 600 / (32 - 8) = 25 steps an epoch: mid-epoch 2
    assert all(torch.equal(final[key], reference["model"][key]) for key in final)

    monkeypatch.setattr(cuts, "POOL_SIZE", 50)  # a pool that differs from the one it was trained on
    with pytest.raises(Exception, match=r"the cuts made here differ from those .*stopped.pt was trained on"):
        fit(config, resume_from=kept, run_outputs=False)


def test_train_with_cuts_says_what_it_mixed_in(tiny_mnist, tmp_path, small_pool):
    result = invoke(
        "train",
        "--cuts",
        "--epochs",
        1,
        "--batch-size",
        32,
        "--data-dir",
        tiny_mnist,
        "--checkpoint-dir",
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    saved = torch.load(tmp_path / "run-1" / "last.pt", weights_only=True)
    count, bad = saved["cuts"]["count"], saved["cuts"]["bad_cuts"]
    line = f"Reader's cuts: {count} pieces of composed numbers ({bad} bad cuts, taught as no digit), 8 in every batch, augmented"
    assert line in result.output.splitlines()
    assert saved["config"]["cuts"] is True
    shown = invoke("summary", tmp_path / "run-1" / "last.pt")
    assert f"Reader's cuts │ {count} pieces, {bad} bad cuts (--cuts)" in shown.output


def test_cuts_need_digits(tmp_path):
    result = invoke("train", "--cuts", "--dataset", "fashion-mnist", "--data-dir", tmp_path / "none")
    assert result.exit_code == 1
    assert (
        result.output
        == "Error: --cuts composes numbers from digits; it works with --dataset mnist, not fashion-mnist\n"
    )
