"""The package's layout: layers in folders, each standing above what it imports.

Reads the imports of every module under src/lenet_fast (lazy imports inside functions
included) and checks that they form no loop; that no module imports a name from a
package's ``__init__`` that the ``__init__`` only hands on (the top one imports the
model and the trainer, so anything it hands on would tie the importer to the top of the
package; the faces of the others are for users); that no module imports through a short public path (`lenet_fast._paths`);
that each layer folder imports only from the layers below it; and that no module is
over 600 lines.
"""

import importlib
import sys

import pytest

from import_graph import LAYERS, MAX_LINES, PACKAGE, layer_of, read_graph

@pytest.fixture(scope="module")
def graph():
    if not PACKAGE.is_dir():
        pytest.skip("the package sources are not in this checkout")
    return read_graph()


def test_no_module_imports_from_a_package_init(graph):
    offenders = {name: names for name, (_, names, _) in graph.items() if names}
    assert not offenders, f"import these from the module that defines them: {offenders}"


def test_no_module_imports_through_a_short_path(graph):
    offenders = {name: short for name, (_, _, short) in graph.items() if short}
    assert not offenders, f"import these from their homes (lenet_fast._paths.PUBLIC): {offenders}"


def test_no_import_loops(graph):
    edges = {name: sorted(deps & set(graph)) for name, (deps, _, _) in graph.items()}
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
    assert len(state) == len(edges) > 40


def test_every_layer_imports_only_from_the_layers_below(graph):
    upward = sorted(f"{name} -> {dep}" for name, (deps, _, _) in graph.items()
                    for dep in deps if layer_of(dep) > layer_of(name) and name != "lenet_fast.__main__")
    assert not upward, "imports that run up a layer: " + "; ".join(upward)


def test_every_module_is_in_a_layer_folder_or_the_ground():
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top == {"__init__", "__main__", "_version", "_paths", "_isa"}
    assert {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} == set(LAYERS)


def test_no_module_over_600_lines():
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines())
             for p in PACKAGE.rglob("*.py")}
    assert not {p: n for p, n in sizes.items() if n > MAX_LINES}
    assert len(sizes) > 40


def test_short_paths_are_the_homes_themselves():
    from lenet_fast import _paths

    for short, home in _paths.PUBLIC.items():
        assert (PACKAGE.joinpath(*home.split(".")).with_suffix(".py").is_file()
                or (PACKAGE.joinpath(*home.split(".")) / "__init__.py").is_file()), home
        try:
            module = importlib.import_module(f"lenet_fast.{short}")
        except ImportError as exc:  # an extra that is not installed
            assert short in ("sklearn", "torch", "plot", "report"), exc
            continue
        assert module is importlib.import_module(f"lenet_fast.{home}")
        assert sys.modules[f"lenet_fast.{short}"] is module
        assert getattr(importlib.import_module("lenet_fast"), short) is module


def test_a_name_outside_the_table_is_no_short_path():
    import lenet_fast

    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("lenet_fast.tables")  # lives in lenet_fast.kernels.tables
    with pytest.raises(AttributeError):
        lenet_fast.no_such_module  # noqa: B018
