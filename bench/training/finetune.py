"""Teaching lenet a person's handwriting: accuracy before and after `lenet train --init --images`.

    python bench/training/finetune.py BASE_CHECKPOINT --handwriting ../shared/data/handwriting \
        --data-dir ../shared/data/mnist [--shares 0.25] [--lrs 1e-3] [--seeds 0]

The labelled folder is split in two halves per class (even and odd files, by name). For each
setting, each half in turn is taught for one epoch and the *other* half is measured, so every
figure is on digits the model did not train on. Also measured after each run: the MNIST test set
and other people's digits (bench/drawing.py's hand-drawn set, 300 images in six forms), to see
what teaching one person's style costs everyone else.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from pathlib import Path
from statistics import mean

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: drawing.py, tutorial.py
from drawing import draw_digit, variant  # noqa: E402

from lenet_cli.core.config import TrainConfig  # noqa: E402
from lenet_cli.data.datasets import Split, class_names, load_split  # noqa: E402
from lenet_cli.data.folders import read_labelled_folders  # noqa: E402
from lenet_cli.formats.checkpoint import load_model  # noqa: E402
from lenet_cli.inference.evaluate import evaluate  # noqa: E402
from lenet_cli.training.fit import fit  # noqa: E402

DIGITS = class_names("mnist")


def split_halves(source: Path, scratch: Path) -> list[Path]:
    """Two labelled folders of symbolic links: the even and the odd files of each class."""
    halves = [scratch / "half-a", scratch / "half-b"]
    for class_folder in sorted(p for p in source.iterdir() if p.is_dir()):
        for index, image in enumerate(sorted(class_folder.iterdir())):
            target = halves[index % 2] / class_folder.name
            target.mkdir(parents=True, exist_ok=True)
            os.symlink(image.resolve(), target / image.name)
    return halves


def drawn_set(folder: Path, per_kind: int = 50, seed: int = 7) -> Split:
    rng = random.Random(seed)
    for kind in ("plain", "inverted", "alpha", "exif-rotated", "photo", "colour"):
        for index in range(per_kind):
            image, save_args = variant(draw_digit(index % 10, rng), kind, rng)
            target = folder / str(index % 10) / f"{kind}-{index:03d}.{'jpg' if kind == 'photo' else 'png'}"
            target.parent.mkdir(parents=True, exist_ok=True)
            image.save(target, **save_args)
    labelled = read_labelled_folders([folder], DIGITS)
    return Split(labelled.images, labelled.labels)


def accuracy_of(checkpoint: Path, split: Split) -> float:
    model, _ = load_model(checkpoint)
    return evaluate(model, split).accuracy


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--handwriting", type=Path, default=Path("../shared/data/handwriting"))
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("--shares", type=float, nargs="+", default=[0.25])
    parser.add_argument("--lrs", type=float, nargs="+", default=[None])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="lenet-finetune-"))
    halves = split_halves(args.handwriting, scratch)
    held = [read_labelled_folders([half], DIGITS) for half in halves]
    held_splits = [Split(labelled.images, labelled.labels) for labelled in held]
    drawn = drawn_set(scratch / "drawn")
    mnist_test = load_split("mnist", args.data_dir, "test")
    base = {
        "own": mean(accuracy_of(args.checkpoint, split) for split in held_splits),
        "mnist": accuracy_of(args.checkpoint, mnist_test),
        "drawn": accuracy_of(args.checkpoint, drawn),
    }
    print(f"{'setting':<32} {'own (held out)':>15} {'MNIST test':>11} {'drawn':>8}")
    print(
        f"{'before (the base checkpoint)':<32} {base['own']:>15.2%} {base['mnist']:>11.2%} {base['drawn']:>8.2%}"
    )
    for share in args.shares:
        for lr in args.lrs:
            own, mnist, others = [], [], []
            for seed in args.seeds:
                for taught, measured in ((0, 1), (1, 0)):
                    config = TrainConfig(
                        epochs=args.epochs,
                        data_dir=args.data_dir,
                        checkpoint_dir=str(scratch / "runs"),
                        seed=seed,
                        lr=lr,
                        images=(str(halves[taught]),),
                        image_share=share,
                        init=str(args.checkpoint),
                    )
                    result = fit(config, run_outputs=False)
                    own.append(accuracy_of(result.checkpoint, held_splits[measured]))
                    mnist.append(result.test.accuracy)
                    others.append(accuracy_of(result.checkpoint, drawn))
            setting = f"share {share:g}, lr {config.learning_rate:g}, {len(own)} runs"
            print(
                f"{setting:<32} {mean(own):>15.2%} {mean(mnist):>11.2%} {mean(others):>8.2%}"
                f"   (own: min {min(own):.2%}, max {max(own):.2%}; MNIST min {min(mnist):.2%})",
                flush=True,
            )


if __name__ == "__main__":
    main()
