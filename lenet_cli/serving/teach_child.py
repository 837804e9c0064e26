"""The `lenet train` child of a Teach run, supervised as a server supervises a worker.

The child runs in a process group of its own (Ctrl-C in the terminal is the server's to handle), and
every way it can go wrong ends it, the whole group, and says why: it exits with an error or is killed
(its own `Error: …` line, or the signal); it says nothing for `silence_s` (hung); it runs past `run_s`;
it writes more than `max_stderr_bytes` to stderr or `max_result_bytes` to stdout (a flood); its progress
cannot be read. Its output is read by two threads that never die of what they read and never hold more
than a line and the last few lines of it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from lenet_cli.core.errors import LenetError
from lenet_cli.core.reading import MiB

CHILD_NICENESS = 5  # the child yields the cores to the server's requests
CHECK_PERIOD_S = 0.2  # how often the supervisor looks at a running child


@dataclass(frozen=True)
class ChildLimits:
    """What a `lenet train` child may do before it is ended. `lenet train --progress-json` writes a line a
    few times a second while it learns; loading the data or testing the model at the end is silent."""

    silence_s: float = 180.0  # no line on stderr for this long: hung
    run_s: float = 3600.0  # one child at most, from its start
    max_stderr_bytes: int = 8 * MiB  # all it may write on stderr (a run writes some KiB)
    max_line_bytes: int = 64 * 1024  # one line of it; a longer one is cut there
    max_result_bytes: int = 4 * MiB  # its --json document on stdout
    exit_s: float = 10.0  # after SIGKILL, the group is gone within this


def train_command() -> list[str]:
    """This lenet's `lenet` as a child of this server (child_main.py)."""
    return [sys.executable, "-m", "lenet_cli.serving.child_main", str(os.getpid())]


class TrainChild:
    """`COMMAND train ARGUMENTS --json --progress-json` in a child process: its progress as it comes, its
    result document at the end, or a LenetError saying why it was ended. `command` is what runs as `lenet`
    (default: this lenet, dying with the server)."""

    def __init__(
        self,
        arguments: list[str],
        on_run_dir: Callable[[Path], None],
        limits: ChildLimits | None = None,
        command: list[str] | None = None,
    ):
        self.limits = limits or ChildLimits()
        self.run_dir: Path | None = None
        self.on_run_dir = on_run_dir  # called once the child has made its run folder, before any weights
        self.step, self.steps, self.first_step_at = 0, 0, None
        self.last_lines: deque[str] = deque(maxlen=5)
        self.fault: str | None = None  # why the child must be ended, found by a reading thread
        self.ended: str | None = None  # why the child was ended
        self._stdout = b""
        self.started_at = self.heard_at = time.monotonic()
        self.process = subprocess.Popen(
            [*(command or train_command()), "train", *arguments, "--json", "--progress-json"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
            start_new_session=True,  # a group of its own: ended whole, and Ctrl-C is the server's
        )
        _lower_priority(self.process.pid)
        self._readers = [
            threading.Thread(target=self._guarded, args=(self._read_progress,), name="lenet-teach-progress"),
            threading.Thread(target=self._guarded, args=(self._read_result,), name="lenet-teach-result"),
        ]
        for reader in self._readers:
            reader.daemon = True
            reader.start()

    def progress(self) -> dict[str, Any]:
        """Steps done, of how many, and the seconds left at the pace so far (None until it is known)."""
        left = None
        if self.first_step_at is not None and self.step > 0:
            pace = (time.monotonic() - self.first_step_at) / self.step
            left = round(pace * (self.steps - self.step), 1)
        return {"step": self.step, "steps": self.steps, "seconds_left": left}

    def wait(self) -> dict[str, Any]:
        """The run's `--json` document once the child exits; LenetError with the child's own `Error: …`
        line if it failed, or why it was ended."""
        while True:
            try:
                code = self.process.wait(timeout=CHECK_PERIOD_S)
                break
            except subprocess.TimeoutExpired:
                why = self._why_end(time.monotonic())
                if why is not None:
                    self.end(why)
        self._end_group()  # anything it started that is still running
        for reader in self._readers:
            reader.join(timeout=self.limits.exit_s)
        why = self.ended or self.fault
        if why is not None:
            raise LenetError(f"training was ended: {why}")
        if code != 0:
            raise LenetError(f"training failed: {self._failure(code)}")
        try:
            return json.loads(self._stdout)
        except ValueError:
            raise LenetError("training failed: its result could not be read") from None

    def end(self, why: str) -> None:
        """End the child and its whole group now (SIGKILL: nothing of it is kept), and remember why."""
        self.ended = self.ended or why
        self._end_group()
        try:
            self.process.wait(timeout=self.limits.exit_s)
        except subprocess.TimeoutExpired:  # stuck in the kernel: wait() reports it as ended anyway
            pass

    def _why_end(self, now: float) -> str | None:
        if self.fault is not None:
            return self.fault
        if now - self.heard_at > self.limits.silence_s:
            return f"it said nothing for {self.limits.silence_s:g} s"
        if now - self.started_at > self.limits.run_s:
            return f"it ran for more than {self.limits.run_s:g} s"
        return None

    def _end_group(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # the group bears the child's pid
        except (ProcessLookupError, PermissionError):  # already gone
            pass

    def _failure(self, code: int) -> str:
        errors = [line for line in self.last_lines if line.startswith("Error: ")]
        if errors:
            return errors[-1].removeprefix("Error: ")
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return self.last_lines[-1] if self.last_lines else f"exit code {code}"

    def _guarded(self, read: Callable[[], None]) -> None:
        """A reading thread: whatever goes wrong in it is a fault the supervisor ends the child for."""
        try:
            read()
        except Exception as error:  # noqa: BLE001 - told to the supervisor, never lost with the thread
            self.fault = self.fault or f"its output could not be read ({type(error).__name__}: {error})"

    def _read_progress(self) -> None:
        stderr: IO[bytes] = self.process.stderr  # type: ignore[assignment]
        received = 0
        while raw := stderr.readline(self.limits.max_line_bytes):
            received += len(raw)
            self.heard_at = time.monotonic()
            if received > self.limits.max_stderr_bytes:
                self.fault = f"it wrote more than {self.limits.max_stderr_bytes // MiB} MiB to stderr"
                return
            line = raw.decode(errors="replace").strip()
            if line.startswith('{"progress"'):
                self._take_progress(json.loads(line)["progress"])
            elif line:
                self.last_lines.append(line[:500])

    def _take_progress(self, progress: dict[str, Any]) -> None:
        if "run_dir" in progress:
            self.run_dir = Path(progress["run_dir"])
            self.on_run_dir(self.run_dir)
        elif self.first_step_at is None:
            self.first_step_at = time.monotonic()
        self.step, self.steps = int(progress["step"]), int(progress["steps"])

    def _read_result(self) -> None:
        stdout: IO[bytes] = self.process.stdout  # type: ignore[assignment]
        self._stdout = stdout.read(self.limits.max_result_bytes + 1)
        if len(self._stdout) > self.limits.max_result_bytes:
            self.fault = f"it wrote more than {self.limits.max_result_bytes // MiB} MiB to stdout"


def _lower_priority(pid: int) -> None:
    try:
        own = os.getpriority(os.PRIO_PROCESS, 0)
        os.setpriority(os.PRIO_PROCESS, pid, min(19, own + CHILD_NICENESS))
    except (OSError, AttributeError):  # not permitted, or not a Unix
        pass
