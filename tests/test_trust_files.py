"""Model files that lie: archives that would unpack more than they hold, pickles that BUILD on what torch
never builds, keys that are not names, records that share one list many times. Each is refused with one
line naming the file, by every command that opens a model, the torch-free reader and torch's alike."""

import pickle
import zipfile
import zlib

import pytest
import torch
from helpers import invoke
from PIL import Image

from lenet_cli.core.model import LeNet5
from lenet_cli.formats import pt_archive
from lenet_cli.formats.checkpoint_rules import MAX_RECORD_DEPTH, MAX_RECORD_VALUES
from lenet_cli.formats.shipped import PRETRAINED

GENUINE = PRETRAINED
PICKLE = "archive/data.pkl"
ARCHIVE_RULE = "lenet reads only archives whose entries are stored as is, as torch writes them"
NOT_SAFE = "it holds Python objects that are not allowed in a safe checkpoint"


@pytest.fixture(scope="module")
def digit(tmp_path_factory):
    image = Image.new("L", (28, 28))
    image.paste(255, (12, 4, 16, 24))
    path = tmp_path_factory.mktemp("digit") / "one.png"
    image.save(path)
    return path


def opening_a_model(command, model, digit, folder):
    return {
        "predict": ["predict", digit, "-c", model],
        "read": ["read", digit, "-c", model],
        "summary": ["summary", model],
        "summary-json": ["summary", model, "--json"],
        "evaluate": ["evaluate", model, "--data-dir", folder],
        "export": ["export", model, "--output", folder / "out.onnx"],
    }[command]


def rewritten(target, entry_bytes=None, compress_type=None, change_directory=None):
    """A copy of the shipped checkpoint: data.pkl replaced by `entry_bytes` and/or compressed with
    `compress_type`; `change_directory(infos)` may then make the central directory lie."""
    with zipfile.ZipFile(GENUINE) as source, zipfile.ZipFile(target, "w") as archive:
        for entry in source.infolist():
            data = source.read(entry)
            if entry.filename == PICKLE:
                data = data if entry_bytes is None else entry_bytes
                archive.writestr(entry.filename, data, compress_type=compress_type or zipfile.ZIP_STORED)
            else:
                archive.writestr(entry.filename, data)
        if change_directory:
            change_directory(archive.infolist())
    return target


def genuine_pickle():
    with zipfile.ZipFile(GENUINE) as source:
        return source.read(PICKLE)


def lying_about_size(compress_type):
    """A stream of the genuine pickle and 1 MiB of zeros that says it holds the genuine pickle alone."""
    pickled = genuine_pickle()

    def lie(infos):
        info = next(info for info in infos if info.filename == PICKLE)
        info.file_size, info.CRC = len(pickled), zlib.crc32(pickled)

    return pickled + bytes(1 << 20), compress_type, lie


@pytest.fixture
def no_unpacking(monkeypatch):
    """Any attempt to unpack a compressed entry fails the test."""
    original = zipfile._get_decompressor

    def unpack(compress_type):
        assert compress_type == zipfile.ZIP_STORED, "a compressed entry was unpacked"
        return original(compress_type)

    monkeypatch.setattr(zipfile, "_get_decompressor", unpack)


@pytest.mark.parametrize("method", ["bzip2", "lzma"])
@pytest.mark.parametrize("command", ["predict", "read", "summary", "evaluate", "export"])
def test_a_stream_that_unpacks_to_more_than_it_says_is_refused_unopened(
    tmp_path, digit, method, command, no_unpacking
):
    compress_type = {"bzip2": zipfile.ZIP_BZIP2, "lzma": zipfile.ZIP_LZMA}[method]
    data, compress_type, lie = lying_about_size(compress_type)
    model = rewritten(tmp_path / "lying.pt", data, compress_type, lie)
    result = invoke(*opening_a_model(command, model, digit, tmp_path))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: refusing to load {model}: its entry {PICKLE} is compressed ({method}); {ARCHIVE_RULE}\n"
    )


def entry_named(infos, name):
    return next(info for info in infos if info.filename == f"archive/{name}")


def says_less_than_it_stores(infos):
    entry_named(infos, "data/4").file_size -= 1000


def lies_outside_the_file(infos):
    entry_named(infos, "data/4").header_offset = 10**9


def shares_bytes(infos):
    entry_named(infos, "data/5").header_offset = entry_named(infos, "data/4").header_offset


ARCHIVE_LIES = {
    "deflate": (None, zipfile.ZIP_DEFLATED, f"its entry {PICKLE} is compressed (deflate)"),
    "size": (
        says_less_than_it_stores,
        None,
        "its entry archive/data/4 says 191,000 bytes but stores 192,000",
    ),
    "outside": (lies_outside_the_file, None, "its entry archive/data/4 lies outside the file"),
    "shared": (shares_bytes, None, "its entries archive/data/5 and archive/data/4 share bytes"),
}


@pytest.mark.parametrize("lie", ARCHIVE_LIES)
@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_an_archive_that_torch_save_would_not_write_is_refused(tmp_path, digit, lie, command, no_unpacking):
    change, compress_type, why = ARCHIVE_LIES[lie]
    model = rewritten(tmp_path / "lying.pt", compress_type=compress_type, change_directory=change)
    result = invoke(*opening_a_model(command, model, digit, tmp_path))
    assert result.exit_code == 1
    assert result.stderr == f"Error: refusing to load {model}: {why}; {ARCHIVE_RULE}\n"


def test_a_directory_listing_more_entries_than_a_model_has_is_refused_before_it_is_parsed(tmp_path):
    data = bytearray(GENUINE.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    data[end + 8 : end + 12] = (pt_archive.MAX_ENTRIES + 1).to_bytes(2, "little") * 2
    model = tmp_path / "many.pt"
    model.write_bytes(bytes(data))
    result = invoke("summary", model)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: refusing to load {model}: it lists 10,001 entries in 1,003 bytes, more than a model file "
        f"holds; {ARCHIVE_RULE}\n"
    )


def test_a_pickle_over_its_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(pt_archive, "MAX_PICKLE_BYTES", 1024)  # the genuine one is 2,664 bytes
    result = invoke("summary", GENUINE)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: refusing to load {GENUINE}: its pickle {PICKLE} is 2,664 bytes, over the limit of 1,024 "
        "bytes for a model file's record\n"
    )


def built_on(global_line, state):
    """The genuine pickle with a BUILD of `state` on the object right after `global_line` (a GLOBAL)."""
    pickled = genuine_pickle()
    start = pickled.index(global_line) + len(global_line)
    build = pickle.dumps(state, protocol=2)[2:-1] + pickle.BUILD  # the state's opcodes, no PROTO or STOP
    return pickled[:start] + build + pickled[start:]


BUILDS = {
    "rebuild-defaults": (b"ctorch._utils\n_rebuild_tensor_v2\n", (None, {"__defaults__": (0, 0)})),
    "storage-dtype": (b"ctorch\nFloatStorage\n", {"dtype": ">f4"}),
    "storage-slot": (b"ctorch\nFloatStorage\n", (None, {"dtype": ">f4"})),
}


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("command", ["predict", "summary", "evaluate"])
def test_a_build_on_anything_torch_would_not_build_is_refused(tmp_path, digit, build, command):
    model = rewritten(tmp_path / "built.pt", built_on(*BUILDS[build]))
    result = invoke(*opening_a_model(command, model, digit, tmp_path))
    assert result.exit_code == 1
    assert result.stderr == f"Error: refusing to load {model}: {NOT_SAFE}\n"


def test_a_state_dicts_own_attributes_are_still_read(tmp_path, digit):
    """torch.save of model.state_dict(): an OrderedDict with `_metadata`, set by a BUILD."""
    model = tmp_path / "bare.pt"
    torch.save(LeNet5().state_dict(), model)
    result = invoke("predict", digit, "-c", model, "--json")
    assert result.exit_code == 0, result.output


def with_int_key(first):
    weights = dict(LeNet5().state_dict())
    extra = {7: torch.zeros(1)}
    return {**extra, **weights} if first else {**weights, **extra}


@pytest.mark.parametrize("first", [True, False])
@pytest.mark.parametrize("command", ["predict", "summary", "evaluate"])
def test_a_state_dict_key_that_is_not_a_name_is_refused(tmp_path, digit, first, command):
    model = tmp_path / "int-key.pt"
    torch.save({"format_version": 1, "model": with_int_key(first)}, model)
    result = invoke(*opening_a_model(command, model, digit, tmp_path))
    assert result.exit_code == 1
    assert result.stderr == f"Error: {model} is not a LeNet-5: its state_dict key 7 is not a name\n"


def test_a_bare_state_dict_with_a_key_that_is_not_a_name_is_refused(tmp_path, digit):
    model = tmp_path / "int-key.pt"
    torch.save(with_int_key(first=True), model)
    result = invoke("predict", digit, "-c", model)
    assert result.stderr == f"Error: {model} is not a LeNet-5: its state_dict key 7 is not a name\n"


def checkpoint_with(tmp_path, **record):
    model = tmp_path / "record.pt"
    torch.save({"format_version": 1, "model": LeNet5().state_dict(), **record}, model)
    return model


def shared_list(levels):
    """A list of two references to a list of two references ...: 2**levels leaves, a tiny pickle."""
    shared = ["x"]
    for _ in range(levels):
        shared = [shared, shared]
    return shared


def nested_list(levels):
    nested = []
    for _ in range(levels):
        nested = [nested]
    return nested


RECORD_TOO_LARGE = (
    f"holds a training record larger than lenet reads (over {MAX_RECORD_VALUES:,} values, shared ones "
    f"counted each time, or nested over {MAX_RECORD_DEPTH} deep)"
)


@pytest.mark.parametrize("record", ["shared", "nested"])
@pytest.mark.parametrize("command", ["summary-json", "summary", "predict", "evaluate"])
def test_a_record_that_would_print_without_end_is_refused(tmp_path, digit, record, command):
    value = shared_list(60) if record == "shared" else nested_list(MAX_RECORD_DEPTH + 5)
    model = checkpoint_with(tmp_path, epoch=value)
    assert model.stat().st_size < GENUINE.stat().st_size  # the pickle stays small
    result = invoke(*opening_a_model(command, model, digit, tmp_path))
    assert result.exit_code == 1
    assert result.stderr == f"Error: {model} {RECORD_TOO_LARGE}\n"


def test_a_record_sharing_a_list_a_few_times_is_read_whole(tmp_path):
    model = checkpoint_with(tmp_path, cuts={"shared": shared_list(4)})
    result = invoke("summary", model, "--json")
    assert result.exit_code == 0, result.output
    assert '"x"' in result.stdout and result.stdout.count('"x"') == 16


def test_a_record_key_that_json_cannot_write_is_refused(tmp_path):
    model = checkpoint_with(tmp_path, config={(1, 2): "a tuple key"})
    result = invoke("summary", model, "--json")
    assert result.exit_code == 1
    assert result.stderr == f"Error: {model} holds a record with a key lenet cannot show (a tuple)\n"


def test_a_checkpoint_key_that_is_not_a_name_is_refused(tmp_path, digit):
    model = tmp_path / "top-key.pt"
    torch.save({"format_version": 1, "model": LeNet5().state_dict(), 3: "three"}, model)
    result = invoke("predict", digit, "-c", model)
    assert result.exit_code == 1
    assert result.stderr == f"Error: {model} is not a lenet checkpoint: 3 is not a name\n"


def test_a_genuine_archive_passes_the_checks(no_unpacking):
    archive = pt_archive.checked_archive(GENUINE.read_bytes(), GENUINE)
    assert archive.read(PICKLE) == genuine_pickle()
