"""Python code run in a process of its own where `import torch` fails, as on a machine without torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BLOCK_TORCH = """
import sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"{name} is blocked: this process runs without torch")

sys.meta_path.insert(0, NoTorch())
"""


def run_without_torch(code: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`code` run after torch is blocked, with `args` as sys.argv[1:]; its exit code and output."""
    return subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH + code, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
