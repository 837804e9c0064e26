"""The torch-free path: every module `lenet read`, `lenet predict`, `lenet summary` and `lenet explain`
(occlusion, on the terminal) load without torch is in the import-linter contract that keeps torch out
(pyproject.toml), and each imports with torch blocked."""

import json
import random
import tomllib
from pathlib import Path

from drawing import draw_digit
from PIL import Image
from without_torch import run_without_torch

ROOT = Path(__file__).parent.parent
CONTRACT = "The modules lenet read, predict, summary and explain load without torch never import it"
# Loaded, but not torch-free by contract: the packages' own __init__ and the command table, whose
# commands each import their work (torch's included) when they run.
NOT_IN_CONTRACT = {"lenet_cli.cli.commands"}


def torch_free_modules() -> list[str]:
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = (contract for contract in settings["contracts"] if contract["name"] == CONTRACT)
    assert contract["forbidden_modules"] == ["torch"]
    return contract["source_modules"]


def test_every_module_of_the_contract_imports_with_torch_blocked():
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    result = run_without_torch(code, *torch_free_modules())
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_contract_lists_every_module_read_predict_and_summary_load(tmp_path):
    number, digit = tmp_path / "number.png", tmp_path / "digit.png"
    pictures = [draw_digit(label, random.Random(label)) for label in (4, 7)]
    pictures[0].save(digit)
    field = Image.new(pictures[0].mode, (pictures[0].width * 2, pictures[0].height), "white")
    field.paste(pictures[0], (0, 0))
    field.paste(pictures[1], (pictures[0].width, 0))
    field.save(number)
    code = (
        "import json, sys\n"
        "from lenet_cli.cli import app\n"
        "for args in (['read', sys.argv[1]], ['predict', sys.argv[2]], ['summary'], ['explain', sys.argv[2]]):\n"
        "    try:\n"
        "        app(args, prog_name='lenet')\n"
        "    except SystemExit as stop:\n"
        "        assert not stop.code, stop.code\n"
        "print(json.dumps(sorted(name for name, module in sys.modules.items()\n"
        "    if name.startswith('lenet_cli') and not hasattr(module, '__path__'))))\n"
    )
    result = run_without_torch(code, str(number), str(digit), cwd=tmp_path)  # no checkpoints/ here
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = set(json.loads(result.stdout.splitlines()[-1]))
    assert "lenet_cli.inference.numbers" in loaded and "lenet_cli.inference.numpy_forward" in loaded
    assert sorted(loaded - NOT_IN_CONTRACT - set(torch_free_modules())) == []
