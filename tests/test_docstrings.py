"""numpydoc's checks of every public docstring: the names the API reference documents
(docs/source/apilist.py) and the checks the docs build runs (docs/source/conf.py)."""

import importlib.util
import sys
from pathlib import Path

import pytest

validate = pytest.importorskip("numpydoc.validate", reason='numpydoc: pip install ".[docs]"')

SOURCE = Path(__file__).resolve().parents[1] / "docs" / "source"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"_docs_{name}", SOURCE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _checks():
    """numpydoc_validation_checks and _exclude of conf.py, read without running it."""
    text = (SOURCE / "conf.py").read_text()
    namespace = {}
    for line in text.splitlines():
        if line.startswith(("numpydoc_validation_checks", "numpydoc_validation_exclude")):
            exec(line, namespace)
    return namespace["numpydoc_validation_checks"], namespace.get("numpydoc_validation_exclude", ())


def test_public_docstrings_pass_numpydoc_checks():
    sys.path.insert(0, str(SOURCE))
    try:
        apilist = _load("apilist")
        names = apilist.public_objects()
    finally:
        sys.path.remove(str(SOURCE))
    checks, exclude = _checks()
    assert len(checks) >= 5 and len(names) > 150
    import re
    failures = []
    for name in names:
        if any(re.search(pattern, name) for pattern in exclude):
            continue
        try:
            errors = validate.validate(name)["errors"]
        except ImportError:  # an extra that is not installed
            continue
        failures += [f"{name}: {code} {message}" for code, message in errors if code in checks]
    assert not failures, "\n".join(failures)
