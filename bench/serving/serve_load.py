"""Load on `lenet serve`, side by side with batching off and with the plain endpoint, measured with wrk.

Three servers run at once on loopback: a plain FastAPI + uvicorn endpoint
(bench/serving/plain_server.py: one process, each request decoded, preprocessed and run on its own), `lenet serve
--window-ms 0` (batching off) and `lenet serve` (defaults). wrk drives each in turn with POST /predict,
cycling through distinct images (no two consecutive requests send the same file), at 1, 8 and 64
connections, for 28x28 PNGs and 1 MP drawings; the rounds alternate so that all three see the same
machine, and the medians over rounds are reported. Then `lenet serve` takes a long run of 28x28 requests
while its memory (server and preprocessing processes) is read before and after.

    apt-get install wrk
    python bench/serving/serve_load.py --mnist ../shared/data/mnist --seconds 5 --rounds 3 --soak 100000
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: drawing.py, tutorial.py
from drawing import draw_digit  # noqa: E402
from PIL import Image  # noqa: E402

from lenet_cli.data.datasets import load_split  # noqa: E402
from lenet_cli.formats.shipped import PRETRAINED  # noqa: E402

LUA = """
local bodies, index = {}, 0
init = function(args)
  for _, path in ipairs(args) do
    local file = io.open(path, "rb"); table.insert(bodies, file:read("*a")); file:close()
  end
  index = math.random(#bodies)
end
request = function()
  index = index % #bodies + 1
  return wrk.format("POST", "/predict", {["Content-Type"] = "image/png"}, bodies[index])
end
"""


def image_sets(folder: Path, mnist: str) -> dict[str, list[Path]]:
    """200 MNIST test digits as 28x28 PNGs, and 40 hand-drawn-style digits on 1000x1000 canvases."""
    sets = {"28x28 PNG": folder / "small", "1 MP drawing": folder / "large"}
    for path in sets.values():
        path.mkdir(parents=True, exist_ok=True)
    test = load_split("mnist", mnist, "test")
    for index in range(200):
        Image.fromarray(test.images[index].numpy(), mode="L").save(sets["28x28 PNG"] / f"{index}.png")
    rng = random.Random(0)
    for index in range(40):
        image = draw_digit(index % 10, rng, canvas=(1000, 1000), height_range=(400, 800), pen_range=(10, 24))
        image.save(sets["1 MP drawing"] / f"{index}.png")
    return {name: sorted(path.iterdir()) for name, path in sets.items()}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(name: str, command: list[str], port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tempfile.gettempdir()
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit(f"{name} did not start")


def wrk(port: int, connections: int, seconds: float, script: Path, files: list[Path]) -> dict[str, float]:
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{round(seconds)}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}/predict",
        "--",
        *map(str, files),
    ]
    finished = subprocess.run(command, capture_output=True, text=True)
    if finished.returncode != 0:
        raise SystemExit(f"wrk failed: {finished.stderr.strip() or finished.stdout.strip()}")
    output = finished.stdout

    def milliseconds(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = sum(
        int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|connect|read|write|timeout):? (\d+)", output)
    )
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": milliseconds("50%"),
        "p99": milliseconds("99%"),
        "errors": errors,
    }


def descendants(pid: int) -> list[int]:
    """A process's children, theirs, and so on: lenet serve's workers are its forkserver's children."""
    try:
        children = [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return [found for child in children for found in (child, *descendants(child))]


def cpu_seconds(pid: int) -> float:
    """CPU time used so far by a process and its descendants (the preprocessing processes)."""
    pids = [pid, *descendants(pid)]
    total = 0
    for each in pids:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def wait_until_idle(pid: int, limit_s: float = 60) -> None:
    """Wait for a server to finish what a finished run left queued (requests wrk gave up on are still
    worked off), so that it does not slow the next server measured."""
    deadline = time.monotonic() + limit_s
    previous = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu_seconds(pid)
        if now - previous < 0.05:
            return
        previous = now


def resident_mib(pid: int) -> float:
    """Resident memory of a process and its descendants (the preprocessing processes), in MiB."""
    pids = [pid, *descendants(pid)]
    total = 0
    for each in pids:
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:  # exited meanwhile
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", default="../shared/data/mnist")
    parser.add_argument("--checkpoint", default=str(PRETRAINED))
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--soak", type=int, default=100_000, help="requests in the memory run (0: skip)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="lenet-load-"))
    sets = image_sets(scratch, args.mnist)
    script = scratch / "post.lua"
    script.write_text(LUA)
    ports = {name: free_port() for name in ("plain", "batching off", "lenet serve")}
    lenet = [sys.executable, "-m", "lenet_cli", "serve", args.checkpoint]
    commands = {
        "plain": [
            sys.executable,
            str(Path(__file__).parent / "plain_server.py"),
            args.checkpoint,
            str(ports["plain"]),
        ],
        "batching off": [*lenet, "--port", str(ports["batching off"]), "--window-ms", "0"],
        "lenet serve": [*lenet, "--port", str(ports["lenet serve"])],
    }
    servers = {name: start(name, command, ports[name]) for name, command in commands.items()}
    try:
        for name in servers:  # warm up: first requests pay for lazy initialisation in every process
            for files in sets.values():
                wrk(ports[name], 8, 3, script, files)
                wait_until_idle(servers[name].pid)
        results: dict[tuple[str, int, str], list[dict[str, float]]] = {}
        for round_number in range(args.rounds):
            order = (
                list(servers)[round_number % 3 :] + list(servers)[: round_number % 3]
            )  # each goes first in turn
            for kind, files in sets.items():
                for connections in args.connections:
                    for name in order:
                        for other in servers.values():
                            wait_until_idle(other.pid)
                        measured = wrk(ports[name], connections, args.seconds, script, files)
                        results.setdefault((kind, connections, name), []).append(measured)
            print(f"round {round_number + 1} of {args.rounds} done", file=sys.stderr)
        report(results, sets, args.connections)
        if args.soak:
            soak(servers["lenet serve"], ports["lenet serve"], args.soak, script, sets["28x28 PNG"])
    finally:
        for process in servers.values():
            process.terminate()
            process.wait(timeout=30)


def report(results, sets, connection_counts) -> None:
    print(
        f"{'images':13} {'clients':>7} {'server':13} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'vs plain':>8}"
    )
    for kind in sets:
        for connections in connection_counts:
            plain_rps = statistics.median(r["rps"] for r in results[(kind, connections, "plain")])
            for name in ("plain", "batching off", "lenet serve"):
                runs = results[(kind, connections, name)]
                rps = statistics.median(r["rps"] for r in runs)
                p50 = statistics.median(r["p50"] for r in runs)
                p99 = statistics.median(r["p99"] for r in runs)
                errors = sum(r["errors"] for r in runs)
                print(
                    f"{kind:13} {connections:7} {name:13} {rps:8.1f} {p50:8.1f} {p99:8.1f} {errors:6} {rps / plain_rps:7.2f}x"
                )


def soak(process: subprocess.Popen, port: int, requests: int, script: Path, files: list[Path]) -> None:
    """`requests` 28x28 requests at 64 connections, in 20 s pieces, with resident memory before and after."""
    wrk(port, 64, 3, script, files)  # warm up: every allocation a steady state needs
    before, done, errors, started = resident_mib(process.pid), 0, 0, time.perf_counter()
    samples = []
    while done < requests:
        measured = wrk(port, 64, 20, script, files)
        done, errors = done + int(measured["rps"] * 20), errors + measured["errors"]
        samples.append(resident_mib(process.pid))
    seconds = time.perf_counter() - started
    print(
        f"memory over about {done:,} requests in {seconds:.0f} s ({errors} errors): {before:.0f} MiB before, "
        f"{samples[-1]:.0f} MiB after (max {max(samples):.0f} MiB), server and preprocessing processes; "
        f"every 20 s: {', '.join(f'{sample:.0f}' for sample in samples)} MiB"
    )


if __name__ == "__main__":
    main()
