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

Tensors come back as StoredTensor (a float32 or other numpy array behind it). BUILD (setting an
object's attributes) is followed only where torch follows it: on an OrderedDict, never on a stand-in.
The archive is checked before anything in it is read (lenet_cli/formats/pt_archive.py).
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
from lenet_cli.formats.checkpoint_rules import as_checkpoint
from lenet_cli.formats.model_file import ModelFile
from lenet_cli.formats.pt_archive import checked_archive, is_zip

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


class Refused(pickle.UnpicklingError):
    """Something torch's weights-only loader refuses too: a name of code, or a BUILD it does not allow."""


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


def _load_build(unpickler: pickle._Unpickler) -> None:
    """BUILD where torch's weights-only unpickler allows it: an OrderedDict's attributes (a state_dict's
    `_metadata`). On a tensor torch allows a few, which it reads itself; on anything else (the stand-ins
    here: the rebuild function, a storage type) it refuses, and so does this."""
    state = unpickler.stack.pop()
    target = unpickler.stack[-1]
    if type(target) is OrderedDict and isinstance(state, dict):
        target.__dict__.update(state)
    elif type(target) in (OrderedDict, StoredTensor):  # an unusual state: torch knows what it means
        raise NeedsTorch(f"BUILD on {type(target).__name__}")
    else:
        raise Refused(f"BUILD on {type(target).__name__}")


class _WeightsUnpickler(pickle._Unpickler):
    """The Python-level unpickler (its opcode table can be changed, the C one's cannot), with BUILD
    replaced; the pickle is small (pt_archive.MAX_PICKLE_BYTES)."""

    dispatch = {**pickle._Unpickler.dispatch, pickle.BUILD[0]: _load_build}

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
        raise Refused(f"global '{full_name}' is not allowed")

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
    """The object a .pt file's bytes hold, tensors as StoredTensor; refuses code-naming pickles and
    archives that are not as torch.save writes them (see pt_archive), before unpacking anything."""
    if not is_zip(data):
        raise NeedsTorch("not a zip: a legacy file, or not a checkpoint")
    archive = checked_archive(data, path)
    names = archive.namelist()
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
    except Refused:
        raise CheckpointError(
            f"refusing to load {path}: it holds Python objects that are not allowed in a safe checkpoint"
        ) from None
    except NeedsTorch:
        raise
    except Exception as error:  # broken bytes fail in many ways; torch says which
        raise NeedsTorch(type(error).__name__) from None


def read_checkpoint(model_file: ModelFile) -> dict[str, Any]:
    """A checked lenet checkpoint dict, as `load_checkpoint` gives, with `model` holding float32 numpy
    arrays. Raises CheckpointError as torch's path would, or NeedsTorch."""
    loaded = unpickle_checkpoint(model_file.data, model_file.path)
    checkpoint = as_checkpoint(loaded, model_file.path, lambda value: isinstance(value, StoredTensor))
    checkpoint["model"] = {key: tensor.array for key, tensor in checkpoint["model"].items()}
    return checkpoint
