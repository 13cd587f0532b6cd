"""Every code example of the README and of the documentation runs.

Each page (README.md, docs/source/**/*.md) is one test: its ``python`` and ``bash``
blocks run in the order they stand, Python in one namespace per page, in a temporary
folder that holds ``lenet5-modern.npz`` (trained here on a few digits) and
``digits.npy`` (five test digits), as a reader who followed the pages would have.

Small data: `lenet_fast.datasets.load_mnist` hands the Python blocks the first
``TRAIN_N`` / ``TEST_N`` digits, and every ``lenet-fast train``, ``sweep``,
``evaluate`` and ``report`` command gets ``--train-limit`` / ``--test-limit`` (added
last, so they win over a limit the page gives). Other lines of a bash block are run
or, where a test cannot, parsed or passed over for the reason given in
``NOT_RUN``. Blocks that need an extra that is not installed skip with its name; CI
installs them all. Docstring examples (``>>>``) of the public modules run too.
"""

from __future__ import annotations

import contextlib
import doctest
import importlib
import io
import os
import re
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest

from lenet_fast import cli, datasets
from lenet_fast._io import datasets as _datasets  # patched: the code reads it there

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs" / "source").rglob("*.md"))]
TRAIN_N, TEST_N = 1000, 500
LIMITS = {"train": ["--train-limit", str(TRAIN_N), "--test-limit", str(TEST_N), "--no-progress"],
          "sweep": ["--train-limit", "300", "--test-limit", "200"],
          "evaluate": ["--test-limit", str(TEST_N)],
          "report": ["--test-limit", str(TEST_N)]}
#: First words of lines that a test does not run, with the reason.
NOT_RUN = {
    "pip": "installing: CI installs exactly as the README says (.ci/run)",
    "pytest": "the test command itself: CI runs it (.ci/run)",
    "make": "make test and make -C docs html: CI runs both (.ci/run), and the wheel and "
            "aarch64 jobs that make wheel and make aarch64 run",
    "apt-get": "installing Debian's chromium for the browser test: CI does (.ci/run)",
    "dask": "starts a Dask scheduler or worker: the sweep on Dask is tested on a "
            "distributed.LocalCluster (tests/test_sweep.py)",
    "chromium": "takes a screenshot with a browser",
    "curl": "talks to a running lenet-fast serve: tests/test_serve.py does, over real HTTP",
    "python": "a script of the project's (scripts/): it retrains the shipped models",
}
#: lenet-fast commands that are parsed by the real parser (so a renamed option fails)
#: but not run, with the reason.
PARSE_ONLY = {
    "bench": "takes minutes of timing; tests/test_bench.py and tests/test_bench_modes.py "
             "run its code on small settings",
    "--scheduler": "needs a Dask cluster at that address",
    "serve": "starts a server and runs until stopped: tests/test_serve.py runs it over real HTTP",
    "reproduce": "runs many trainings (minutes to an hour): tests/test_reproduce.py runs it on a "
                 "tiny profile",
}
OPTIONAL = {"torch", "sklearn", "onnx", "onnxruntime", "safetensors", "matplotlib", "joblib",
            "distributed", "PIL"}
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.S | re.M)


def code_blocks(path):
    """(language, line number, code) of the python and bash blocks of a Markdown page."""
    text = path.read_text()
    return [(m.group(1), text[:m.start()].count("\n") + 2, m.group(2))
            for m in FENCE.finditer(text) if m.group(1) in ("python", "bash")]


def shell_lines(code):
    """The commands of a bash block: continuations joined, comments dropped."""
    for line in code.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if words:
            yield words


@pytest.fixture(scope="module")
def data_dir():
    folder = Path(os.environ.get(datasets.ENV_VAR, ROOT.parent / "shared" / "data" / "mnist"))
    names = [n for pair in _datasets.SPLITS.values() for n in pair]
    if not all((folder / n).is_file() or (folder / f"{n}.gz").is_file() for n in names):
        pytest.skip(f"real MNIST not found in {folder}")
    return folder


@pytest.fixture(scope="module")
def small_mnist(data_dir):
    return {split: tuple(a[:n] for a in datasets.load_mnist(split, data_dir, download=False,
                                                            progress=False))
            for split, n in (("train", TRAIN_N), ("test", TEST_N))}


@pytest.fixture
def reader_folder(tmp_path, monkeypatch, data_dir, small_mnist):
    """A folder as a reader of the pages has it, with the small data in place."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(datasets.ENV_VAR, str(data_dir))
    monkeypatch.setattr(_datasets, "load_mnist",
                        lambda split="train", *args, **kwargs: small_mnist[split])
    assert _lenet_fast(["train", "--out", "lenet5-modern.npz", *LIMITS["train"]]) == 0
    np.save("digits.npy", small_mnist["test"][0][:5])
    try:  # the pictures the pages' predict commands read
        from PIL import Image
    except ImportError:
        pass
    else:
        Image.fromarray(255 - small_mnist["test"][0][0]).resize((112, 112)).save("photo.jpg")
        Image.fromarray(small_mnist["test"][0][1]).save("digit.png")
    return tmp_path


def _lenet_fast(argv):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        code = cli.main(argv)
    if code:
        print(err.getvalue(), file=sys.stderr)
    return code


def _run_shell(words, where):
    if words[0] in NOT_RUN:
        return f"not run ({NOT_RUN[words[0]]})"
    assert words[0] == "lenet-fast", f"{where}: a command the test does not know: {words}"
    argv = words[1:]
    reason = next((r for key, r in PARSE_ONLY.items() if key in argv), None)
    if reason is not None:
        cli.build_parser().parse_args(argv)  # raises on a bad option (a _UsageError)
        return f"parsed only ({reason})"
    argv += LIMITS.get(argv[0], []) if argv and argv[0] in LIMITS else []
    assert _lenet_fast(argv) == 0, f"{where}: lenet-fast {shlex.join(argv)} failed"
    return "ran"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_examples_run(page, reader_folder):
    blocks = code_blocks(page)
    if not blocks:
        pytest.skip("no code blocks")
    namespace = {"__name__": "__docs__"}
    for language, line, code in blocks:
        where = f"{page.relative_to(ROOT)}:{line}"
        if language == "bash":
            for words in shell_lines(code):
                _run_shell(words, where)
            continue
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(code, where, "exec"), namespace)
        except ImportError as exc:
            if (exc.name or "").split(".")[0] in OPTIONAL:
                pytest.skip(f"{where} needs {exc.name}")
            raise


def test_the_pages_have_examples_and_every_command_is_known():
    """The extraction finds the blocks (a changed fence would leave nothing to run)."""
    readme = code_blocks(ROOT / "README.md")
    assert {lang for lang, _, _ in readme} == {"python", "bash"}
    commands = [words for page in PAGES for lang, _, code in code_blocks(page) if lang == "bash"
                for words in shell_lines(code)]
    assert len(commands) > 30
    unknown = [w for w in commands if w[0] not in NOT_RUN and w[0] != "lenet-fast"]
    assert not unknown


def test_a_wrong_option_in_a_page_fails():
    with pytest.raises(Exception):
        _run_shell(["lenet-fast", "bench", "--no-such-option"], "here")


DOCTEST_MODULES = ["lenet_fast.optim", "lenet_fast.schedules", "lenet_fast.bench._machine"]


@pytest.mark.parametrize("name", DOCTEST_MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = [t for t in finder.find(module, name) if t.examples]
    assert tests, f"{name} has no docstring examples"
    for test in tests:
        runner.run(test, out=lambda text: None)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"
