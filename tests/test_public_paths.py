"""One public path per object, and every ``lenet_fast.X`` that the code and the pages name
resolves.

A public path is ``lenet_fast.<...>.<name>`` with no part starting with an underscore: a
name of a public module's ``__all__`` (a module without one: the functions and classes it
defines), the rule of the API reference (docs/source/apilist.py). The old paths of
``lenet_fast._moved.MOVED`` still import for one release, with a DeprecationWarning.
"""

import importlib
import inspect
import pkgutil
import re
import warnings
from pathlib import Path

import pytest

import lenet_fast
from lenet_fast._moved import MOVED

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("lenet_fast.sklearn", "lenet_fast.torch", "lenet_fast.plot", "lenet_fast.report")
#: lenet_fast.X as the text names it, and what may follow it; a trailing dot ends a sentence
REFERENCE = re.compile(r"\blenet_fast(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


def public_modules():
    """Every public module's name: lenet_fast, its MODULES and their public submodules."""
    names = ["lenet_fast"]
    for info in pkgutil.walk_packages(lenet_fast.__path__, "lenet_fast."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts[1:]) or info.name in MOVED:
            continue
        names.append(info.name)
    return names


def _import(name):
    try:
        return importlib.import_module(name)
    except ImportError:  # an extra that is not installed
        assert name in EXTRAS, name
        return None


def public_names(module):
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, obj in vars(module).items() if not n.startswith("_")
                 and (inspect.isfunction(obj) or inspect.isclass(obj))
                 and obj.__module__ == module.__name__]
    return names


def test_the_public_modules_are_the_ones_listed():
    listed = {f"lenet_fast.{name}" for name in lenet_fast.MODULES}
    top = {name for name in public_modules() if name.count(".") == 1}
    assert top == listed
    for name in ("lenet_fast.bench.busy", "lenet_fast.bench.time_to_accuracy",
                 "lenet_fast.reproduce.page", "lenet_fast.reproduce.summary"):
        assert name in public_modules()


@pytest.mark.parametrize("name", ["lenet_fast", "lenet_fast.bench", "lenet_fast.serve",
                                  "lenet_fast.reproduce", *(f"lenet_fast.{m}" for m in (
                                      "ops", "reference", "datasets", "optim", "metrics",
                                      "recipes", "sklearn", "torch", "plot"))])
def test_the_package_and_its_public_modules_list_their_names(name):
    module = _import(name)
    if module is None:
        pytest.skip(f"{name} needs an extra")
    assert isinstance(module.__all__, list) and module.__all__
    for attr in module.__all__:
        assert hasattr(module, attr), f"{name}.__all__ names {attr}, which it has not"


def test_every_public_object_has_one_public_path():
    paths = {}
    for name in public_modules():
        module = _import(name)
        if module is None:
            continue
        for attr in public_names(module):
            obj = getattr(module, attr)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                paths.setdefault(id(obj), []).append(f"{name}.{attr}")
    twice = sorted(", ".join(p) for p in paths.values() if len(p) > 1)
    assert not twice, "objects under two public paths: " + "; ".join(twice)
    assert len(paths) > 150


def test_the_public_modules_are_attributes_of_the_package():
    for name in lenet_fast.MODULES:
        module = _import(f"lenet_fast.{name}")
        if module is not None:
            assert getattr(lenet_fast, name) is module
    with pytest.raises(AttributeError):
        lenet_fast.no_such_module  # noqa: B018
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("lenet_fast.tables")  # private: lenet_fast._compute.tables


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_path_warns_and_still_works(old):
    import sys

    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=re.escape(MOVED[old][1])):
        module = importlib.import_module(old)
    home = importlib.import_module(MOVED[old][0])
    name = next(n for n in public_names(home) if not n.startswith("_"))
    assert getattr(module, name) is getattr(home, name)


def test_lenet_fast_model_hands_on_the_model_with_a_warning():
    from lenet_fast import model

    with pytest.warns(DeprecationWarning, match="use lenet_fast.LeNet5"):
        assert model.LeNet5 is lenet_fast.LeNet5


def _resolves(reference):
    """Whether dotted `reference` names a module or an attribute path that exists; "old"
    if it does through a path that warns (DeprecationWarning)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DeprecationWarning)
        found = _find(reference)
    return "old" if found and caught else found


def _find(reference):
    parts = reference.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError as exc:
            if ".".join(parts[:cut]) in EXTRAS:
                return True  # an extra that is not installed
            if exc.name is not None and not ".".join(parts[:cut]).startswith(exc.name):
                raise
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def _texts():
    """(where, text) of every source, page and example that may name lenet_fast.X."""
    files = [*(ROOT / "src" / "lenet_fast").rglob("*.py"), ROOT / "README.md",
             ROOT / "CONTRIBUTING.md", *(ROOT / "docs" / "source").rglob("*.md"),
             *(ROOT / "docs" / "source").glob("*.py"), *(ROOT / "tests" / "cli_help").glob("*"),
             *(ROOT / "scripts").glob("*.py"), *(ROOT / "benchmarks").glob("*.py")]
    return [(str(p.relative_to(ROOT)), p.read_text()) for p in files if p.is_file()]


def test_every_named_lenet_fast_path_resolves():
    texts = _texts()
    if len(texts) < 20:
        pytest.skip("the sources and pages are not in this checkout")
    bad, old = [], []
    for where, text in texts:
        for match in REFERENCE.finditer(text):
            reference = match.group(0)
            if text[match.end():match.end() + 1] in "<{*" or reference.endswith("_"):
                continue  # a pattern: lenet_fast._kernels_<path>
            if text[match.end():match.end() + 1] == "/":
                continue  # a folder, no import path: a wheel's lenet_fast.libs/
            if text[match.start() - 1] == text[match.end()] == '"':
                continue  # a key in a file's metadata ("lenet_fast.config"), no path
            found = _resolves(reference)
            if not found:
                bad.append(f"{where}: {reference}")
            elif found == "old" and not where.endswith("_moved.py"):
                old.append(f"{where}: {reference}")
    assert not bad, "names that do not resolve: " + "; ".join(sorted(set(bad)))
    assert not old, "old paths (they warn) named: " + "; ".join(sorted(set(old)))


def test_a_path_that_does_not_resolve_is_caught():
    assert _resolves("lenet_fast.ops.conv_forward") is True
    assert _resolves("lenet_fast.model.LeNet5") == "old"
    assert _resolves("lenet_fast.LeNet5.fit") or _resolves("lenet_fast.LeNet5.save")
    assert not _resolves("lenet_fast.codes")
    assert not _resolves("lenet_fast.ops.no_such_kernel")
