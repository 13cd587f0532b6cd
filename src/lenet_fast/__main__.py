"""``python -m lenet_fast``: the ``lenet-fast`` command (see `lenet_fast.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
