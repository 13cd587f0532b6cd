"""The package's layout: private layers in folders, each standing above what it imports,
then the public packages and the command, and the public modules on top.

Reads the imports of every module under src/lenet_fast (lazy imports inside functions
included) and checks that they form no loop; that no module imports a name from a
package's ``__init__`` that the ``__init__`` only hands on (the top one imports the
model and the trainer, so anything it hands on would tie the importer to the top of the
package; the faces of the others are for users); that no module imports a module that
does not exist; that each folder imports only from the folders below it, and no code in
them from a public top-level module (those hand the layers' names on to users); that no
module imports another's private (underscored) name; and that nothing installs an import
hook (a module's own private names may be shared only from a helper module whose name
starts with an underscore, such as ``cli/_common.py``). The largest modules are listed in the test output (``pytest -s`` or ``-rA``
shows it): size guides where code goes, it does not decide.
"""

import ast

import pytest

from import_graph import LARGE_LINES, LAYERS, PACKAGE, is_face, layer_of, read_graph


@pytest.fixture(scope="module")
def graph():
    if not PACKAGE.is_dir():
        pytest.skip("the package sources are not in this checkout")
    return read_graph()


def _sources():
    return {p: p.read_text() for p in PACKAGE.rglob("*.py")}


def test_no_module_imports_from_a_package_init(graph):
    offenders = {name: names for name, (_, names, _) in graph.items()
                 if names and not is_face(name)}
    assert not offenders, f"import these from the module that defines them: {offenders}"


def test_every_imported_module_exists(graph):
    offenders = {name: missing for name, (_, _, missing) in graph.items() if missing}
    assert not offenders, f"imports of modules that do not exist: {offenders}"


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
                    for dep in deps if layer_of(dep) > layer_of(name))
    assert not upward, "imports that run up a layer: " + "; ".join(upward)
    into_faces = sorted(f"{name} -> {dep}" for name, (deps, _, _) in graph.items()
                        for dep in deps if is_face(dep) and not is_face(name))
    assert not into_faces, "import these from the layers, not the public modules: " + \
        "; ".join(into_faces)


def test_every_module_is_in_a_folder_or_the_top():
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert folders == set(LAYERS)
    assert not [p for p in PACKAGE.iterdir() if p.is_dir() and p.name not in LAYERS
                and not p.name.startswith("__")]  # no folder outside the layers
    private = {p.stem for p in PACKAGE.glob("_*.py")}
    assert private == {"__init__", "__main__", "_version", "_isa", "_moved"}


def test_no_module_imports_a_private_name_of_another():
    offenders = []
    for path, text in _sources().items():
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.ImportFrom):
                continue
            if not (node.level or (node.module or "").startswith("lenet_fast")):
                continue
            if (node.module or "").rpartition(".")[2].startswith("_"):
                continue  # a helper module of its folder: its names are shared there
            offenders += [f"{path.relative_to(PACKAGE)}: {alias.name}" for alias in node.names
                          if alias.name.startswith("_") and not alias.name.startswith("__")
                          and not _is_module(path, node, alias.name)]
    assert not offenders, "private names used across modules: " + "; ".join(offenders)


def _is_module(path, node, name):
    """Whether ``from <node's module> import name`` in file `path` imports a module."""
    if node.level:
        base = path.parent
        for _ in range(node.level - 1):
            base = base.parent
    else:
        base = PACKAGE.parent
    base = base.joinpath(*[p for p in (node.module or "").split(".") if p])
    return (base / f"{name}.py").is_file() or (base / name / "__init__.py").is_file() or \
        any(base.glob(f"{name}.*.so")) or (PACKAGE.parents[1] / "csrc" / f"{name}.pyx").is_file()


def test_no_import_hook():
    hooks = [str(p.relative_to(PACKAGE)) for p, text in _sources().items()
             if "meta_path" in text or "path_hooks" in text]
    assert not hooks, f"import hooks: {hooks}"


def test_largest_modules_report(capsys):
    sizes = sorted(((len(p.read_text().splitlines()), str(p.relative_to(PACKAGE)))
                    for p in PACKAGE.rglob("*.py")), reverse=True)
    assert len(sizes) > 40
    with capsys.disabled():
        print(f"\nmodules over {LARGE_LINES} lines (size guides, it does not decide):")
        for lines, name in sizes:
            if lines > LARGE_LINES:
                print(f"  {lines:5d}  {name}")


def test_no_fixture_is_named_like_a_test():
    """pytest collects a function named test_* as a test; a fixture so named is read as
    one by people and tools (and the two names clash)."""
    root = PACKAGE.parents[1]
    named = []
    for path in [*(root / "tests").glob("*.py"), *(root / "benchmarks").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_") and any(
                    "fixture" in ast.unparse(d) for d in node.decorator_list):
                named.append(f"{path.name}: {node.name}")
    assert not named, f"fixtures named test_*: {named}"
