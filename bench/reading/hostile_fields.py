"""How long `lenet read` takes (without torch, one thread) for fields built to make cutting slow, against an
ordinary 5-digit amount in the same run (issue 31: the broken-stroke field within 1 s of it, none over 1 s).

    OMP_NUM_THREADS=1 python bench/reading/hostile_fields.py

The fields are tests/test_field_hostile.py's; each is read from PNG bytes, five times, the median kept.
"""

from __future__ import annotations

import io
import statistics
import sys
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]

from drawing import draw_number  # noqa: E402
from test_field_hostile import hostile_fields  # noqa: E402

from lenet_cli.core.errors import ImageError  # noqa: E402
from lenet_cli.formats.shipped import READER  # noqa: E402
from lenet_cli.inference.fast_predict import load_predict_model  # noqa: E402
from lenet_cli.inference.numbers import read_source  # noqa: E402


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def timed(model, data: bytes) -> tuple[float, str]:
    times, outcome = [], ""
    for _ in range(5):
        start = time.perf_counter()
        try:
            outcome = read_source(model, data, "auto", None).number or ""
        except ImageError as error:
            outcome = f"refused: {error}"
        times.append(time.perf_counter() - start)
    return statistics.median(times), outcome


def main() -> None:
    model, _ = load_predict_model(READER)
    ordinary, _ = timed(model, png(draw_number("90210")[0]))
    print(f"an ordinary 5-digit amount: {ordinary * 1000:.0f} ms")
    for name, field in hostile_fields():
        data = png(Image.fromarray(field))
        seconds, outcome = timed(model, data)
        print(
            f"{name} ({len(data):,} bytes): {seconds * 1000:.0f} ms, +{(seconds - ordinary) * 1000:.0f} ms; {outcome[:70]}"
        )


if __name__ == "__main__":
    main()
