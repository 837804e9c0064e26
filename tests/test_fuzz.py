"""Damaged images of every supported kind: each is a digit or an error row, never a traceback or a hang."""

import json
import random

# bench/predict/fuzz_images.py: the longer run is there
from fuzz_images import KINDS, base_files, fuzz, mutate
from helpers import answers_within, invoke


def test_hundreds_of_mutated_images_give_a_digit_or_an_image_error():
    with answers_within(30):
        outcomes = fuzz(count=600, seed=0)
    assert sum(outcomes.values()) == 600
    assert outcomes["digit"] > 100 and len(outcomes) > 3  # both kinds of answer, and several kinds of error


def test_base_files_cover_every_kind_and_all_are_read(trained_checkpoint, tmp_path):
    files = base_files()
    assert len(files) == len(KINDS)
    for name, data in files:
        (tmp_path / f"{name}.img").write_bytes(data)
    result = invoke("predict", *sorted(tmp_path.iterdir()), "-c", trained_checkpoint, "--json")
    assert result.exit_code == 0, result.output


def test_predict_reports_mutated_files_as_rows(trained_checkpoint, tmp_path):
    rng = random.Random(7)
    files = base_files()
    for index in range(40):
        (_, data), (_, donor) = rng.choice(files), rng.choice(files)
        (tmp_path / f"{index:02d}.png").write_bytes(mutate(data, donor, rng)[1])
    with answers_within(30):
        result = invoke("predict", tmp_path, "-c", trained_checkpoint, "--json")
    rows = json.loads(result.stdout)["predictions"]
    assert len(rows) == 40 and all(("label" in row) != ("error" in row) for row in rows)
    failed = sum("error" in row for row in rows)
    assert result.exit_code == (1 if failed else 0)
    assert "Traceback" not in result.output
