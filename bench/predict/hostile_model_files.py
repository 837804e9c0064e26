"""Model files that lie about their sizes (issue 31): how long each command takes on them, and its peak memory.

Builds, once (cached in --folder), from the shipped model:
- bzip2.pt, lzma.pt: the genuine checkpoint, but archive/data.pkl is a bzip2 or lzma stream of the genuine
  pickle followed by --gib GiB of zeros, under the genuine pickle's declared size and CRC;
- truncated.pt: the first half of the genuine file (the reference a lying file must not be worse than).
Then runs predict, read, summary, evaluate and export on each under /usr/bin/time -v and prints wall
seconds, peak memory (max RSS) and the first line of stderr.

    python bench/predict/hostile_model_files.py [--gib 1] [--folder /tmp/lenet-hostile-pt]
"""

from __future__ import annotations

import argparse
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


def measure(arguments: list[str]) -> tuple[float, float, int, str]:
    """(wall seconds, peak MB, exit code, first stderr line) of `lenet ARGUMENTS`."""
    lenet = shutil.which("lenet") or sys.exit("lenet is not on PATH (activate the venv)")
    done = subprocess.run(
        ["/usr/bin/time", "-v", lenet, *arguments], capture_output=True, text=True, timeout=300
    )
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
    parser.add_argument("--folder", type=Path, default=Path("/tmp/lenet-hostile-pt"))
    options = parser.parse_args()
    files = build(options.folder, options.gib)
    image, out = options.folder / "digit.png", options.folder / "out"
    commands = {
        "predict": lambda model: ["predict", str(image), "-c", str(model)],
        "read": lambda model: ["read", str(image), "-c", str(model)],
        "summary": lambda model: ["summary", str(model)],
        "evaluate": lambda model: ["evaluate", str(model), "--data-dir", str(options.folder)],
        "export": lambda model: ["export", str(model), "--output", str(out / "model.onnx")],
    }
    print(f"{'file':10} {'command':9} {'seconds':>8} {'peak MB':>8} {'exit':>4}  stderr")
    for name, model in files.items():
        for command, arguments in commands.items():
            seconds, peak, code, line = measure(arguments(model))
            print(f"{name:10} {command:9} {seconds:8.2f} {peak:8.0f} {code:4}  {line[:110]}")


if __name__ == "__main__":
    main()
