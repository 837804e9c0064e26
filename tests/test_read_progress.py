"""`lenet read`'s progress bar follows the reading: each image is counted as it is read, not before."""

import tqdm

import lenet_cli.inference.numbers as numbers
from lenet_cli.core.errors import ImageError
from lenet_cli.inference.number_files import read_files


def test_the_bar_moves_as_each_image_is_read(tmp_path, monkeypatch):
    paths = []
    for index in range(3):
        paths.append(tmp_path / f"{index}.png")
        paths[-1].write_bytes(b"not an image")
    handed_out = []

    class Bar:
        """tqdm's iteration, counting what it has handed out."""

        def __init__(self, iterable, **options):
            self.iterable = iterable

        def __iter__(self):
            for item in self.iterable:
                handed_out.append(item)
                yield item

    def read_source(model, source, invert, length):
        read.append(len(handed_out))
        raise ImageError("cannot decode image")

    read = []
    monkeypatch.setattr(tqdm, "tqdm", Bar)
    monkeypatch.setattr(numbers, "read_source", read_source)
    readings = read_files(None, paths, show_progress=True)
    assert [reading.error for reading in readings] == ["cannot decode image"] * 3
    assert read == [1, 2, 3]  # when image i is read, the bar has counted i images, not all of them
