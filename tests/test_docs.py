"""The Python examples in the README and docs run as written, through the public API only, on a tiny
dataset in place of MNIST."""

import random
import re
from pathlib import Path

import pytest
from drawing import draw_digit

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", ROOT / "docs" / "architecture.md"]


def python_examples(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_python_examples_use_only_the_public_api_and_run(page, tiny_mnist, tmp_path, monkeypatch):
    examples = python_examples(page)
    assert examples, f"{page.name} has no Python example"
    monkeypatch.chdir(tmp_path)
    draw_digit(3, random.Random(0)).save(tmp_path / "digit.png")
    for code in examples:
        imports = re.findall(r"^from (\S+) import", code, flags=re.M)
        assert set(imports) == {"lenet_cli"}, imports
        code = code.replace("../shared/data/mnist", str(tiny_mnist)).replace("epochs=5", "epochs=1")
        code = code.replace('{"epochs": 8}', '{"epochs": 2}')
        # the example resumes a run stopped by Ctrl-C: here, the run it just trained
        code = code.replace('"checkpoints/run-3/last.pt"', "str(result.checkpoint)")
        exec(compile(code, str(page), "exec"), {})
