"""A slow read never delays a predict: `lenet serve` answering /predict while clients flood /read.

The slow image is issue 31's broken-stroke field: 150 short vertical strokes, each broken in two by a
1-2 px gap (a small PNG that made a read take seconds before the cutting was bounded). One server
(`lenet serve`, its defaults, the shipped model, on loopback) takes, in turn:
1. alone: one client posting a 28x28 digit to /predict, `--predicts` times, one after another;
2. flooded: the same, while `--readers` clients post the slow image to /read in a loop.
Reported per phase: predicts answered (a predict not answered within `--timeout` counts as unanswered),
p50/p99/max latency, the flooded p99 as a ratio of the alone p99 (the same run, so comparable on a busy
machine), and the reads done meanwhile with their statuses and p50.

    python bench/serving/read_flood.py                 # 100 predicts, 4 readers
    python bench/serving/read_flood.py --json          # one JSON document
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import httpx
from PIL import Image, ImageDraw


def broken_strokes(count: int = 150, seed: int = 31) -> bytes:
    """Issue 31's field: `count` short vertical strokes, each broken in two by a 1-2 px gap."""
    rng = random.Random(seed)
    image = Image.new("L", (8 + 5 * count, 28), 255)
    draw = ImageDraw.Draw(image)
    for index in range(count):  # 2 px wide, 17 px tall, 5 px apart
        left, gap_at, gap = 4 + 5 * index, rng.randint(8, 16), rng.randint(1, 2)
        draw.rectangle((left, 4, left + 1, gap_at - 1), fill=0)
        draw.rectangle((left, gap_at + gap, left + 1, 20), fill=0)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def digit() -> bytes:
    image = Image.new("L", (28, 28), 0)
    image.paste(255, (12, 4, 16, 24))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(port: int, workers: int | None, home: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "lenet_cli", "serve", "--port", str(port)]
    if workers is not None:
        command += ["--workers", str(workers)]
    server = subprocess.Popen(command, cwd=home, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = server.stdout.readline()
    if not line.startswith("Serving "):
        server.kill()
        raise SystemExit(f"lenet serve did not start: {line!r}")
    return server


def predicts(url: str, count: int, timeout: float) -> tuple[list[float], int]:
    """Latencies (ms) of `count` predicts one after another, and how many got no answer in time."""
    body, latencies, unanswered = digit(), [], 0
    with httpx.Client(base_url=url, timeout=timeout) as client:
        for _ in range(count):
            started = time.perf_counter()
            try:
                answer = client.post("/predict", content=body)
                answer.raise_for_status()
            except httpx.HTTPError:
                unanswered += 1
                continue
            latencies.append(1000 * (time.perf_counter() - started))
    return latencies, unanswered


def flood(url: str, body: bytes, stop: threading.Event, statuses: list[int], seconds: list[float]) -> None:
    """Post `body` to /read until told to stop."""
    with httpx.Client(base_url=url, timeout=120) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                statuses.append(client.post("/read", content=body).status_code)
            except httpx.HTTPError:
                statuses.append(0)
            seconds.append(time.perf_counter() - started)


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 1)


def summary(latencies: list[float], unanswered: int) -> dict:
    return {
        "answered": len(latencies),
        "unanswered": unanswered,
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": round(max(latencies), 1) if latencies else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--predicts", type=int, default=100)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds a predict may take")
    parser.add_argument("--workers", type=int, default=None, help="lenet serve --workers (default: its own)")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    slow = broken_strokes()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as home:
        server = start_server(port, options.workers, home)
        try:
            predicts(url, 5, options.timeout)  # warm
            alone = summary(*predicts(url, options.predicts, options.timeout))
            stop, statuses, read_seconds = threading.Event(), [], []
            readers = [
                threading.Thread(target=flood, args=(url, slow, stop, statuses, read_seconds))
                for _ in range(options.readers)
            ]
            for reader in readers:
                reader.start()
            time.sleep(1.0)  # the reads are under way
            flooded = summary(*predicts(url, options.predicts, options.timeout))
            stop.set()
            for reader in readers:
                reader.join(timeout=180)
        finally:
            server.terminate()
            server.wait(timeout=60)
    report = {
        "slow_image_bytes": len(slow),
        "cpus": os.cpu_count(),
        "alone": alone,
        "flooded": flooded,
        "p99_ratio": round(flooded["p99_ms"] / alone["p99_ms"], 2)
        if flooded["p99_ms"] and alone["p99_ms"]
        else None,
        "reads": {
            "done": len(statuses),
            "statuses": {str(code): statuses.count(code) for code in sorted(set(statuses))},
            "p50_s": round(statistics.median(read_seconds), 2) if read_seconds else None,
        },
    }
    if options.json:
        print(json.dumps(report))
        return
    print(f"slow image: {report['slow_image_bytes']} bytes; {options.readers} clients flooding /read")
    for name in ("alone", "flooded"):
        phase = report[name]
        print(
            f"{name:8} predicts answered {phase['answered']}/{options.predicts} "
            f"(unanswered within {options.timeout:g} s: {phase['unanswered']}), "
            f"p50 {phase['p50_ms']} ms, p99 {phase['p99_ms']} ms, max {phase['max_ms']} ms"
        )
    print(f"flooded p99 / alone p99: {report['p99_ratio']}")
    print(f"reads meanwhile: {report['reads']}")


if __name__ == "__main__":
    main()
