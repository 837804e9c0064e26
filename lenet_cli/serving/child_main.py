"""How the server starts its `lenet train` child: `python -m lenet_cli.serving.child_main SERVER_PID
ARGS...` asks the kernel to kill this process when the server's thread that started it ends (Linux:
PR_SET_PDEATHSIG, kept across exec), gives up if the server is already gone, then runs `lenet ARGS...`.
Done here, in the child itself, rather than in a `preexec_fn`, which is unsafe in a threaded server."""

from __future__ import annotations

import os
import runpy
import signal
import sys

PR_SET_PDEATHSIG = 1


def main() -> None:
    server = int(sys.argv[1])
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != server:  # the server ended before the kernel was asked: nobody waits for us
        sys.exit(1)
    sys.argv = ["lenet", *sys.argv[2:]]
    runpy.run_module("lenet_cli", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
