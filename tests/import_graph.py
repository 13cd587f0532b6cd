"""The import graph of src/lenet_fast, read from the sources: which module imports which.

Used by tests/test_structure.py (the layout's rules) and by the documentation's drawing
of the layers (docs/source/layers_svg.py). Reads imports as text (lazy imports inside
functions included); runs nothing of the package.
"""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "lenet_fast"

#: The folders, from the ground up: the private layers, then the public packages and the
#: command. The private top-level modules (the version, the compiled kernels, build facts,
#: the table of moved paths) stand below them all; the public top-level modules (the
#: faces that hand on the layers' names: ``lenet_fast.ops``, ...) above them all.
LAYERS = ("_compute", "_io", "_model", "_training", "_interop", "_figures", "bench", "serve",
          "reproduce", "cli")
#: The size above which a module is listed in the structure test's report.
LARGE_LINES = 500


def _modules():
    """Dotted name -> path of every module (a package: its __init__.py)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    compiled = {p.stem for p in (PACKAGE.parents[1] / "csrc").glob("*.pyx")}
    compiled |= {p.name.split(".")[0] for p in PACKAGE.glob("*.so")}
    return found, {f"lenet_fast.{name}" for name in compiled}


def _defined(path):
    """The names a module defines itself (functions, classes, assignments)."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def _imports(name, path, modules, compiled):
    """(modules imported, names imported from a package __init__, imports of modules that
    do not exist)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    known = set(modules) | compiled
    found, from_init, missing = set(), [], []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("lenet_fast"):
                continue
            if target not in known:
                missing.append(target)
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in known:
                    found.add(sub)
                elif target in compiled or modules[target].name != "__init__.py":
                    found.add(target)
                elif target == "lenet_fast" or alias.name not in _defined(modules[target]):
                    from_init.append(f"{target}.{alias.name}")  # handed on by an __init__
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("lenet_fast."):
                    (found.add(alias.name) if alias.name in known else missing.append(alias.name))
    return found & set(modules), from_init, missing


def read_graph():
    """Dotted module name -> (modules it imports, names it takes from an __init__ that
    only hands them on, imports of modules that do not exist), for every module but the
    package's own __init__."""
    modules, compiled = _modules()
    return {name: _imports(name, path, modules, compiled) for name, path in modules.items()
            if name != "lenet_fast"}


def is_face(name):
    """Whether `name` is a public top-level module (``lenet_fast.ops``, ...: a file beside
    the package's ``__init__``, not a folder, whose name has no leading underscore)."""
    parts = name.split(".")
    return len(parts) == 2 and parts[1] not in LAYERS and not parts[1].startswith("_")


def layer_of(name):
    """The index of `name`'s layer in LAYERS; -1 for the private top-level modules and
    len(LAYERS) for the public ones (`is_face`) and ``__main__``."""
    parts = name.split(".")
    if len(parts) > 2 or parts[-1] in LAYERS:
        return LAYERS.index(parts[1])
    return len(LAYERS) if is_face(name) or parts[1] == "__main__" else -1
