"""The shape the code keeps: short functions, and start-up that imports neither torch nor matplotlib."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "lenet_cli"
MAX_FUNCTION_LINES = 60


def test_no_function_is_over_60_lines():
    too_long = []
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
                length = node.end_lineno - first + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.name}:{node.lineno} {node.name} ({length} lines)")
    assert too_long == []


def test_help_imports_neither_torch_nor_matplotlib():
    probe = (
        "import sys; from lenet_cli.cli import app\n"
        "try:\n    app(['--help'], prog_name='lenet')\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'matplotlib', 'onnx', 'onnxruntime') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"
