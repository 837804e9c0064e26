"""The one family of errors the core raises; the CLI turns them into `Error: …` and exit 1."""


class LenetError(Exception):
    """A problem the user can fix; its message is shown as-is, without a traceback."""


class DataError(LenetError):
    """The dataset is missing, incomplete or corrupt."""


class CheckpointError(LenetError):
    """A checkpoint cannot be read, or is not a LeNet-5."""


class ImageError(LenetError):
    """An image cannot be read or holds no digit."""
