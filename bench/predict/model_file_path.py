"""How a model file travels through lenet's modules on its way in, as `lenet read -c FILE` and `lenet predict
-c FILE` find and load it (`reading_model`, `load_predict_model`): which modules it passes through
("rooms"), how many times control enters one from another ("entries": a call from code of one lenet module
into a function of another; the callbacks a check calls on every value, lambdas and a value's own methods,
are not counted), and how many times the file is opened. `--show` prints each entry in order.

    python bench/predict/model_file_path.py

The file kinds traced: the shipped checkpoint (read without torch), a legacy checkpoint only torch reads,
an ONNX export and a .pt2 program (both made here, in a temporary folder). Each is loaded once untraced
first, so the imports it needs are done and only the loading is counted. Structure, not speed: no lock.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

import torch

from lenet_cli.formats.checkpoint import load_checkpoint
from lenet_cli.formats.shipped import PRETRAINED, reading_model
from lenet_cli.inference.export import export_checkpoint
from lenet_cli.inference.fast_predict import load_predict_model


def traced(path: Path) -> tuple[list[str], int]:
    """The lenet module entered by each call from another while `path` is found and loaded, in order, and
    how many times the file was opened."""
    entries: list[str] = []
    opened = 0
    real_open = os.open

    def counting_open(file, *args, **kwargs):
        nonlocal opened
        opened += Path(file).resolve() == Path(path).resolve()
        return real_open(file, *args, **kwargs)

    def innermost_lenet(frame) -> str | None:
        while frame is not None:
            name = frame.f_globals.get("__name__", "")
            if name.startswith("lenet_cli"):
                return name
            frame = frame.f_back
        return None

    def profile(frame, event, _arg) -> None:
        if event != "call":
            return
        module, code = frame.f_globals.get("__name__", ""), frame.f_code
        method = code.co_argcount and code.co_varnames[0] == "self" and code.co_name != "__init__"
        if code.co_name.startswith("<") or method or not module.startswith("lenet_cli"):
            return
        if innermost_lenet(frame.f_back) != module:
            entries.append(f"{module}.{code.co_name}")

    os.open = counting_open
    sys.setprofile(profile)
    try:
        load_predict_model(reading_model(path)[0])
    finally:
        sys.setprofile(None)
        os.open = real_open
    return entries, opened


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--show", action="store_true", help="print each entry in order")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        legacy = Path(folder) / "legacy.pt"
        torch.save(load_checkpoint(PRETRAINED)["model"], legacy, _use_new_zipfile_serialization=False)
        shipped = Path(folder) / "shipped.pt"
        shipped.write_bytes(PRETRAINED.read_bytes())
        files = {
            "checkpoint, read without torch": shipped,
            "legacy checkpoint, read by torch": legacy,
            "ONNX export": export_checkpoint(shipped, "onnx").path,
            ".pt2 program": export_checkpoint(shipped, "pt2").path,
        }
        print("| file | rooms | entries | opened | entries by module |")
        print("|---|---|---|---|---|")
        for what, path in files.items():
            load_predict_model(reading_model(path)[0])  # imports done before the trace
            entries, opened = traced(path)
            if args.show:
                print(what + ": " + " > ".join(name.removeprefix("lenet_cli.") for name in entries))
            by_module = Counter(name.removeprefix("lenet_cli.").rpartition(".")[0] for name in entries)
            listed = ", ".join(f"{name} {count}" for name, count in by_module.most_common())
            print(f"| {what} | {len(by_module)} | {len(entries)} | {opened} | {listed} |")


if __name__ == "__main__":
    main()
