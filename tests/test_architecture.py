"""The layout's rules, checked on the source: packages import only downwards, modules import in no circle,
and `import edgecompress` stays light.

Layers, lowest first (docs/architecture.md draws them). A module may import its own layer and the layers
below it, lazily inside a function too: a lazy import still couples the code, and so does a module named in
a string for importing later (a registry's "package.module:function", a lazy package's name table).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "edgecompress"

LAYERS = [
    ("foundation", ["core.errors", "core.seeding", "core.sizes", "core.progress", "core.verbosity", "storage", "untrusted", "onnx.tensors"]),
    ("runtime", ["runtime"]),
    ("core", ["core"]),
    ("graph", ["onnx", "delivery"]),
    ("techniques", ["techniques"]),
    ("families", ["families"]),
    ("reporting", ["reporting", "inspect"]),
    ("orchestration", ["orchestration"]),
    ("interface", ["cli", ""]),
]


def _layer(module: str) -> int:
    """Index in LAYERS of `module` (edgecompress.x.y), by its longest listed prefix."""
    name = module.removeprefix("edgecompress").removeprefix(".")
    best, index = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".") or prefix == "") and len(prefix) > best:
                best, index = len(prefix), i
    return index


def _modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


_NAMED_MODULE = re.compile(r"(edgecompress(?:\.\w+)+)(?::\w+)?")


def _imports(path: Path) -> set[str]:
    """Every edgecompress module `path` imports, at any depth of the file, or names in a string to import."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("edgecompress") and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # `from pkg import module`
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if alias.name.startswith("edgecompress"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and (named := _NAMED_MODULE.fullmatch(node.value)):
            names.add(named.group(1))
    return names


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def test_every_module_has_a_layer():
    assert [m for m in _modules() if _layer(m) is None] == []


def test_packages_import_only_their_own_layer_and_lower_ones():
    upward = [
        f"{module} ({LAYERS[_layer(module)][0]}) imports {target} ({LAYERS[_layer(target)][0]})"
        for module, targets in _graph().items() for target in sorted(targets) if _layer(target) > _layer(module)
    ]
    assert upward == []


def test_no_module_is_part_of_an_import_circle():
    graph = {m: {t for t in targets if not graph_is_package(t)} for m, targets in _graph().items()}
    circles = set()
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            node, trail = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    circles.add(" -> ".join(sorted(trail)))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, trail + [nxt]))
    assert sorted(circles) == []


def graph_is_package(module: str) -> bool:
    """A package's __init__ re-exports its modules: importing it is not a circle of the modules themselves."""
    return (SRC.parent / Path(*module.split(".")) / "__init__.py").is_file()


def test_import_edgecompress_stays_light():
    """The CLI's --help and a user's `import edgecompress` pay for no runtime they do not use yet."""
    heavy = ["onnxruntime", "matplotlib", "torch_pruning", "transformers"]
    code = f"import sys, edgecompress; print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_top_level_names_resolve():
    import edgecompress as ec

    assert all(getattr(ec, name) is not None for name in ec.__all__)
    assert {"compress", "sweep", "fit", "pack", "unpack", "load_recipe", "verify"} <= set(ec.__all__)
