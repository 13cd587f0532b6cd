"""The package's import structure: every module stands above what it imports.

Reads the imports of each module of src/lenet_fast (lazy imports inside functions
included) and checks that they form no loop, and that no module imports from the
package's ``__init__`` (which imports the model and the trainer, so anything it hands
on would tie the importer to the top of the package).
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "lenet_fast"


def _imports(path, modules):
    """The package modules that the module at `path` imports, and whether it imports
    a name from the package's __init__."""
    found, from_init = set(), []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 or (node.level == 0 and (node.module or "").startswith("lenet_fast")):
                module = node.module if node.level == 1 else node.module[len("lenet_fast"):].lstrip(".")
                if module:
                    found.add(module.split(".")[0])
                else:  # from . import x: a submodule, else a name of __init__
                    for alias in node.names:
                        (found.add(alias.name) if alias.name in modules
                         else from_init.append(alias.name))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("lenet_fast."):
                    found.add(alias.name.split(".")[1])
    return found & modules, from_init


@pytest.fixture(scope="module")
def graph():
    if not PACKAGE.is_dir():
        pytest.skip("the package sources are not in this checkout")
    modules = {p.stem for p in PACKAGE.glob("*.py")} | {p.name.split(".")[0] for p in PACKAGE.glob("*.so")}
    modules |= {p.stem for p in (PACKAGE.parents[1] / "csrc").glob("*.pyx")}
    return {p.stem: _imports(p, modules) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}


def test_no_module_imports_from_the_package_init(graph):
    offenders = {name: names for name, (_, names) in graph.items() if names}
    assert not offenders, f"import these from the module that defines them: {offenders}"


def test_no_import_loops(graph):
    edges = {name: sorted(deps & set(graph)) for name, (deps, _) in graph.items()}
    state, path = {}, []

    def visit(name):
        state[name] = "open"
        path.append(name)
        for dep in edges[name]:
            if state.get(dep) == "open":
                loop = path[path.index(dep):] + [dep]
                pytest.fail("import loop: " + " -> ".join(loop))
            if dep not in state:
                visit(dep)
        path.pop()
        state[name] = "done"

    for name in sorted(edges):
        if name not in state:
            visit(name)
    assert len(state) == len(edges) > 20
