"""How fast `lenet explain` is: the whole process for one image, and the page's Inside update.

    flock -x /tmp/lenet-cpu.lock python bench/predict/explain_speed.py [--runs 7] [--requests 60]

1. `lenet explain one.png` as a whole process (median of --runs): occlusion, the default, on the numpy
   model, and `--method gradient`, which imports torch; beside `lenet predict one.png` (no torch either)
   and `python -c "import torch"` in the same run: the floor torch sets for the gradient methods.
2. The page's update: a `lenet serve` process (its defaults, the shipped model); the page's drawing (a
   280x280 canvas PNG, bench/drawing.py's pen) posted to /explain as the page posts it, one at a time,
   --requests times: p50 and p90 of the round trip, for each attribution method, and /predict's beside it.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/drawing.py
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))  # tests/helpers.py's start_serve

from drawing import draw_digit  # noqa: E402
from helpers import start_serve  # noqa: E402


def whole_process(command: list[str], runs: int) -> float:
    """Median seconds of `command`, run `runs` times (after one run to warm the file cache)."""
    times = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env={**os.environ, "NO_COLOR": "1"})
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def page_drawing() -> bytes:
    """A digit as the page sends it: its 280x280 canvas as a PNG."""
    image = draw_digit(7, random.Random(32)).convert("L").resize((280, 280))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def round_trips(url: str, path: str, body: bytes, count: int) -> tuple[float, float]:
    """(p50, p90) milliseconds of `count` posts of `body`, one after another (after 5 to warm up)."""
    times = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for index in range(count + 5):
            started = time.perf_counter()
            answer = client.post(path, content=body, headers={"Content-Type": "image/png"})
            answer.raise_for_status()
            if index >= 5:
                times.append(1000 * (time.perf_counter() - started))
    quantiles = statistics.quantiles(times, n=10)
    return statistics.median(times), quantiles[8]


def in_browser(url: str) -> str:
    """Draw digits on the served page in Chromium with the Inside view open, as tests/test_page.py does;
    the page records each update's time from the drawing's change to its maps painted (insideTimes), and
    its parts (insidePhases)."""
    from test_page import CHROMIUM, STROKES, draw, sync_playwright

    if sync_playwright is None:
        return "(skipped: no playwright)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 900, "height": 1400})
        page.goto(url)
        page.wait_for_function("document.getElementById('model').textContent.includes('test accuracy')")
        page.click("#inside summary")
        for _ in range(4):
            for strokes in STROKES.values():
                page.click("#clear")
                draw(page, strokes)
                page.wait_for_timeout(300)
        times, phases = page.evaluate("[window.insideTimes, window.insidePhases]")
        browser.close()
    quantiles = statistics.quantiles(times, n=10)
    parts = ("waiting", "encoding", "server", "parsing", "painting")
    medians = ", ".join(
        f"{name} {statistics.median(p[i] for p in phases):.1f}" for i, name in enumerate(parts)
    )
    return (
        f"{statistics.median(times):.1f} ms / {quantiles[8]:.1f} ms over {len(times)} updates\n"
        f"  medians of its parts, ms: {medians}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--requests", type=int, default=60)
    args = parser.parse_args()
    lenet = [sys.executable, "-m", "lenet_cli"]
    with tempfile.TemporaryDirectory() as folder:
        image = Path(folder) / "one.png"
        image.write_bytes(page_drawing())
        print("whole process, median of", args.runs)
        for name, command in (
            ("python -c 'import torch'", [sys.executable, "-c", "import torch"]),
            ("lenet predict one.png", [*lenet, "predict", str(image)]),
            ("lenet explain one.png (occlusion, numpy)", [*lenet, "explain", str(image)]),
            (
                "lenet explain one.png --method gradient",
                [*lenet, "explain", str(image), "--method", "gradient"],
            ),
        ):
            print(f"  {name:<42} {whole_process(command, args.runs):.2f} s", flush=True)
        process, url = start_serve(["--workers", "1"], Path(folder))
        try:
            body = page_drawing()
            print(f"page update (POST of the canvas, {len(body):,} bytes, one at a time), p50 / p90")
            for name, path in (
                ("/predict?top_k=10&include_input=true", "/predict?top_k=10&include_input=true"),
                ("/explain?method=gradient (the page's)", "/explain?method=gradient"),
                ("/explain?method=ig", "/explain?method=ig"),
                ("/explain (occlusion)", "/explain"),
            ):
                p50, p90 = round_trips(url, path, body, args.requests)
                print(f"  {name:<42} {p50:6.1f} ms / {p90:6.1f} ms", flush=True)
            print(f"in Chromium: from a stroke's change to its maps on the page, p50 / p90 {in_browser(url)}")
        finally:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
