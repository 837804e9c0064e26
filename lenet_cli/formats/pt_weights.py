"""Reading a checkpoint (.pt) without torch, as safely as `torch.load(weights_only=True)`.

A .pt file is a zip: `<name>/data.pkl`, a pickle of the checkpoint dict, and `<name>/data/<key>`, the
raw bytes of each tensor's storage. The pickle is read by an unpickler that resolves only the names a
checkpoint uses: torch's tensor rebuild function, its typed storage classes and OrderedDict, each
replaced by a stand-in here, so no class or function of the file's choosing is ever looked up:

- any other name torch's own weights-only loader allows (torch.Size, dtypes, parameters, other
  rebuild functions...) raises NeedsTorch: the caller hands the file to torch, which decides;
- every other name (os.system, builtins.eval, any class) is refused with the message torch's refusal
  gets today, without anything being imported or called;
- a file this reader cannot follow (not a zip, a legacy or big-endian file, a storage whose size
  disagrees with the pickle) also raises NeedsTorch, so its error message is torch's own.

Tensors come back as StoredTensor (a float32 or other numpy array behind it), which an unpickling
BUILD cannot touch.
"""

from __future__ import annotations

import _compat_pickle
import io
import math
import pickle
import pickletools
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from lenet_cli.core.errors import CheckpointError
from lenet_cli.core.reading import MAX_MODEL_BYTES
from lenet_cli.formats.checkpoint_rules import as_checkpoint, open_model_file

MAX_UNPACKED_BYTES = 4 * MAX_MODEL_BYTES  # a compressed entry could unpack to far more than its file
STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
# The opcodes torch's weights-only unpickler follows; a pickle with any other is left to torch to refuse.
TORCH_OPCODES = set(
    "APPEND APPENDS BINFLOAT BINGET BININT BININT1 BININT2 BINPERSID BINPUT BINUNICODE BUILD EMPTY_DICT "
    "EMPTY_LIST EMPTY_SET EMPTY_TUPLE GLOBAL LONG1 LONG_BINGET LONG_BINPUT MARK NEWFALSE NEWOBJ NEWTRUE "
    "NONE PROTO REDUCE SETITEM SETITEMS SHORT_BINSTRING STOP TUPLE TUPLE1 TUPLE2 TUPLE3".split()
)
# Names outside these that torch's weights-only loader also allows: handed to torch, not refused.
TORCH_ALLOWED_ELSEWHERE = {"collections.Counter", "builtins.bytearray", "builtins.set", "builtins.complex"}


class NeedsTorch(Exception):
    """This file may be fine, but only torch can read it (or say exactly why not)."""


class StoredTensor:
    """A tensor read from a checkpoint: its numpy array, with torch's shape and dtype questions."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray):
        self.array = array

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    def __setstate__(self, state: Any) -> None:  # a BUILD on a tensor: torch allows a few, we do not
        raise NeedsTorch("BUILD on a tensor")


class _StorageType:
    def __init__(self, dtype: type):
        self.dtype = dtype


def _rebuild_tensor_v2(
    storage: np.ndarray, offset: int, size: tuple, stride: tuple, *_ignored: Any
) -> StoredTensor:
    """torch._utils._rebuild_tensor_v2's stand-in: the elements of `storage` the tensor covers, copied."""
    if (
        not isinstance(storage, np.ndarray)
        or not _ints(size)
        or not _ints(stride)
        or len(size) != len(stride)
    ):
        raise NeedsTorch("an unusual tensor")
    if not isinstance(offset, int) or offset < 0 or any(n < 0 for n in size) or any(s < 0 for s in stride):
        raise NeedsTorch("an unusual tensor")
    if 0 in size:
        return StoredTensor(np.zeros(size, storage.dtype))
    if math.prod(size) > storage.size:  # overlapping elements: copying them could take any memory
        raise NeedsTorch("a tensor larger than its storage")
    last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if last >= storage.size:
        raise NeedsTorch("a tensor beyond its storage")
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=size, strides=[s * item for s in stride], writeable=False
    )
    return StoredTensor(np.array(view))


def _ints(values: Any) -> bool:
    return isinstance(values, tuple) and all(isinstance(value, int) for value in values)


def _encode(text: str, encoding: str = "latin1") -> bytes:
    """_codecs.encode's stand-in, for bytes in a protocol 2 pickle."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise NeedsTorch("an unusual bytes object")
    return text.encode("latin1")


class _WeightsUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str):
        super().__init__(io.BytesIO(data))
        self.archive, self.prefix = archive, prefix
        self.storages: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _compat_pickle.NAME_MAPPING:  # Python 2 names, mapped as torch maps them
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        else:
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        full_name = f"{module}.{name}"
        if full_name == "torch._utils._rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if full_name == "collections.OrderedDict":
            return OrderedDict
        if full_name == "_codecs.encode":
            return _encode
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(STORAGE_DTYPES[name])
        if module == "torch" or module.startswith("torch.") or full_name in TORCH_ALLOWED_ELSEWHERE:
            raise NeedsTorch(full_name)
        raise pickle.UnpicklingError(f"global '{full_name}' is not allowed")

    def persistent_load(self, pid: Any) -> np.ndarray:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise NeedsTorch("an unusual persistent id")
        _, storage_type, key, _location, count = pid
        if (
            not isinstance(storage_type, _StorageType)
            or not isinstance(key, str)
            or not isinstance(count, int)
        ):
            raise NeedsTorch("an unusual storage")
        if key not in self.storages:
            try:
                raw = self.archive.read(f"{self.prefix}/data/{key}")
            except KeyError:
                raise NeedsTorch("a missing storage") from None
            dtype = np.dtype(storage_type.dtype)
            if len(raw) != count * dtype.itemsize:
                raise NeedsTorch("a storage of the wrong size")
            self.storages[key] = np.frombuffer(raw, dtype=dtype)
        return self.storages[key]


def unpickle_checkpoint(data: bytes, path: Path) -> Any:
    """The object a .pt file's bytes hold, tensors as StoredTensor; refuses code-naming pickles."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise NeedsTorch("not a zip: a legacy file, or not a checkpoint") from None
    if sum(entry.file_size for entry in archive.infolist()) > MAX_UNPACKED_BYTES:
        raise NeedsTorch("an archive that unpacks to more than a model file may hold")
    pickles = [name for name in names if name.endswith("/data.pkl") and name.count("/") == 1]
    if len(pickles) != 1:
        raise NeedsTorch("an unusual archive")
    prefix = pickles[0].split("/")[0]
    if f"{prefix}/byteorder" in names and archive.read(f"{prefix}/byteorder") != b"little":
        raise NeedsTorch("a big-endian file")
    pickled = archive.read(pickles[0])
    try:
        opcodes = {opcode.name for opcode, _, _ in pickletools.genops(pickled)}
    except Exception:  # a truncated or garbled pickle
        raise NeedsTorch("a broken pickle") from None
    if not opcodes <= TORCH_OPCODES:
        raise NeedsTorch(f"opcodes torch does not follow: {sorted(opcodes - TORCH_OPCODES)}")
    try:
        return _WeightsUnpickler(pickled, archive, prefix).load()
    except pickle.UnpicklingError as error:
        if "global" in str(error):
            raise CheckpointError(
                f"refusing to load {path}: it holds Python objects that are not allowed in a safe checkpoint"
            ) from None
        raise NeedsTorch(str(error)) from None
    except NeedsTorch:
        raise
    except Exception as error:  # broken bytes fail in many ways; torch says which
        raise NeedsTorch(type(error).__name__) from None


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checked lenet checkpoint dict, as `load_checkpoint` gives, with `model` holding float32 numpy
    arrays. Raises CheckpointError as torch's path would, or NeedsTorch."""
    path = Path(path)
    with open_model_file(path) as handle:
        data = handle.read()
    loaded = unpickle_checkpoint(data, path)
    checkpoint = as_checkpoint(loaded, path, lambda value: isinstance(value, StoredTensor))
    checkpoint["model"] = {key: tensor.array for key, tensor in checkpoint["model"].items()}
    return checkpoint
