"""LeNet-5's fixed numbers (LeCun, Bottou, Bengio, Haffner 1998): the presets, their
parameter shapes, the squashing function's constants and the C3 connection table.

Everything that needs these without a model (model files, the ONNX and PyTorch exports)
reads them here, so that none of those modules has to import `lenet_fast.model`.

Table I: rows are the 6 S2 maps (inputs), columns the 16 C3 maps (outputs); X means the
C3 map reads that S2 map. 60 of the 96 pairs are connected, so a sparse C3 does 60/96 of
a dense C3's work and has 60 * 25 + 16 = 1,516 parameters.
"""

import re

import numpy as np

#: The presets of `lenet_fast.LeNet5` (its module docstring describes them).
VARIANTS = ("modern", "lecun98")
#: C3 with LeCun's connection table (Table I) or dense.
C3_CHOICES = ("lecun", "full")
#: Weight initialisations (`LeNet5` ``init``; "auto": "he" for modern, "fanin" for lecun98).
INITS = ("auto", "he", "fanin-sqrt", "fanin")

#: LeCun's squashing function f(a) = A tanh(S a) (appendix A): the Python side's one home
#: of A and S; csrc/_net.pxi has the C copy and `lenet_fast.reference` the twin's (a test
#: checks they agree).
TANH_A = 1.7159
TANH_S = 2.0 / 3.0


def param_shapes(variant):
    """Ordered (name, shape) of the trainable parameters of a `variant` model.

    C3's weight is (16, 6, 5, 5) with either C3 choice (a sparse C3 masks the
    unconnected pairs), so only the variant changes the list.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    shapes = [("c1.weight", (6, 1, 5, 5)), ("c1.bias", (6,))]
    if variant == "lecun98":
        shapes += [("s2.coef", (6,)), ("s2.bias", (6,))]
    shapes += [("c3.weight", (16, 6, 5, 5)), ("c3.bias", (16,))]
    if variant == "lecun98":
        shapes += [("s4.coef", (16,)), ("s4.bias", (16,))]
    shapes += [("c5.weight", (120, 16, 5, 5)), ("c5.bias", (120,)),
               ("f6.weight", (84, 120)), ("f6.bias", (84,))]
    if variant == "modern":
        shapes += [("out.weight", (10, 84)), ("out.bias", (10,))]
    return shapes

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
