"""What a scan adds to a written field, for the reader's cut pool (cut_data.py): ruled lines (faint, broken,
slanted a little, some through the digits), a cell's vertical rule, a black band where the scan ran past
the page, and speckle. None of it belongs to a digit: the reader's clean-up must take it away, and the
network learns from what the clean-up leaves (a stroke that a line crossed, a band's edge). Seeded."""

from __future__ import annotations

import numpy as np

RULED = 0.35  # the share of fields with ruled lines across
VERTICAL = 0.15  # ... with a vertical rule near an end
BAND = 0.15  # ... with a scan band along an end
SPECKLE = 0.25  # ... with speckle


def scan_marks(
    grey: np.ndarray, paper: float, margin: int, height: float, rng: np.random.Generator
) -> np.ndarray:
    """`grey` (float, dark ink on `paper`) with scan marks drawn in; `margin` pixels at each end are clear
    of the digits, whose band is about `height` tall in the middle."""
    grey = grey.copy()
    rows, cols = grey.shape
    if rng.random() < RULED:
        middle = rows / 2
        for row in rng.uniform(middle - 0.7 * height, middle + 0.7 * height, int(rng.integers(1, 4))):
            columns = np.arange(cols)
            line_rows = np.round(row + rng.uniform(-0.02, 0.02) * (columns - cols / 2)).astype(np.int64)
            level = paper - rng.uniform(40, 130)
            drawn = (rng.random(cols) > 0.05) & (line_rows >= 0) & (line_rows < rows)
            for thickness in range(int(rng.integers(1, 3))):
                visible = drawn & (line_rows + thickness < rows)
                spot = (line_rows[visible] + thickness, columns[visible])
                grey[spot] = np.minimum(grey[spot], level)
    if rng.random() < VERTICAL:
        column = int(rng.integers(1, max(2, margin // 2)))
        column = column if rng.random() < 0.5 else cols - 1 - column
        grey[:, column] = np.minimum(grey[:, column], paper - rng.uniform(40, 130))
    if rng.random() < BAND:
        width = int(rng.integers(1, max(2, margin - 2)))
        band = slice(0, width) if rng.random() < 0.5 else slice(cols - width, cols)
        grey[:, band] = rng.uniform(0, 40)
    if rng.random() < SPECKLE:
        spots = rng.random(grey.shape) < rng.uniform(0.001, 0.005)
        grey[spots] = np.minimum(grey[spots], paper - rng.uniform(60, 160))
    return grey
