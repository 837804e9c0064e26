"""Model files that lie about their sizes (issue 31): how long each command takes on them, and its peak memory.

Builds, once (cached in --folder), from the shipped model:
- bzip2.pt, lzma.pt: the genuine checkpoint, but archive/data.pkl is a bzip2 or lzma stream of the genuine
  pickle followed by --gib GiB of zeros, under the genuine pickle's declared size and CRC;
- truncated.pt: the first half of the genuine file (the reference a lying file must not be worse than);
- build-defaults.pt, build-dtype.pt: the genuine pickle with a BUILD on the tensor rebuild function
  (`__defaults__`) or on the FloatStorage class (`dtype: ">f4"`);
- int-key.pt: a checkpoint whose state_dict has the key 7 after the LeNet-5 keys;
- shared-N.pt: a checkpoint whose `epoch` is a list of two references to a list of two ... N deep.
Then runs predict, read, summary (also --json for shared-N), evaluate and export on each under
/usr/bin/time -v and prints wall seconds, peak memory (max RSS) and the first line of stderr.

    python bench/predict/hostile_model_files.py [--gib 1] [--levels 60] [--folder /tmp/lenet-hostile-pt]
        [--source DIR]   # another lenet tree (e.g. `git archive` of an older commit) run with this venv
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

from PIL import Image

SHIPPED = Path(__file__).resolve().parents[2] / "lenet_cli/formats/pretrained/lenet5-mnist.pt"
CHUNK = 16 << 20


def lying_copy(target: Path, method: int, gib: float) -> None:
    """The shipped checkpoint with data.pkl compressed by `method`, unpacking to `gib` GiB more than it says."""
    source = zipfile.ZipFile(SHIPPED)
    with zipfile.ZipFile(target, "w") as archive:
        for entry in source.infolist():
            data = source.read(entry)
            if not entry.filename.endswith("data.pkl"):
                archive.writestr(entry.filename, data)
                continue
            info = zipfile.ZipInfo(entry.filename)
            info.compress_type = method
            with archive.open(info, "w") as stream:
                stream.write(data)
                for _ in range(int(gib * (1 << 30)) // CHUNK):
                    stream.write(bytes(CHUNK))
            info.file_size, info.CRC = len(data), zlib.crc32(data)  # the central directory's lie
            lie = (info.header_offset, info.CRC, info.compress_size, info.file_size)
    with open(target, "r+b") as handle:  # the local header tells the same lie
        offset, crc, compressed, size = lie
        handle.seek(offset + 14)
        handle.write(struct.pack("<III", crc, compressed, size))


def rewritten(target: Path, pickled: bytes) -> None:
    """The shipped checkpoint with another data.pkl."""
    with zipfile.ZipFile(SHIPPED) as source, zipfile.ZipFile(target, "w") as archive:
        for entry in source.infolist():
            archive.writestr(
                entry.filename, pickled if entry.filename.endswith("data.pkl") else source.read(entry)
            )


def built_on(global_line: bytes, state: object) -> bytes:
    """The shipped pickle with a BUILD of `state` on the object its first `global_line` names."""
    pickled = zipfile.ZipFile(SHIPPED).read("archive/data.pkl")
    start = pickled.index(global_line) + len(global_line)
    return pickled[:start] + pickle.dumps(state, protocol=2)[2:-1] + pickle.BUILD + pickled[start:]


def build_pickles(folder: Path, levels: int) -> dict[str, Path]:
    import torch

    from lenet_cli.core.model import LeNet5

    files = {name: folder / f"{name}.pt" for name in ("build-defaults", "build-dtype", "int-key")}
    rewritten(
        files["build-defaults"],
        built_on(b"ctorch._utils\n_rebuild_tensor_v2\n", (None, {"__defaults__": (0, 0)})),
    )
    rewritten(files["build-dtype"], built_on(b"ctorch\nFloatStorage\n", {"dtype": ">f4"}))
    weights = LeNet5().state_dict()
    torch.save({"format_version": 1, "model": {**weights, 7: torch.zeros(1)}}, files["int-key"])
    shared: list = ["x"]
    for _ in range(levels):
        shared = [shared, shared]
    files[f"shared-{levels}"] = folder / f"shared-{levels}.pt"
    torch.save({"format_version": 1, "model": weights, "epoch": shared}, files[f"shared-{levels}"])
    return files


def build(folder: Path, gib: float) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {"bzip2": folder / "bzip2.pt", "lzma": folder / "lzma.pt", "truncated": folder / "truncated.pt"}
    for name, method in (("bzip2", zipfile.ZIP_BZIP2), ("lzma", zipfile.ZIP_LZMA)):
        if not files[name].exists():
            lying_copy(files[name], method, gib)
    data = SHIPPED.read_bytes()
    files["truncated"].write_bytes(data[: len(data) // 2])
    digit = Image.new("L", (28, 28))
    digit.paste(255, (12, 4, 16, 24))  # a "1": something predict and read can answer
    digit.save(folder / "digit.png")
    return files


def measure(arguments: list[str], source: Path | None) -> tuple[float, float, int, str]:
    """(wall seconds, peak MB, exit code, first stderr line) of `lenet ARGUMENTS` (120 s at most)."""
    shutil.which("lenet") or sys.exit("lenet is not on PATH (activate the venv)")
    environment = {**os.environ, **({"PYTHONPATH": str(source)} if source else {})}
    command = ["timeout", "120", sys.executable, "-m", "lenet_cli", *arguments]
    done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True, env=environment)
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
    hours, minutes, seconds = wall.groups()
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    ours = done.stderr.split("\tCommand being timed")[0].splitlines()  # /usr/bin/time's report follows
    first = next((line for line in ours if line.startswith("Error")), ours[0] if ours else "")
    return (
        int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds),
        peak_kb / 1024,
        done.returncode,
        first,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gib", type=float, default=1.0, help="how much each lying stream unpacks to")
    parser.add_argument("--levels", type=int, default=60, help="how deep the shared list goes")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/lenet-hostile-pt"))
    parser.add_argument("--source", type=Path, help="a lenet source tree to run instead of the installed one")
    parser.add_argument("--only", help="run only the files whose name starts with this")
    options = parser.parse_args()
    files = {**build(options.folder, options.gib), **build_pickles(options.folder, options.levels)}
    image, out = options.folder / "digit.png", options.folder / "out"
    commands = {
        "predict": lambda model: ["predict", str(image), "-c", str(model)],
        "read": lambda model: ["read", str(image), "-c", str(model)],
        "summary": lambda model: ["summary", str(model)],
        "evaluate": lambda model: ["evaluate", str(model), "--data-dir", str(options.folder)],
        "export": lambda model: ["export", str(model), "--output", str(out / "model.onnx")],
    }
    print(f"{'file':14} {'command':12} {'seconds':>8} {'peak MB':>8} {'exit':>4}  stderr")
    commands["summary-json"] = lambda model: ["summary", str(model), "--json"]
    for name, model in files.items():
        if options.only and not name.startswith(options.only):
            continue
        for command, arguments in commands.items():
            if command == "summary-json" and not name.startswith("shared"):
                continue
            seconds, peak, code, line = measure(arguments(model), options.source)
            print(f"{name:14} {command:12} {seconds:8.2f} {peak:8.0f} {code:4}  {line[:110]}")


if __name__ == "__main__":
    main()
