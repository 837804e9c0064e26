"""`lenet train --numbers`: labelled whole numbers spelled through the reader's cuts by forced alignment and
learned, resumably; `--init reader`; and `lenet evaluate --numbers`, which reads as `lenet read` does."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import invoke, stop_and_resume
from PIL import Image, ImageDraw

from lenet_cli.core.config import TrainConfig
from lenet_cli.formats.shipped import READER
from lenet_cli.images.field_cuts import cut_into_candidates
from lenet_cli.inference.alignment import candidate_targets, piece_ink, spell
from lenet_cli.inference.fast_predict import load_predict_model
from lenet_cli.inference.numbers import candidate_log_probs, scores_of
from lenet_cli.training.cut_data import NOT_A_DIGIT
from lenet_cli.training.fit import fit

STROKES = {  # each digit's pen strokes in a 24x40 box
    "1": [[(12, 2), (12, 38)]],
    "7": [[(2, 2), (22, 2), (8, 38)]],
    "4": [[(16, 38), (16, 2), (2, 26), (23, 26)]],
    "0": [[(12, 2), (22, 12), (22, 28), (12, 38), (2, 28), (2, 12), (12, 2)]],
}


def number_image(digits: str, gap: int = 14) -> Image.Image:
    """`digits` written with a 4-pixel pen, dark on light paper, `gap` pixels apart."""
    width = 20 + len(digits) * (24 + gap)
    image = Image.new("L", (width, 64), 235)
    draw = ImageDraw.Draw(image)
    for place, digit in enumerate(digits):
        left = 14 + place * (24 + gap)
        for stroke in STROKES[digit]:
            draw.line([(left + x, 12 + y) for x, y in stroke], fill=25, width=4, joint="curve")
    return image


def numbers_folder(folder: Path, rows: list[tuple[str, str]]) -> Path:
    """A folder as `--numbers` reads it: each (written, label) as an image, and labels.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["file,label"]
    for index, (written, label) in enumerate(rows):
        number_image(written).save(folder / f"n{index:02d}.png")
        lines.append(f"n{index:02d}.png,{label}")
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    return folder


def squashed(text: str) -> str:
    return re.sub(r"[\s│]", "", text)


TRAIN_ROWS = [(text, text) for text in ("17", "71", "40", "104", "7", "14", "470", "01", "4", "710")]


def test_the_alignment_spells_a_known_label_through_known_cuts():
    # Three pieces; candidates 0..4 are pieces (0), (1), (2), (0-1) and (1-2).
    runs = [(0, 1), (1, 2), (2, 3), (0, 2), (1, 3)]
    scores = np.full((5, 10), -5.0)
    scores[3, 3], scores[2, 8] = -0.1, -0.2  # "38" as pieces 0-1, then 2 ...
    scores[0, 3], scores[4, 8] = -1.0, -1.0  # ... beats "3" then pieces 1-2 as "8"
    scores[0, 7] = 0.0  # a better class elsewhere changes nothing: the label is spelled
    assert spell(runs, 3, scores, "38") == [3, 2]
    scores[3, 3] = -3.0
    assert spell(runs, 3, scores, "38") == [0, 4]
    assert spell(runs, 3, scores, "381") == [0, 1, 2]
    assert spell(runs, 3, scores, "3817") is None  # more digits than pieces: no path spells it
    assert spell([(0, 1), (1, 2)], 3, scores[:2], "38") is None  # piece 2 in no candidate
    assert spell(runs, 3, scores, "") is None
    singles, inf = runs[:3], float("inf")
    assert spell(singles, 3, scores, "38") is None  # every piece must be covered ...
    ends = ([0.0, 0.5, inf, inf], [inf, inf, 1.0, 0.0])  # ... unless the search may leave out an end mark
    scores[1, 3], scores[2, 8] = -0.1, -0.1
    assert spell(singles, 3, scores, "38", ends) == [1, 2]  # piece 0 left out at 0.5
    ends, scores[1, 8] = ([0.0, 5.0, inf, inf], [inf, inf, 1.0, 0.0]), -1.0
    assert spell(singles, 3, scores, "38", ends) == [0, 1]  # piece 2 left out at 1.0


def test_a_drawn_number_is_spelled_by_the_reader_and_its_other_cuts_are_no_digit():
    cut = cut_into_candidates(np.asarray(number_image("17", gap=2)))
    assert cut.segmentation.count == 4  # the 1, and the 7 cut in three
    model, _ = load_predict_model(READER)
    scores = scores_of(cut.segmentation, cut.runs, candidate_log_probs(model, cut.inputs))
    path = spell(cut.runs, 4, scores, "17")
    assert [cut.runs[index] for index in path] == [(0, 1), (1, 4)]
    targets = candidate_targets(cut.runs, piece_ink(cut.segmentation, cut.mask), path, "17", NOT_A_DIGIT)
    assert [targets[index] for index in path] == [1, 7]
    assert targets[cut.runs.index((0, 4))] == NOT_A_DIGIT  # the 1 and the 7 as one digit
    assert targets[cut.runs.index((1, 2))] == NOT_A_DIGIT  # a sliver of the 7
    assert targets[cut.runs.index((2, 4))] == 7  # the 7 without the sliver the path gave it: still a 7
    assert targets[cut.runs.index((0, 2))] == 1  # the 1 with that sliver (as --cuts labels fragments)
    assert spell(cut.runs, 4, scores, "17777") is None  # five digits in four pieces


def test_numbers_runs_resume_bit_identically_and_refuse_other_numbers(tiny_mnist, tmp_path):
    folder = numbers_folder(tmp_path / "numbers", [*TRAIN_ROWS, ("1", "111")])
    config = TrainConfig(
        epochs=2,
        batch_size=32,
        data_dir=str(tiny_mnist),
        checkpoint_dir=str(tmp_path),
        numbers=(str(folder),),
    )
    straight = fit(config, run_outputs=False)
    reference = torch.load(straight.checkpoint, weights_only=True)
    assert reference["numbers"]["count"] == len(TRAIN_ROWS)
    assert reference["numbers"]["unspellable"] == 1  # "111" written as one stroke: counted, not learned
    assert reference["numbers"]["aligned_epoch"] == 1

    final, kept = stop_and_resume(config, tmp_path, "numbers")  # 600 / (32 - 8) = 25 steps: mid-epoch 2
    assert all(torch.equal(final[key], reference["model"][key]) for key in final)

    plain = fit(config.with_changes(numbers=()), run_outputs=False)
    plain_model = torch.load(plain.checkpoint, weights_only=True)["model"]
    assert not all(torch.equal(plain_model[key], reference["model"][key]) for key in plain_model)

    from lenet_cli.training import number_cuts

    real_scores = number_cuts.scores_of
    with pytest.MonkeyPatch.context() as patch:  # a reader that scores its cuts otherwise (another version)
        patch.setattr(number_cuts, "scores_of", lambda *args: real_scores(*args) - 1.0)
        with pytest.raises(Exception, match=r"the reader cuts the numbers in .* differently from when"):
            fit(config, resume_from=kept, run_outputs=False)

    number_image("41").save(folder / "n00.png")  # the folder changed since the run stopped
    with pytest.raises(
        Exception, match=rf"the numbers in {folder} have changed since .*stopped.pt was saved"
    ):
        fit(config, resume_from=kept, run_outputs=False)


def test_teaching_the_shipped_reader_numbers_then_reading_with_it(tiny_mnist, tmp_path):
    folder = numbers_folder(tmp_path / "numbers", [*TRAIN_ROWS[:4], ("1", "111")])
    result = invoke(
        "train",
        "--init",
        "reader",
        "--numbers",
        folder,
        "--epochs",
        1,
        "--batch-size",
        32,
        "--data-dir",
        tiny_mnist,
        "--checkpoint-dir",
        tmp_path / "runs",
    )
    assert result.exit_code == 0, result.output
    checkpoint = tmp_path / "runs" / "run-1" / "last.pt"
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["init"]["path"] == str(READER)
    pieces = saved["numbers"]["pieces"]
    lines = result.stdout.splitlines()
    assert f"Starting from the weights of {READER}" in result.stdout.replace("\n", "")
    assert (
        f"Your numbers: 4 from {folder} ({pieces} candidate pieces), 20 pieces in every batch, augmented; "
        "each label spelled through its cuts by the model at every epoch's start"
    ) in " ".join(lines)
    assert (
        f"1 numbers cannot be spelled through the reader's cuts and are left out: {folder / 'n04.png'} "
        "(3 digits to spell, 1 piece cut)"
    ) in " ".join(lines)
    shown = invoke("summary", checkpoint)
    row = [line for line in shown.stdout.splitlines() if "Your numbers" in line]
    assert len(row) == 1 and row[0].startswith("│ Your numbers  │ 4 from /")  # wrapped: the path is long
    expected = f"4 from {folder} (1 unspellable left out), sha256 {saved['numbers']['sha256'][:12]}…"
    assert squashed(expected) in squashed(shown.stdout)  # the table wraps the long row
    read = invoke("read", "-c", checkpoint, folder / "n00.png", "--json")
    assert read.exit_code == 0, read.output
    assert json.loads(read.stdout)["readings"][0]["number"].isdigit()


def test_evaluate_numbers_without_a_checkpoint_reads_as_lenet_read(tmp_path):
    folder = numbers_folder(tmp_path / "numbers", [("17", "17"), ("40", "41"), ("104", "104"), ("7", "1")])
    evaluated = invoke("evaluate", "--numbers", folder, "--json")
    assert evaluated.exit_code == 0, evaluated.output
    assert evaluated.stderr.startswith("Reading with the model shipped for reading numbers")
    document = json.loads(evaluated.stdout)
    assert document["checkpoint"] == str(READER)
    read = invoke("read", *sorted(folder.glob("*.png")), "--json")
    readings = {Path(r["path"]).name: r["number"] for r in json.loads(read.stdout)["readings"]}
    wrong = {Path(m["path"]).name: m["read"] for m in document["mistakes"]}
    labels = {"n00.png": "17", "n01.png": "41", "n02.png": "104", "n03.png": "1"}
    assert {name: wrong.get(name, label) for name, label in labels.items()} == readings
    assert document["exact"] == sum(readings[name] == label for name, label in labels.items())

    missing = invoke("evaluate")
    assert missing.exit_code == 2
    assert missing.stderr == "Error: Missing argument 'CHECKPOINT'.\n"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("no labels", "{folder} has no labels.csv (one `file,label` row per image, the label the digits)"),
        (
            "letter",
            "{folder}/labels.csv, line 3: expected `file,label` with the label's digits only",
        ),
        ("empty", "cannot train on {folder}/n00.png: the file is empty; fix it or remove it from labels.csv"),
        ("missing", "cannot train on {folder}/gone.png: no such file (listed in {folder}/labels.csv)"),
    ],
)
def test_bad_numbers_folders_get_one_clear_line(tiny_mnist, tmp_path, damage, message):
    folder = numbers_folder(tmp_path / "numbers", TRAIN_ROWS[:2])
    labels = folder / "labels.csv"
    if damage == "no labels":
        labels.unlink()
    elif damage == "letter":
        labels.write_text("file,label\nn00.png,17\nn01.png,4O\n")
    elif damage == "empty":
        (folder / "n00.png").write_bytes(b"")
    else:
        labels.write_text(labels.read_text() + "gone.png,3\n")
    result = invoke(
        "train", "--numbers", folder, "--data-dir", tiny_mnist, "--checkpoint-dir", tmp_path / "runs"
    )
    assert result.exit_code == 1
    assert result.stderr == "Error: " + message.format(folder=folder) + "\n"
    assert not (tmp_path / "runs").exists()


def test_numbers_need_digits(tmp_path):
    folder = numbers_folder(tmp_path / "numbers", TRAIN_ROWS[:1])
    result = invoke(
        "train", "--numbers", folder, "--dataset", "fashion-mnist", "--data-dir", tmp_path / "none"
    )
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: --numbers learns digits; it works with --dataset mnist or usps, not fashion-mnist\n",
    )


def test_every_aligned_piece_is_drawn_equally_often(tmp_path):
    from lenet_cli.formats.checkpoint import load_model
    from lenet_cli.training.number_cuts import cut_numbers
    from lenet_cli.training.number_pool import OwnNumbers

    folder = numbers_folder(tmp_path / "numbers", [*TRAIN_ROWS, ("17", "71")])  # one label wrong
    numbers = OwnNumbers(cut_numbers([folder]), (str(folder),), 8, 0, torch.device("cpu"))
    numbers.follow(load_model(READER)[0])
    plan = numbers.epoch_plan(0, steps=40)
    targets = plan.labels.numpy()
    drawn = np.bincount(plan.indices.flatten().numpy(), minlength=len(targets))
    for pool in (targets >= 0) & (targets < NOT_A_DIGIT), targets == NOT_A_DIGIT:
        assert pool.any()
        counts = drawn[pool]  # the pieces of the misread number no more often than the others
        assert counts.max() - counts.min() <= 1
    assert drawn[targets < 0].sum() == 0  # the candidates left out are never drawn
