"""Why numbers are misread: the cuts or the digits. For each image of a labelled numbers folder, read as
`lenet read` reads it, and for each misreading ask whether the label can be spelled through the cuts at all
(the forced alignment `lenet train --numbers` uses) and, if so, whether the reader took the label's cuts
(a digit misread) or other ones (more or fewer digits, or the same count cut elsewhere).

With --pictures DIR, each misread image is written there as a PNG (named by its group): the field as
scanned, the ink the reader kept with its pieces in alternating greys, the path read (boxes above) and the
label's forced path (boxes below), and the 28x28 inputs of both paths.

    python bench/training/number_errors.py CHECKPOINT|- FOLDER [--pictures DIR] [--limit N]
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np

from lenet_cli.core.errors import ImageError
from lenet_cli.data.number_folders import load_labels
from lenet_cli.formats.shipped import reading_model
from lenet_cli.images.decode import read_grey
from lenet_cli.images.field_cuts import cut_into_candidates
from lenet_cli.images.preprocess import save_png
from lenet_cli.images.resample import resample
from lenet_cli.inference.alignment import spell
from lenet_cli.inference.fast_predict import load_predict_model
from lenet_cli.inference.number_path import best_path
from lenet_cli.inference.numbers import candidate_log_probs, scores_of
from lenet_cli.training.number_cuts import end_costs


def why(model, path: Path, label: str, pictures: Path | None = None) -> tuple[str, str]:
    """The group of this image's reading, and what was read."""
    grey = read_grey(path)
    try:
        cut = cut_into_candidates(grey)
    except ImageError:
        return "not cut (no number found)", ""
    scores = scores_of(cut.segmentation, cut.runs, candidate_log_probs(model, cut.inputs))
    try:
        read_path = best_path(cut.segmentation, cut.runs, scores, None)
    except ImageError:
        return "no reading", ""
    read = "".join(str(int(scores[index].argmax())) for index in read_path)
    if read == label:
        return "right", read
    forced = spell(cut.runs, cut.segmentation.count, scores, label, end_costs(cut.segmentation))
    if forced is None:
        reason = "wrong: the label cannot be spelled through the cuts"
    elif [cut.runs[index] for index in forced] == [cut.runs[index] for index in read_path]:
        reason = "wrong: the label's cuts, a digit misread"
    else:
        more, fewer = len(read) > len(label), len(read) < len(label)
        shape = "more digits than" if more else "fewer digits than" if fewer else "as many digits as"
        reason = f"wrong: other cuts ({shape} the label)"
    if pictures is not None:
        group = reason.split("(")[-1].split(":")[-1].strip(" )").replace(" ", "-")
        name = f"{group}--{path.stem}--label{label}--read{read}.png"
        save_png(picture(grey, cut, read_path, forced or []), pictures / name)
    return reason, read


def picture(grey: np.ndarray, cut, read_path: list[int], forced: list[int]) -> np.ndarray:
    """The field, the pieces with both paths' boxes, and the two paths' inputs, stacked (uint8)."""
    pieces = cut.segmentation.labels
    height, width = pieces.shape
    field = resample(grey.astype(np.float32), (height, width), antialias=True)
    field = np.clip(field * (255 if field.max() <= 1 else 1), 0, 255)
    shaded = np.where(pieces > 0, np.where(pieces % 2 == 1, 255, 150), np.where(cut.mask, 60, 0))
    lanes = []
    for path, top in ((read_path, True), (forced, False)):
        lane = np.zeros((6, width))
        for index in path:
            box = cut.segmentation.span(*cut.runs[index])
            lane[1 if top else 4, box.left : box.right] = 255
            lane[:, box.left] = lane[:, box.right - 1] = 255
        lanes.append(lane)
    rows = [field, lanes[0], shaded, lanes[1]]
    for path in (read_path, forced):
        strip = np.zeros((28, width))
        inputs = [cut.inputs[index] for index in path]
        joined = (
            np.concatenate([np.pad(image, ((0, 0), (0, 2))) for image in inputs], axis=1) if inputs else strip
        )
        strip[:, : min(width, joined.shape[1])] = joined[:, :width]
        rows.append(np.full((2, width), 90))
        rows.append(strip)
    return np.concatenate(rows).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", help="a checkpoint, or - for the model shipped for reading")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--pictures", type=Path, help="write each misread image here as a PNG")
    parser.add_argument("--limit", type=int, help="the first N rows of the folder only")
    args = parser.parse_args()
    model, _ = load_predict_model(reading_model(None if args.checkpoint == "-" else args.checkpoint)[0])
    if args.pictures:
        args.pictures.mkdir(parents=True, exist_ok=True)
    rows = load_labels(args.folder)[: args.limit]
    counts = Counter(why(model, path, label, args.pictures)[0] for path, label in rows)
    total = sum(counts.values())
    for reason, count in counts.most_common():
        print(f"{count:6d}  {count / total:6.1%}  {reason}")


if __name__ == "__main__":
    main()
