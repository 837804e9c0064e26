"""The shape the code keeps: imports that run downward, small modules, classes and functions, and start-up
that imports neither torch nor matplotlib."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "lenet_cli"
MAX_MODULE_LINES, MAX_CLASS_LINES, MAX_FUNCTION_LINES = 400, 150, 60

# From the ground up; a module may import from its own layer or lower ones, never from a higher one.
LAYERS = [
    ("records and settings", {"__init__", "errors", "config", "records"}),
    (
        "leaf mechanisms",
        set("model data files reading image_ops preprocess device interrupts distributed summary plots".split()),
    ),
    ("file formats", {"checkpoint", "model_files", "folders", "run_folder"}),
    (
        "jobs",
        set("evaluate predict export own_images loop recipe training_data reporters batching workers serve serving".split()),
    ),
    ("orchestration", {"train", "server"}),
    ("faces", {"cli", "edge", "options", "render", "__main__"}),
]
LAYER_OF = {module: number for number, (_, modules) in enumerate(LAYERS) for module in modules}


def modules() -> dict[str, ast.Module]:
    return {path.stem: ast.parse(path.read_text()) for path in sorted(PACKAGE.glob("*.py"))}


def lenet_imports(tree: ast.Module) -> set[str]:
    """Every lenet_cli module `tree` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lenet_cli"):
            parts = node.module.split(".")
            if len(parts) > 1:
                found.add(parts[1])
            else:
                found.update(
                    alias.name if alias.name != "__version__" else "__init__" for alias in node.names
                )
        elif isinstance(node, ast.Import):
            found.update(
                alias.name.split(".")[1] for alias in node.names if alias.name.startswith("lenet_cli.")
            )
    return found


def test_every_module_has_a_layer_and_imports_run_downward():
    graph = {name: lenet_imports(tree) for name, tree in modules().items()}
    assert sorted(set(graph) - set(LAYER_OF)) == [], "place new modules in LAYERS"
    upward = [
        f"{name} ({LAYERS[LAYER_OF[name]][0]}) imports {target} ({LAYERS[LAYER_OF[target]][0]})"
        for name, targets in graph.items()
        for target in targets
        if LAYER_OF[target] > LAYER_OF[name]
    ]
    assert upward == []


def test_the_import_graph_has_no_cycle():
    graph = {name: lenet_imports(tree) for name, tree in modules().items()}
    finished: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        assert name not in path, f"import cycle: {' -> '.join([*path, name])}"
        if name not in finished:
            for target in sorted(graph.get(name, ())):  # a package folder (serving/) has no entry yet
                visit(target, [*path, name])
            finished.add(name)

    for name in graph:
        visit(name, [])


def test_modules_classes_and_functions_stay_small():
    too_long = []
    for name, tree in modules().items():
        lines = len((PACKAGE / f"{name}.py").read_text().splitlines())
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{name}.py ({lines} lines)")
        for node in ast.walk(tree):
            limit = {ast.ClassDef: MAX_CLASS_LINES, ast.FunctionDef: MAX_FUNCTION_LINES}.get(
                type(node), MAX_FUNCTION_LINES if isinstance(node, ast.AsyncFunctionDef) else None
            )
            if limit is None:
                continue
            first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
            length = node.end_lineno - first + 1
            if length > limit:
                too_long.append(f"{name}.py:{node.lineno} {node.name} ({length} lines)")
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
