"""The layers hold: imports point downward, no private name crosses a module, and an
import sits inside a function only to load an optional package or to break a real cycle.

The layers, lowest first (../shared/design.md; docs/architecture.md):

0. errors, text, datasets, ops: no Tensor yet
1. tensor, transforms, numpy: the engine
2. nn, formula_lang, formula: models
3. losses, optim, history, training, compile, kernels, run, io: training and its record
4. scenario: a scenario file -> a Run's inputs
5. explain: sentences and derivations read from a Run
6. plots, export: figures and hand-over, read from a Run (plots may use explain)
7. lesson, cli, web: the front ends
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parent.parent / "src" / "chainrule"

LAYERS: dict[str, int] = {
    "errors": 0,
    "version": 0,
    "text": 0,
    "datasets": 0,
    "ops": 0,
    "tensor": 1,
    "transforms": 1,
    "numpy": 1,
    "nn": 2,
    "formula_lang": 2,
    "formula": 2,
    "losses": 3,
    "optim": 3,
    "history": 3,
    "training": 3,
    "compile": 3,
    "kernels": 3,
    "run": 3,
    "io": 3,
    "scenario": 4,
    "explain": 5,
    "plots": 6,
    "export": 6,
    "lesson": 7,
    "web": 7,
    "cli": 7,
    "__init__": 8,
    "__main__": 8,
}

#: Packages that a function may import when it needs them: chainrule runs without them
#: (or they are heavy, and importing chainrule stays light).
OPTIONAL = {
    "matplotlib",
    "rich",
    "safetensors",
    "sklearn",
    "torch",
    "onnx",
    "onnxruntime",
    "starlette",
    "uvicorn",
    "markdown_it",
    "nbclient",
    "nbformat",
    "playwright",
    "numba",
    "jax",
    "PIL",
}

#: Imports inside functions that break a real cycle, or load a part of chainrule that
#: imports an optional package at its top: (importing module, imported module).
CYCLES = {
    # A lesson's command block runs the CLI's own parser; the CLI plays lessons.
    ("chainrule.lesson.document", "chainrule.cli"),
    # `chainrule serve` starts the page's server (Starlette and uvicorn).
    ("chainrule.cli", "chainrule.web"),
    ("chainrule.web", "chainrule.web.app"),
    # The exporters import torch and onnx at their top.
    ("chainrule.export", "chainrule.export._torch"),
    ("chainrule.export", "chainrule.export._source"),
    ("chainrule.export", "chainrule.export._onnx"),
}


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        parts = path.relative_to(SOURCE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found.append((name, path))
    return found


def layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "chainrule":
        return None
    if len(parts) == 1:
        return LAYERS["__init__"]
    return LAYERS.get(parts[1])


def imported(node: ast.AST, module: str, is_package: bool) -> list[tuple[str, list[str]]]:
    """(module imported, names taken from it) for an import statement."""
    if isinstance(node, ast.Import):
        return [(alias.name, []) for alias in node.names]
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        base = module.split(".")
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    return [(target, [alias.name for alias in node.names])]


def submodule(package: str, name: str) -> bool:
    """Whether ``package.name`` is a module of chainrule (a file or a folder)."""
    folder = SOURCE.parent.joinpath(*package.split("."))
    return (folder / f"{name}.py").exists() or (folder / name).is_dir()


def in_function(tree: ast.AST) -> set[int]:
    """The ids of import nodes that sit inside a function."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for child in ast.walk(node):
                if isinstance(child, ast.Import | ast.ImportFrom):
                    inside.add(id(child))
    return inside


def problems() -> list[str]:
    found = []
    for module, path in modules():
        if module.split(".")[-1] == "conftest":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        own = layer(module)
        nested = in_function(tree)
        is_package = path.name == "__init__.py"
        own_package = module if is_package else module.rpartition(".")[0]
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target, names in imported(node, module, is_package):
                if target == "chainrule" and names:  # `from chainrule import ops`: a module
                    target = f"chainrule.{names[0]}" if submodule("chainrule", names[0]) else target
                top = target.split(".")[0]
                where = f"{path.relative_to(SOURCE.parent)}:{node.lineno}"
                if id(node) in nested and top not in OPTIONAL:
                    cycle = any(
                        module == a and (target == b or target.startswith(b + "."))
                        for a, b in CYCLES
                    )
                    if not cycle:
                        found.append(f"{where}: imports {target} inside a function")
                if top != "chainrule":
                    continue
                theirs = layer(target)
                if own is not None and theirs is not None and theirs > own:
                    found.append(f"{where}: {module} (layer {own}) imports {target} ({theirs})")
                private = [
                    n
                    for n in names
                    if n.startswith("_")
                    and not (n.startswith("__") and n.endswith("__"))  # __version__
                    and not (target == own_package and submodule(target, n))  # its own part
                ]
                if private:
                    found.append(f"{where}: imports the private {', '.join(private)} of {target}")
                segments = target.split(".")
                for i, segment in enumerate(segments):
                    if segment.startswith("_") and segment not in ("__init__", "__main__"):
                        owner = ".".join(segments[:i])
                        if not (own_package == owner or own_package.startswith(owner + ".")):
                            found.append(f"{where}: imports the private module {target}")
                        break
    return found


def test_imports_point_down_and_keep_private_names_private():
    found = problems()
    assert not found, "\n".join(found)


def test_the_check_sees_each_kind_of_problem(tmp_path, monkeypatch):
    # The check itself can fail: an upward, a private and an in-function import.
    package = tmp_path / "chainrule"
    (package / "explain").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "explain" / "__init__.py").write_text("")
    (package / "ops.py").write_text("from chainrule.explain import ledger\n")
    (package / "tensor.py").write_text("from chainrule.ops import _private\n")
    (package / "explain" / "a.py").write_text("def f():\n    import json\n")
    monkeypatch.setattr(__import__(__name__), "SOURCE", package)
    found = "\n".join(problems())
    assert "chainrule.ops (layer 0) imports chainrule.explain (5)" in found
    assert "imports the private _private of chainrule.ops" in found
    assert "imports json inside a function" in found


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_layer_names_a_module_that_exists(name):
    if name in ("__init__", "__main__"):
        return
    assert (SOURCE / f"{name}.py").exists() or (SOURCE / name).is_dir()


def test_the_architecture_page_names_every_layer_and_protocol_method():
    from chainrule.nn import Module

    page = (SOURCE.parent.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for name in LAYERS:
        if name not in ("__init__", "__main__"):
            assert f"`{name}" in page, name
    protocol = ["input_names", "feed", "at", "predict", "output_graph", "loss_graph"]
    for method in [*protocol, "named_nodes", "formula_lines", "output_name"]:
        assert hasattr(Module, method) and f"`{method}" in page, method
