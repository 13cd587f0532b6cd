"""``lenet-fast --help`` and every ``lenet-fast <command> --help`` stay as they were.

The expected texts are in tests/cli_help/ (``_main.txt`` for the command itself, one
file per subcommand), printed at a fixed width of 100 columns. A change of the help is
then a deliberate one: remake the files with ``python tests/test_cli_help.py`` and
review the diff. A new subcommand needs its file too (the last test says so).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

import pytest

from lenet_fast import cli

HELP_DIR = Path(__file__).resolve().parent / "cli_help"
WIDTH = "100"


def _subcommands() -> list[str]:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sorted(sub.choices)


def help_text(command: str | None) -> str:
    """What ``lenet-fast [command] --help`` prints, at WIDTH columns."""
    argv = ["--help"] if command is None else [command, "--help"]
    out = io.StringIO()
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        with contextlib.redirect_stdout(out):
            code = cli.main(argv)
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old
    assert code == 0
    return out.getvalue()


def _path(command: str | None) -> Path:
    return HELP_DIR / f"{command or '_main'}.txt"


@pytest.mark.parametrize("command", [None, *sorted(p.stem for p in HELP_DIR.glob("*.txt")
                                                   if p.stem != "_main")])
def test_help_is_unchanged(command):
    expected = _path(command).read_text()
    assert help_text(command) == expected, (
        f"'lenet-fast {command or ''} --help' changed; if that is meant, remake "
        "tests/cli_help/ with: python tests/test_cli_help.py")


def test_every_subcommand_has_its_expected_help():
    missing = [c for c in _subcommands() if not _path(c).is_file()]
    assert not missing, f"no tests/cli_help/<command>.txt for {missing}: python tests/test_cli_help.py"


if __name__ == "__main__":  # remake the expected texts
    HELP_DIR.mkdir(exist_ok=True)
    for command in [None, *_subcommands()]:
        _path(command).write_text(help_text(command))
        print(f"wrote {_path(command)}", file=sys.stderr)
