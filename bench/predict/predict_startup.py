"""What one `lenet predict` call costs a script: whole-process wall time and peak memory.

    python bench/predict/predict_startup.py --data-dir ../shared/data/mnist [--old-tree DIR] [--rounds 7]

Each command is run as its own process, the commands taking turns round after round (so a busy
moment of the machine hits all of them alike); the table shows each one's median wall time and its
median CPU time (user + system: what a busy machine inflates least) and its median peak resident
memory (the child's own ru_maxrss). Commands:
- `lenet predict one.png --json` with the shipped model, a .pt checkpoint and an .onnx export
  (the torch-free path), and the same through torch (this tree, torch's path forced);
- with --old-tree, the same call on a checkout of the code before the torch-free path (`today`);
- `python -c "import numpy, PIL.Image"`: the floor any Python tool with these libraries pays;
- 100 files in one call, torch-free and (with --old-tree) before.
The images are MNIST test digits written as PNG files to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FORCE_TORCH = (
    "import sys, lenet_cli.inference.fast_predict as fast; fast.load_array_model = lambda model_file: None; "
    "from lenet_cli.cli import main; sys.argv[0] = 'lenet'; main()"
)


def run_once(command: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak MiB) of one process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {process.stderr.read().decode()}")
    process.stderr.close()
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def write_pngs(data_dir: str, folder: Path, count: int) -> list[Path]:
    import gzip

    import numpy as np
    from PIL import Image

    raw = gzip.open(Path(data_dir) / "t10k-images-idx3-ubyte.gz").read()[16:]
    images = np.frombuffer(raw, np.uint8).reshape(-1, 28, 28)
    paths = []
    for index in range(count):
        path = folder / f"{index:03d}.png"
        Image.fromarray(images[index]).save(path)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("--checkpoint", help="a .pt to time (default: a copy of the shipped model)")
    parser.add_argument("--onnx", help="an .onnx export to time")
    parser.add_argument("--old-tree", help="a checkout of lenet before the torch-free path")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="lenet-startup-"))
    paths = write_pngs(args.data_dir, scratch, 100)
    one = str(paths[0])
    shipped = REPO / "lenet_cli" / "formats" / "pretrained" / "lenet5-mnist.pt"
    checkpoint = args.checkpoint or str(shutil.copy(shipped, scratch / "model.pt"))
    python = sys.executable
    lenet = [python, "-m", "lenet_cli"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    empty = scratch / "empty"  # a working folder without checkpoints/: the shipped model is the default
    empty.mkdir()
    os.chdir(empty)
    commands: dict[str, tuple[list[str], dict[str, str]]] = {
        'python -c "import numpy, PIL.Image"': ([python, "-c", "import numpy, PIL.Image"], env),
        "predict one.png --json (shipped model)": ([*lenet, "predict", one, "--json"], env),
        "predict one.png --json -c model.pt": ([*lenet, "predict", one, "-c", checkpoint, "--json"], env),
    }
    if args.onnx:
        commands["predict one.png --json -c model.onnx"] = (
            [*lenet, "predict", one, "-c", args.onnx, "--json"],
            env,
        )
    commands["predict one.png --json -c model.pt, torch path forced"] = (
        [python, "-c", FORCE_TORCH, "predict", one, "-c", checkpoint, "--json"],
        env,
    )
    if args.old_tree:
        old_env = {**env, "PYTHONPATH": str(Path(args.old_tree).resolve())}
        commands["before: predict one.png --json -c model.pt"] = (
            [*lenet, "predict", one, "-c", checkpoint, "--json"],
            old_env,
        )
        commands["before: predict 100 files --json -c model.pt"] = (
            [*lenet, "predict", *map(str, paths), "-c", checkpoint, "--json"],
            old_env,
        )
    commands["predict 100 files --json -c model.pt"] = (
        [*lenet, "predict", *map(str, paths), "-c", checkpoint, "--json"],
        env,
    )
    times: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    memory: dict[str, list[float]] = {name: [] for name in commands}
    for command, command_env in commands.values():  # one warm-up each: file caches, .pyc files
        run_once(command, command_env)
    for _ in range(args.rounds):
        for name, (command, command_env) in commands.items():
            seconds, cpu_seconds, mib = run_once(command, command_env)
            times[name].append(seconds)
            cpu[name].append(cpu_seconds)
            memory[name].append(mib)
    print(f"{args.rounds} rounds; load average after: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'command':<56} {'wall s':>7} {'min s':>7} {'CPU s':>7} {'peak MiB':>9}")
    for name in commands:
        print(
            f"{name:<56} {statistics.median(times[name]):>7.3f} {min(times[name]):>7.3f} "
            f"{statistics.median(cpu[name]):>7.3f} {statistics.median(memory[name]):>9.1f}"
        )


if __name__ == "__main__":
    main()
