"""A person's own digits: labelled folders in evaluate, and teaching lenet their style in train."""

import json
import random
import shutil

import pytest
import torch
from drawing import draw_digit
from helpers import digits_in_class_folders, interrupt_at, invoke
from PIL import Image

from lenet_cli.core.config import TrainConfig
from lenet_cli.core.distributed import Cluster
from lenet_cli.data.datasets import load_split
from lenet_cli.data.folders import read_labelled_folders
from lenet_cli.formats.checkpoint import resume_config
from lenet_cli.training.fit import TrainingInterrupted, fit
from lenet_cli.training.own_images import EpochExtras, random_affine

DIGITS = [str(d) for d in range(10)]


def drawn_folder(root, per_class, seed):
    """DIR/<digit>/<n>.png of small hand-drawn-style digits (a flagged 1, a barred 7 among them)."""
    rng = random.Random(seed)
    for digit in range(10):
        (root / str(digit)).mkdir(parents=True)
        for index in range(per_class):
            image = draw_digit(digit, rng, canvas=(160, 140), height_range=(70, 120), pen_range=(4, 7))
            image.save(root / str(digit) / f"{digit}-{index:02d}.png")
    return root


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, tiny_mnist):
    """30 test digits as PNGs in class folders, with the clutter real folders have."""
    root = tmp_path_factory.mktemp("labelled")
    test = load_split("mnist", tiny_mnist, "test")
    digits_in_class_folders(root, test.images[:30], test.labels[:30], name="{index:03d}")
    (root / "README.md").write_text("my digits")
    (root / "LICENSE").write_text("mine")
    (root / "3" / ".hidden.png").write_bytes(b"\x89PNG")
    (root / "3" / "notes.txt").write_text("written on a train")
    (root / "5" / "broken.png").write_bytes(b"not a png")
    return root


def test_labelled_folder_is_read_with_clutter_skipped_and_broken_images_listed(labelled):
    images = read_labelled_folders([labelled], DIGITS)
    assert len(images) == 30
    assert images.skipped == 4  # README.md, LICENSE, .hidden.png, notes.txt
    assert images.errors == [
        (str(labelled / "5" / "broken.png"), 5, "cannot decode image (UnidentifiedImageError)")
    ]
    assert images.images.shape == (30, 28, 28) and images.images.dtype == torch.uint8
    assert [int(label) for label in images.labels] == [int(path.split("/")[-2]) for path in images.paths]


def test_evaluate_images_agrees_with_predict_on_the_same_files(trained_checkpoint, labelled):
    evaluated = invoke("evaluate", trained_checkpoint, "--images", labelled, "--json")
    assert evaluated.exit_code == 1  # the broken image
    assert evaluated.stderr == "Error: 1 of 31 images could not be read\n"
    report = json.loads(evaluated.stdout)
    assert report["total"] == 30
    assert report["errors"] == [
        {
            "path": str(labelled / "5" / "broken.png"),
            "label": 5,
            "error": "cannot decode image (UnidentifiedImageError)",
        }
    ]
    predicted = {}
    for class_folder in sorted(p for p in labelled.iterdir() if p.is_dir()):
        result = invoke("predict", class_folder, "-c", trained_checkpoint, "--json")
        for entry in json.loads(result.stdout)["predictions"]:
            if "label" in entry:
                predicted[entry["path"]] = (int(class_folder.name), entry["label"], entry["confidence"])
    assert len(predicted) == 30
    correct = sum(truth == label for truth, label, _ in predicted.values())
    assert report["correct"] == correct
    assert report["accuracy"] == pytest.approx(correct / 30)
    wrong = {m["path"]: (m["label"], m["predicted"], m["confidence"]) for m in report["misclassified"]}
    assert wrong.keys() == {path for path, (truth, label, _) in predicted.items() if truth != label}
    for path, (truth, label, confidence) in wrong.items():
        assert predicted[path][:2] == (truth, label)
        assert confidence == pytest.approx(predicted[path][2], abs=1e-6)
    confidences = [m["confidence"] for m in report["misclassified"]]
    assert confidences == sorted(confidences, reverse=True)  # the most confident mistakes first


def test_evaluate_images_text_lists_mistakes_and_errors(trained_checkpoint, labelled):
    result = invoke("evaluate", trained_checkpoint, "--images", labelled, "--show")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"Evaluating {trained_checkpoint} on 30 images in {labelled} (4 other files skipped)"
    assert lines[1].startswith("Accuracy: ")
    assert "Could not be read: 1" in result.stdout
    assert "5/broken.png" in result.stdout


def test_evaluate_plots_for_a_folder_and_for_the_test_set(trained_checkpoint, labelled, tiny_mnist, tmp_path):
    for name, source in (("folder", ["--images", labelled]), ("test-set", ["--data-dir", tiny_mnist])):
        result = invoke("evaluate", trained_checkpoint, *source, "--plots", tmp_path / name)
        assert result.exit_code == (1 if name == "folder" else 0), result.output
        for picture in ("confusion_matrix.png", "misclassified.png"):
            with Image.open(tmp_path / name / picture) as image:
                assert image.format == "PNG" and image.size[0] >= 500


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("unknown-class", "Error: {root}/seven is not a class of the dataset; class folders are named 0-9\n"),
        (
            "no-classes",
            "Error: {root} has no class folders; expected {root}/<class>/<image> (e.g. {root}/3/a.png)\n",
        ),
        ("empty-classes", "Error: no images found in {root} (expected <class>/<image> files)\n"),
        ("missing", "Error: image folder {root} does not exist\n"),
        (
            "all-broken",
            "Error: none of the 1 images could be read (first: {root}/3/a.png: cannot decode image "
            "(UnidentifiedImageError))\n",
        ),
    ],
)
def test_bad_labelled_folders(trained_checkpoint, tmp_path, layout, message):
    root = tmp_path / "digits"
    if layout != "missing":
        (root / "3").mkdir(parents=True)
    if layout == "unknown-class":
        (root / "seven").mkdir()
        Image.new("L", (28, 28)).save(root / "3" / "a.png")
    if layout == "all-broken":
        (root / "3" / "a.png").write_bytes(b"not a png")
    if layout == "no-classes":
        shutil.rmtree(root / "3")
        (root / "a.png").write_bytes(b"")
    result = invoke("evaluate", trained_checkpoint, "--images", root)
    assert result.exit_code == 1
    assert result.stderr == message.format(root=root)


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    root = tmp_path_factory.mktemp("drawn")
    return drawn_folder(root / "teach", 8, seed=11), drawn_folder(root / "held", 8, seed=12)


def test_teaching_with_init_and_images_learns_the_new_style(trained_checkpoint, tiny_mnist, drawn, tmp_path):
    teach, held = drawn
    before = json.loads(invoke("evaluate", trained_checkpoint, "--images", held, "--json").stdout)["accuracy"]
    result = invoke(
        "train",
        "--init",
        trained_checkpoint,
        "--images",
        teach,
        "--epochs",
        6,
        "--image-share",
        0.5,
        "--lr",
        3e-3,
        "--data-dir",
        tiny_mnist,
        "--checkpoint-dir",
        tmp_path,
        "--val-size",
        100,
    )
    assert result.exit_code == 0, result.output
    assert f"Starting from the weights of {trained_checkpoint}" in result.stdout
    assert f"Your images: 80 from {teach}, 32 in every batch, augmented" in result.stdout
    assert "500 training, 100 validation" in result.stdout and "val_acc" in result.stdout
    assert (tmp_path / "run-1" / "best.pt").exists()
    after = json.loads(invoke("evaluate", tmp_path / "run-1" / "last.pt", "--images", held, "--json").stdout)
    assert after["accuracy"] > before + 0.3, (before, after["accuracy"])
    saved = torch.load(tmp_path / "run-1" / "last.pt", weights_only=True)
    assert saved["init"]["path"] == str(trained_checkpoint)
    assert saved["images"]["count"] == 80 and len(saved["images"]["sha256"]) == 64
    assert saved["config"]["images"] == [str(teach)]


def test_resume_with_images_is_bit_identical_and_refuses_other_images(tiny_mnist, drawn, tmp_path):
    teach, held = drawn
    config = TrainConfig(
        epochs=2, batch_size=32, data_dir=str(tiny_mnist), checkpoint_dir=str(tmp_path), images=(str(teach),)
    )
    straight = fit(config, run_outputs=False)
    with pytest.raises(TrainingInterrupted) as stopped:  # 600 / (32 - 8) = 25 steps per epoch: mid-epoch 2
        fit(config, on_step=interrupt_at(30), run_outputs=False)
    checkpoint = stopped.value.checkpoint
    with pytest.raises(Exception, match=r"--images cannot change when resuming"):
        resume_config(checkpoint, {"images": (str(held),)})
    resumed = fit(resume_config(checkpoint, {}), resume_from=checkpoint, run_outputs=False)
    final = torch.load(resumed.checkpoint, weights_only=True)["model"]
    reference = torch.load(straight.checkpoint, weights_only=True)["model"]
    assert all(torch.equal(final[key], reference[key]) for key in reference)

    changed = tmp_path / "changed"
    shutil.copytree(teach, changed)
    stopped_copy = tmp_path / "stopped.pt"
    shutil.copy(checkpoint, stopped_copy)
    shutil.copy(changed / "7" / "7-00.png", changed / "1" / "1-00.png")  # the folder's content changes
    with pytest.raises(Exception, match="have changed since .* was saved"):
        fit(config.with_changes(images=(str(changed),)), resume_from=stopped_copy, run_outputs=False)


def test_each_step_mixes_a_fixed_share_of_augmented_own_images():
    images = torch.zeros(5, 28, 28, dtype=torch.uint8)
    images[:, 10:18, 12:16] = 255
    transforms = random_affine(12, torch.Generator().manual_seed(0)).reshape(3, 4, 2, 3)
    extras = EpochExtras(
        images, torch.arange(5), torch.tensor([[0, 1, 2, 3], [4, 0, 1, 2], [3, 4, 0, 1]]), transforms
    )
    inputs, labels = extras.batch(1, Cluster())
    assert inputs.shape == (4, 1, 28, 28) and labels.tolist() == [4, 0, 1, 2]
    assert 0 <= float(inputs.min()) and float(inputs.max()) <= 1
    assert not torch.equal(inputs[1, 0], images[0].float() / 255)  # transformed
    assert (
        abs(float(inputs.sum()) / float(images[:4].float().sum() / 255) - 1) < 0.4
    )  # the digit stays in view
    shares = [extras.batch(1, Cluster(rank, 2))[1].tolist() for rank in range(2)]
    assert shares == [[4, 1], [0, 2]]  # under torchrun each rank takes its half


def test_class_folders_by_index_or_name():
    from lenet_cli.data.datasets import class_names
    from lenet_cli.data.folders import class_index

    fashion = class_names("fashion-mnist")
    assert [
        class_index(name, fashion) for name in ("7", "Sneaker", "sneaker", "T-shirt_top", "ankle_boot")
    ] == [
        7,
        7,
        7,
        0,
        9,
    ]
    assert class_index("10", fashion) is None and class_index("boots", fashion) is None
    assert class_index("seven", DIGITS) is None and class_index("7", DIGITS) == 7
