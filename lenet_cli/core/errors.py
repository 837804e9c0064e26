"""The one family of errors the core raises; the CLI turns them into `Error: …` and exit 1."""


class LenetError(Exception):
    """A problem the user can fix; its message is shown as-is, without a traceback."""


class DataError(LenetError):
    """The dataset is missing, incomplete or corrupt."""


class CheckpointError(LenetError):
    """A checkpoint cannot be read, or is not a LeNet-5."""


class ImageError(LenetError):
    """An image cannot be read or holds no digit."""


class StoppedBySignal(LenetError):
    """Not a failure: work stopped cleanly on Ctrl-C or SIGTERM. The CLI prints the message as it is
    (only when `announce`, so one process of several speaks) and exits with `exit_code`."""

    def __init__(self, message: str, signal_number: int, announce: bool = True):
        super().__init__(message)
        self.exit_code = 128 + signal_number  # 130 for SIGINT, 143 for SIGTERM
        self.announce = announce
