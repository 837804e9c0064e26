"""A torch zip archive (.pt, .pt2), checked before a byte of any entry is unpacked.

torch.save and torch.export.save store every entry as is (no compression), so an archive they wrote
needs nothing unpacked: each entry's bytes lie in the file, once. A file that claims otherwise lies, or
came from elsewhere: Python's zipfile would unpack a bzip2 or lzma entry whole in one call, whatever size
it declares (a few KB of the file can unpack to gigabytes). So only what torch writes is accepted:

- the central directory is small (at most MAX_ENTRIES entries in MAX_DIRECTORY_BYTES), checked from the
  end records before zipfile parses it;
- every entry stored (method 0, in the central directory and in its local header), not encrypted,
  its stored size equal to its size; a pickle entry at most MAX_PICKLE_BYTES;
- every entry's bytes within the file and no two entries sharing bytes, so all entries together hold no
  more than the file does.

Anything else is refused with one line naming the file. No torch here: both readers use it.
"""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path
from typing import NoReturn

from lenet_cli.core.errors import CheckpointError

ZIP_MAGIC = b"PK\x03\x04"  # what torch.load looks for to read a file as a zip archive
MAX_ENTRIES = 10_000  # a LeNet-5 checkpoint has about 20; a .pt2 program about 30
MAX_DIRECTORY_BYTES = 1024 * 1024
# A checkpoint's pickle (data.pkl: the dict, the training record, no tensor bytes) is a few KB; it is
# read by a Python-level unpickler (lenet's and torch's weights-only one), so its size bounds the time.
MAX_PICKLE_BYTES = 4 * 1024 * 1024
END_RECORD = struct.Struct("<4s4H2LH")  # the end of central directory record (22 bytes)
ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")  # 56 bytes, just before its 20-byte locator
ZIP64_LOCATOR_MAGIC = b"PK\x06\x07"
LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # 30 bytes, then the name and the extra field
METHODS = {
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
}


def is_zip(data: bytes) -> bool:
    """Whether torch would read `data` as a zip archive (else as a legacy pickle)."""
    return data[:4] == ZIP_MAGIC


def checked_archive(data: bytes, path: Path) -> zipfile.ZipFile:
    """The zip archive in `data`, every entry as torch writes it; else CheckpointError naming `path`."""
    directory = _directory_size(data)
    if directory is None:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (corrupt or truncated?)")
    entries, size = directory
    if entries > MAX_ENTRIES or size > MAX_DIRECTORY_BYTES:
        _refuse(path, f"it lists {entries:,} entries in {size:,} bytes, more than a model file holds")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, struct.error, EOFError):
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint (corrupt or truncated?)"
        ) from None
    spans = sorted(_entry_span(info, data, path) for info in infos)
    for (_, end, name), (start, _, next_name) in zip(spans, spans[1:], strict=False):
        if start < end:
            _refuse(path, f"its entries {name} and {next_name} share bytes")
    return archive


def _entry_span(info: zipfile.ZipInfo, data: bytes, path: Path) -> tuple[int, int, str]:
    """(where the entry's local header starts, where its bytes end, its name), once it is checked."""
    name = info.filename
    if info.compress_type != zipfile.ZIP_STORED:
        method = METHODS.get(info.compress_type, f"method {info.compress_type}")
        _refuse(path, f"its entry {name} is compressed ({method})")
    if info.flag_bits & 0x1:
        _refuse(path, f"its entry {name} is encrypted")
    if name.endswith(".pkl") and info.file_size > MAX_PICKLE_BYTES:
        raise CheckpointError(
            f"refusing to load {path}: its pickle {name} is {info.file_size:,} bytes, over the limit of "
            f"{MAX_PICKLE_BYTES:,} bytes for a model file's record"
        )
    if info.compress_size != info.file_size:
        _refuse(path, f"its entry {name} says {info.file_size:,} bytes but stores {info.compress_size:,}")
    start = info.header_offset
    if start < 0 or start + LOCAL_HEADER.size > len(data):
        _refuse(path, f"its entry {name} lies outside the file")
    magic, _, _, method, *_, name_length, extra_length = LOCAL_HEADER.unpack_from(data, start)
    if magic != ZIP_MAGIC or method != zipfile.ZIP_STORED:
        _refuse(path, f"its entry {name} has a local header that disagrees with the directory")
    end = start + LOCAL_HEADER.size + name_length + extra_length + info.compress_size
    if end > len(data):
        _refuse(path, f"its entry {name} lies outside the file")
    return start, end, name


def _directory_size(data: bytes) -> tuple[int, int] | None:
    """(entries, bytes) of the central directory, the larger of what the end record and a zip64 end
    record say (zipfile believes the zip64 one); None where there is no end record."""
    found = data.rfind(b"PK\x05\x06", max(0, len(data) - END_RECORD.size - 0xFFFF))
    if found < 0 or found + END_RECORD.size > len(data):
        return None
    _, _, _, _, entries, size, _, _ = END_RECORD.unpack_from(data, found)
    locator = found - 20
    if locator >= ZIP64_END_RECORD.size and data[locator : locator + 4] == ZIP64_LOCATOR_MAGIC:
        record = ZIP64_END_RECORD.unpack_from(data, locator - ZIP64_END_RECORD.size)
        if record[0] == b"PK\x06\x06":
            entries, size = max(entries, record[7]), max(size, record[8])
    return entries, size


def _refuse(path: Path, why: str) -> NoReturn:
    raise CheckpointError(
        f"refusing to load {path}: {why}; lenet reads only archives whose entries are stored as is, "
        "as torch writes them"
    )
