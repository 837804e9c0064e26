"""Teach from the page, played through the HTTP API as a person would, and measured.

    apt-get install wrk chromium
    python bench/serving/teach_page.py --data-dir ../shared/data/mnist --handwriting ../shared/data/handwriting

One writer (`--writer K`: the K-th block of 40 ids, 0 by default): the handwriting folder's writers are not labelled, but its files are every 13th of a source
whose writers filled whole sheets, so neighbouring ids are most likely one person's. The 40 lowest ids of
each class are taken as one writer's; 10 of each class (every fourth) are posted with /collect and the
other 30 of each class are that writer's other digits, read through /predict before and after teaching.

It starts `lenet serve MODEL --collect … --data-dir … --checkpoint-dir …` (the shipped model by default)
and measures: the writer's other digits before and after; the same 10 per class taught on the command line
(`lenet train --init MODEL --images POSTED --epochs 1`) for comparison; /predict throughput and latency
with wrk at 8 connections, with no teaching and while teaching; the wall time of teaching (under that load,
and again alone after Undo). Then a screenshot of the page after teaching (Chromium, Playwright).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from serve_load import LUA, free_port, wrk

from lenet_cli.formats.shipped import PRETRAINED

CLIENTS = 8  # wrk's connections, as a person's page and a few scripts
WRITER_IDS = 40  # the lowest ids of each class: one writer's
POSTED_EVERY = 4  # of those, every fourth is posted to /collect (10 per class)


def writer_files(handwriting: Path, writer: int = 0) -> tuple[dict[int, list[Path]], dict[int, list[Path]]]:
    """(posted, others) per class: files `<digit>-<id>.png`, the `writer`-th block of WRITER_IDS ids of
    each class in id order (0: the lowest)."""
    posted, others = {}, {}
    for digit in range(10):
        files = sorted((handwriting / str(digit)).glob("*.png"), key=lambda p: int(p.stem.split("-")[1]))
        mine = files[writer * WRITER_IDS : (writer + 1) * WRITER_IDS]
        posted[digit] = mine[::POSTED_EVERY]
        others[digit] = [path for index, path in enumerate(mine) if index % POSTED_EVERY]
    return posted, others


def read_right(client: httpx.Client, others: dict[int, list[Path]]) -> tuple[float, dict[str, int]]:
    """Accuracy on the writer's other digits through /predict (multipart, one class per request), and
    each file's label."""
    labels, right, total = {}, 0, 0
    for digit, paths in others.items():
        files = [("images", (path.name, path.read_bytes(), "image/png")) for path in paths]
        for prediction in client.post("/predict", files=files).json()["predictions"]:
            labels[prediction["path"]] = prediction["label"]
            right += prediction["label"] == digit
            total += 1
    return right / total, labels


def teach(client: httpx.Client) -> tuple[dict, float]:
    """POST /teach, wait for the end; the final state and the wall time."""
    started = time.monotonic()
    answer = client.post("/teach")
    if answer.status_code != 202:
        raise SystemExit(f"POST /teach: {answer.status_code} {answer.text}")
    while (state := client.get("/teach").json())["state"] in ("starting", "learning", "measuring"):
        time.sleep(0.2)
    return state, time.monotonic() - started


def others_folder(others: dict[int, list[Path]], scratch: Path) -> Path:
    """The writer's other digits as a labelled folder (hard links), for `lenet evaluate --images`."""
    folder = scratch / "others"
    for digit, paths in others.items():
        (folder / str(digit)).mkdir(parents=True, exist_ok=True)
        for path in paths:
            if not (folder / str(digit) / path.name).exists():
                os.link(path, folder / str(digit) / path.name)
    return folder


def evaluate_on(checkpoint: Path, folder: Path) -> float:
    """`lenet evaluate CHECKPOINT --images FOLDER --json`'s accuracy."""
    command = [
        sys.executable,
        "-m",
        "lenet_cli",
        "evaluate",
        str(checkpoint),
        "--images",
        str(folder),
        "--json",
    ]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)["accuracy"]


def command_line_finetune(
    model: Path, posted: dict[int, list[Path]], scratch: Path, data_dir: str, others: dict[int, list[Path]]
) -> float:
    """The same 10 per class taught with `lenet train --init … --images … --epochs 1`, then the writer's
    other digits read with `lenet evaluate --images`."""
    folder = scratch / "posted"
    for digit, paths in posted.items():
        (folder / str(digit)).mkdir(parents=True)
        for path in paths:
            os.link(path, folder / str(digit) / path.name)
    lenet = [sys.executable, "-m", "lenet_cli"]
    trained = subprocess.run(
        [
            *lenet,
            "train",
            "--init",
            str(model),
            "--images",
            str(folder),
            "--epochs",
            "1",
            "--data-dir",
            data_dir,
            "--checkpoint-dir",
            str(scratch / "cli-ck"),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return evaluate_on(Path(json.loads(trained.stdout)["checkpoint"]), others_folder(others, scratch))


def screenshot(url: str, path: Path, digit_file: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 900, "height": 1000})
        page.goto(url)
        page.wait_for_selector("#teach-table td")
        page.set_input_files("#file", str(digit_file))
        page.wait_for_selector(".result[aria-busy='false']")
        page.wait_for_timeout(500)
        page.screenshot(path=str(path), full_page=True)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=PRETRAINED)
    parser.add_argument("--handwriting", type=Path, default=Path("../shared/data/handwriting"))
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("--seconds", type=int, default=15, help="of wrk, with and without teaching")
    parser.add_argument("--screenshot", type=Path, default=Path("docs/teach.png"))
    parser.add_argument(
        "--writer", type=int, default=0, help="which block of 40 ids of each class is the writer"
    )
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="lenet-teach-"))
    posted, others = writer_files(args.handwriting, args.writer)
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lenet_cli",
            "serve",
            str(args.model),
            "--port",
            str(port),
            "--collect",
            str(scratch / "collected"),
            "--data-dir",
            args.data_dir,
            "--checkpoint-dir",
            str(scratch / "checkpoints"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    figures: dict[str, object] = {
        "writer": f"block {args.writer} of {WRITER_IDS} ids of each class (0: the lowest); 10 posted, 30 read"
    }
    try:
        line = server.stdout.readline()
        if not line.startswith("Serving "):
            raise SystemExit(line + server.stderr.read())
        url = f"http://127.0.0.1:{port}/"
        client = httpx.Client(base_url=url, timeout=60)
        for digit, paths in posted.items():
            for path in paths:
                client.post(
                    f"/collect?label={digit}",
                    content=path.read_bytes(),
                    headers={"Content-Type": "image/png"},
                )
        figures["before"], labels_before = read_right(client, others)
        script = scratch / "post.lua"
        script.write_text(LUA)
        load_files = [path for paths in others.values() for path in paths]
        figures["load_no_teaching"] = wrk(port, CLIENTS, args.seconds, script, load_files)
        under_load: dict[str, object] = {}
        loader = threading.Thread(
            target=lambda: under_load.update(wrk(port, CLIENTS, args.seconds, script, load_files))
        )
        loader.start()
        state, figures["teach_seconds_under_load"] = teach(client)
        loader.join()
        figures["load_while_teaching"] = under_load
        figures["teach_state_1"] = {
            key: state.get(key) for key in ("state", "before", "after", "why", "note")
        }
        client.post("/teach/undo")
        state, figures["teach_seconds_alone"] = teach(client)
        figures["teach_state"] = {key: state.get(key) for key in ("state", "before", "after", "why", "note")}
        figures["after"], labels_after = read_right(client, others)
        fixed = [name for name, label in labels_after.items() if labels_before[name] != label == int(name[0])]
        figures["model"] = client.get("/model").json()["answering"]
        figures["taught_model_on_others"] = evaluate_on(
            Path(state["run"]) / "last.pt", others_folder(others, scratch)
        )
        figures["command_line_finetune"] = command_line_finetune(
            args.model, posted, scratch, args.data_dir, others
        )
        if fixed:
            example = next(path for paths in others.values() for path in paths if path.name == fixed[0])
            screenshot(url, args.screenshot, example)
            figures["screenshot"] = f"{args.screenshot} (showing {example.name}, misread before teaching)"
    finally:
        server.send_signal(signal.SIGTERM)
        figures["server_exit"] = server.wait(timeout=60)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
