"""LeCun's C3 connection table (LeCun, Bottou, Bengio, Haffner 1998, Table I).

Rows are the 6 S2 maps (inputs), columns the 16 C3 maps (outputs); X means the C3 map
reads that S2 map. 60 of the 96 pairs are connected, so a sparse C3 does 60/96 of a
dense C3's work and has 60 * 25 + 16 = 1,516 parameters.
"""

import re

import numpy as np

_TABLE_I = """
      0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15
  0   X       X X X     X  X  X  X     X  X
  1   X X       X X X      X  X  X  X     X
  2   X X X       X X X       X     X  X  X
  3     X X X     X X X X        X     X  X
  4       X X X     X X X  X     X  X     X
  5         X X X     X X  X  X     X  X  X
"""


def _parse_grid(grid):
    """Read a grid whose header gives column numbers; a row's X under a number marks it."""
    lines = [line for line in grid.splitlines() if line.strip()]
    # Each column's mark sits under the last digit of its number.
    ends = [m.end() - 1 for m in re.finditer(r"\d+", lines[0])]
    table = np.zeros((len(lines) - 1, len(ends)), dtype=bool)
    for i, line in enumerate(lines[1:]):
        table[i] = [end < len(line) and line[end] == "X" for end in ends]
    return table


LECUN_C3_TABLE = _parse_grid(_TABLE_I)
LECUN_C3_TABLE.setflags(write=False)

assert LECUN_C3_TABLE.shape == (6, 16) and LECUN_C3_TABLE.sum() == 60
