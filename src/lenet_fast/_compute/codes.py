"""The fixed output codes of LeNet-5's RBF layer (LeCun et al. 1998, section II-B).

The paper's output units compare F6's 84 outputs with a fixed 7x12 bitmap per class,
+1 for ink and -1 for background, "stylized images of the character" drawn on a 7x12
grid so that the codes of similar-looking characters stay apart. The paper shows
its ASCII set in Fig. 3 without listing the bits, so the ten digit bitmaps are drawn
here, side by side: 7 columns by 12 rows each, read row by row into the 84 components. Drawn so that
every pair of digits differs in at least 10 of the 84 pixels (a test checks it).
"""

import numpy as np

_DIGITS = """
0       1       2       3       4       5       6       7       8       9
..XXX.. ...X... .XXXXX. .XXXXX. ....XX. XXXXXXX ..XXXX. XXXXXXX .XXXXX. ..XXX..
.X...X. ..XX... X.....X X.....X ...X.X. X...... .X..... ......X X.....X .X...X.
X.....X .X.X... ......X ......X ..X..X. X...... X...... ......X X.....X X.....X
X.....X ...X... ......X ......X .X...X. X...... X...... .....X. X.....X X.....X
X.....X ...X... .....X. ......X X....X. XXXXXX. X.XXXX. .....X. .X...X. X.....X
X.....X ...X... ....X.. ..XXXX. X....X. ......X XX....X ....X.. ..XXX.. X....XX
X.....X ...X... ...X... ......X XXXXXXX ......X X.....X ....X.. .X...X. .XXXX.X
X.....X ...X... ..X.... ......X .....X. ......X X.....X ...X... X.....X ......X
X.....X ...X... .X..... ......X .....X. ......X X.....X ...X... X.....X ......X
X.....X ...X... X...... ......X .....X. ......X X.....X ..X.... X.....X ......X
.X...X. ...X... X...... X.....X .....X. X.....X .X...X. ..X.... X.....X .....X.
..XXX.. .XXXXX. XXXXXXX .XXXXX. .....X. .XXXXX. ..XXX.. ..X.... .XXXXX. .XXXX..
"""


def _bitmap(digit):
    """Digit `digit`'s 12 x 7 bitmap, cut out of `_DIGITS` (its columns 8 d to 8 d + 7)."""
    rows = [row[8 * digit:8 * digit + 7] for row in _DIGITS.strip("\n").splitlines()[1:]]
    if len(rows) != 12 or any(len(r) != 7 for r in rows):
        raise AssertionError("each code is 12 rows of 7 characters")
    return np.array([[1.0 if ch == "X" else -1.0 for ch in row] for row in rows], dtype=np.float32)


#: (10, 12, 7) float32, +1 ink / -1 background: the ten digit bitmaps.
DIGIT_BITMAPS = np.stack([_bitmap(d) for d in range(10)])
DIGIT_BITMAPS.setflags(write=False)

#: (10, 84) float32: the RBF centres, each bitmap read row by row.
RBF_CODES = DIGIT_BITMAPS.reshape(10, 84).copy()
RBF_CODES.setflags(write=False)


def render(digit):
    """The bitmap of `digit` as text (X ink, . background), for documentation."""
    return "\n".join("".join("X" if v > 0 else "." for v in row) for row in DIGIT_BITMAPS[digit])
