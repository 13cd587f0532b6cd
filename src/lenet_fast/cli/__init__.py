"""The ``lenet-fast`` command: train, evaluate, predict, info, bench, report, sweep,
reproduce, export, serve.

Run ``lenet-fast --help`` (or ``python -m lenet_fast --help``) and
``lenet-fast <command> --help`` for the options. ``main(argv)`` returns the exit
code, so the command can also be driven in-process (tests do).

Exit codes: 0 success; 1 error (missing or bad data, unreadable model or input
file, training diverged, cannot write output); 2 usage error (bad option or
option value, options that conflict with a ``--resume`` checkpoint);
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import sys

from .._version import __version__
from .._io import datasets
from . import (
    bench,
    evaluate,
    export,
    info,
    predict,
    report,
    reproduce,
    serve,
    sweep,
    train,
)
from ._common import PROG, CLIError, _one_line, _Parser, _UsageError

#: The subcommands, in the order ``lenet-fast --help`` lists them. Each is a module named
#: after its subcommand that holds its ``HELP`` (one line for ``lenet-fast --help``),
#: ``DESCRIPTION`` and optional ``EPILOG`` and ``USAGE`` texts, ``add_arguments(p, parsers)``, which
#: adds its options to its parser ``p`` (``parsers``: the parsers of the subcommands
#: before it, by name), and ``run(args)``, which returns the exit code. A new subcommand
#: is one more module and its name here.
COMMANDS = (train, evaluate, predict, info, bench, report, sweep, reproduce, export, serve)


def build_parser():
    """The argument parser of the ``lenet-fast`` command.

    Returns
    -------
    argparse.ArgumentParser
        With one subparser a subcommand of `COMMANDS`.
    """
    parser = _Parser(
        prog=PROG,
        description="LeNet-5 (LeCun et al. 1998) on MNIST with Cython/OpenMP kernels: "
                    "train, evaluate, predict.",
        epilog=f"Run '{PROG} <command> --help' for a command's options. MNIST is read from "
               f"--data-dir, else ${datasets.ENV_VAR}, else the cache folder "
               "(~/.cache/lenet_fast/mnist); missing files are downloaded there. "
               "Exit codes: 0 ok, 1 error, 2 usage error, 130 interrupted (Ctrl-C).",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                parser_class=_Parser)

    parsers = {}
    for command in COMMANDS:
        name = command.__name__.rpartition(".")[2]  # a subcommand's module bears its name
        p = sub.add_parser(name, help=command.HELP, description=command.DESCRIPTION,
                           epilog=getattr(command, "EPILOG", None),
                           usage=getattr(command, "USAGE", None))
        command.add_arguments(p, parsers)
        p.set_defaults(func=command.run)
        parsers[name] = p
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``lenet-fast`` command.

    Parameters
    ----------
    argv : list of str or None
        The arguments after the command's name; None: ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit code: 0 ok, 1 error, 2 usage error, 130 interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        print(f"{PROG}: error: {_one_line(exc)} (see '{exc.prog} --help')", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    try:
        return args.func(args)
    except CLIError as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
