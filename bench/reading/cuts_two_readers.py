"""A labelled numbers folder read by the shipped reader and by a checkpoint through the same cuts (each field
cut once, as `lenet read` cuts it): how many each reads exactly, how many labels some path through the
cuts can spell, and how many candidate digits the cuts offer (what the forward pass costs). What changes
to the cutting were measured with (docs/performance.md, "Register cells: linked and small digits").

    OMP_NUM_THREADS=1 python bench/reading/cuts_two_readers.py FOLDER CHECKPOINT [--json OUT]

With --json, each image's label and both readings (None: nothing read), to compare two versions' cuts.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from lenet_cli.core.errors import ImageError
from lenet_cli.data.number_folders import load_labels, read_number_image
from lenet_cli.formats.shipped import reading_model
from lenet_cli.images.field_cuts import cut_into_candidates
from lenet_cli.inference.alignment import spell
from lenet_cli.inference.fast_predict import load_predict_model
from lenet_cli.inference.number_path import best_path
from lenet_cli.inference.numbers import candidate_log_probs, scores_of
from lenet_cli.training.number_cuts import end_costs


def reading(model, cut) -> str | None:
    scores = scores_of(cut.segmentation, cut.runs, candidate_log_probs(model, cut.inputs))
    try:
        path = best_path(cut.segmentation, cut.runs, scores, None)
    except ImageError:
        return None
    return "".join(str(int(scores[index].argmax())) for index in path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--json", type=Path, help="write each image's label and readings here")
    args = parser.parse_args()
    models = {
        "shipped": load_predict_model(reading_model(None)[0])[0],
        "taught": load_predict_model(reading_model(str(args.checkpoint))[0])[0],
    }
    rows = load_labels(args.folder)
    results, right, spellable, candidates = {}, dict.fromkeys(models, 0), 0, 0
    for path, label in rows:
        result: dict[str, str | None] = {"label": label} | dict.fromkeys(models)
        try:
            cut = cut_into_candidates(read_number_image(path))
        except ImageError:
            results[path.name] = result
            continue
        candidates += len(cut.runs)
        zero = np.zeros((len(cut.runs), 10))
        spellable += (
            spell(cut.runs, cut.segmentation.count, zero, label, end_costs(cut.segmentation)) is not None
        )
        for name, model in models.items():
            result[name] = reading(model, cut)
            right[name] += result[name] == label
        results[path.name] = result
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(
        f"{args.folder}: shipped reader {right['shipped']}/{len(rows)} right, {args.checkpoint} "
        f"{right['taught']}/{len(rows)}; {spellable} labels spellable through the cuts; "
        f"{candidates:,} candidate digits"
    )


if __name__ == "__main__":
    main()
