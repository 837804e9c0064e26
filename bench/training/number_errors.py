"""Why numbers are misread: the cuts or the digits. For each image of a labelled numbers folder, read as
`lenet read` reads it, and for each misreading ask whether the label can be spelled through the cuts at all
(the forced alignment `lenet train --numbers` uses) and, if so, whether the reader took the label's cuts
(a digit misread) or other ones (more or fewer digits, or the same count cut elsewhere).

    python bench/training/number_errors.py CHECKPOINT|- FOLDER
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from lenet_cli.core.errors import ImageError
from lenet_cli.data.number_folders import load_labels
from lenet_cli.formats.shipped import reading_model
from lenet_cli.images.decode import read_grey
from lenet_cli.images.field_cuts import cut_into_candidates
from lenet_cli.inference.alignment import spell
from lenet_cli.inference.fast_predict import load_predict_model
from lenet_cli.inference.number_path import best_path
from lenet_cli.inference.numbers import candidate_log_probs, scores_of
from lenet_cli.training.number_cuts import end_costs


def why(model, path: Path, label: str) -> str:
    try:
        cut = cut_into_candidates(read_grey(path))
    except ImageError:
        return "not cut (no number found)"
    scores = scores_of(cut.segmentation, cut.runs, candidate_log_probs(model, cut.inputs))
    try:
        read_path = best_path(cut.segmentation, cut.runs, scores, None)
    except ImageError:
        return "no reading"
    read = "".join(str(int(scores[index].argmax())) for index in read_path)
    if read == label:
        return "right"
    forced = spell(cut.runs, cut.segmentation.count, scores, label, end_costs(cut.segmentation))
    if forced is None:
        return "wrong: the label cannot be spelled through the cuts"
    if [cut.runs[index] for index in forced] == [cut.runs[index] for index in read_path]:
        return "wrong: the label's cuts, a digit misread"
    more, fewer = len(read) > len(label), len(read) < len(label)
    shape = "more digits than" if more else "fewer digits than" if fewer else "as many digits as"
    return f"wrong: other cuts ({shape} the label)"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", help="a checkpoint, or - for the model shipped for reading")
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    model, _ = load_predict_model(reading_model(None if args.checkpoint == "-" else args.checkpoint)[0])
    counts = Counter(why(model, path, label) for path, label in load_labels(args.folder))
    total = sum(counts.values())
    for reason, count in counts.most_common():
        print(f"{count:6d}  {count / total:6.1%}  {reason}")


if __name__ == "__main__":
    main()
