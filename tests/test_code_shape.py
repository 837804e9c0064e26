"""The shape the code keeps: subsystem boundaries (import-linter's contracts in pyproject.toml), no import
cycle, small modules, classes and functions, and start-up that imports neither torch nor matplotlib."""

import ast
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "lenet_cli"
MAX_MODULE_LINES, MAX_CLASS_LINES, MAX_FUNCTION_LINES = 400, 150, 60
MAX_TOP_LEVEL_ENTRIES = 10  # eight subsystem packages, __init__.py and __main__.py


def test_the_import_contracts_hold():
    # In a process of its own: lint-imports configures logging with dictConfig, which would silence the
    # loggers other tests read. It reads pyproject.toml from the working directory.
    probe = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:]


def test_the_import_graph_has_no_cycle():
    graph = grimp.build_graph("lenet_cli", exclude_type_checking_imports=True)
    imports = {module: graph.find_modules_directly_imported_by(module) for module in graph.modules}
    finished: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        assert name not in path, f"import cycle: {' -> '.join([*path, name])}"
        if name not in finished:
            for target in sorted(imports[name]):
                visit(target, [*path, name])
            finished.add(name)

    for name in sorted(imports):
        visit(name, [])


def test_the_package_shows_its_subsystems_at_the_top():
    entries = sorted(path.name for path in PACKAGE.iterdir() if path.name != "__pycache__")
    assert len(entries) <= MAX_TOP_LEVEL_ENTRIES, entries


def test_modules_classes_and_functions_stay_small():
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE)
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_long.append(f"{name} ({len(text.splitlines())} lines)")
        for node in ast.walk(ast.parse(text)):
            limit = {ast.ClassDef: MAX_CLASS_LINES, ast.FunctionDef: MAX_FUNCTION_LINES}.get(
                type(node), MAX_FUNCTION_LINES if isinstance(node, ast.AsyncFunctionDef) else None
            )
            if limit is None:
                continue
            first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
            length = node.end_lineno - first + 1
            if length > limit:
                too_long.append(f"{name}:{node.lineno} {node.name} ({length} lines)")
    assert too_long == []


def test_help_imports_neither_torch_nor_matplotlib():
    probe = (
        "import sys; from lenet_cli.cli import app\n"
        "try:\n    app(['--help'], prog_name='lenet')\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'matplotlib', 'onnx', 'onnxruntime', 'fastapi', 'uvicorn')"
        " if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"
