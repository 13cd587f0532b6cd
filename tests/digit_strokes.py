"""Hand-written strokes of the ten digits, as a person would draw them on the page.

Each digit is a list of strokes, each a list of (x, y) points in the unit square (0, 0)
top left, (1, 1) bottom right. The browser test draws them on the page's canvas with
pointer events; `rasterize` draws them as a picture (dark ink on white, as the page
does), for tests of the service without a browser.
"""

import math

import numpy as np


def _arc(cx, cy, rx, ry, start, stop, n=24):
    """Points on an ellipse from angle `start` to `stop` (degrees; 0 = right, 90 = down)."""
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
            for a in np.linspace(start, stop, n)]


STROKES = {
    0: [_arc(0.5, 0.5, 0.27, 0.38, -90, 275, 36)],
    1: [[(0.42, 0.22), (0.56, 0.1), (0.52, 0.5), (0.48, 0.9)]],
    2: [_arc(0.5, 0.32, 0.24, 0.2, 190, 380, 16) + [(0.48, 0.62), (0.26, 0.88), (0.78, 0.88)]],
    3: [_arc(0.48, 0.3, 0.24, 0.18, 200, 450, 18) + _arc(0.48, 0.68, 0.26, 0.2, -90, 150, 18)],
    4: [[(0.56, 0.1), (0.22, 0.62), (0.8, 0.62)], [(0.62, 0.3), (0.62, 0.92)]],
    5: [[(0.74, 0.12), (0.32, 0.12), (0.28, 0.46)] + _arc(0.48, 0.66, 0.26, 0.22, -120, 150, 18)],
    6: [[(0.68, 0.1), (0.48, 0.22), (0.34, 0.42), (0.27, 0.64)] + _arc(0.5, 0.7, 0.23, 0.2, 180, 540, 24)],
    7: [[(0.2, 0.12), (0.8, 0.12), (0.56, 0.5), (0.42, 0.9)]],
    8: [[(0.5 + 0.22 * math.sin(2 * t), 0.5 + 0.4 * math.cos(t))
         for t in np.linspace(0, 2 * math.pi, 48)]],
    9: [_arc(0.48, 0.32, 0.22, 0.2, 0, 360, 28) + [(0.69, 0.6), (0.64, 0.9)]],
}


def rasterize(digit, size=280, width=24):
    """The strokes of `digit` drawn as the page draws them: black ink `width` pixels wide
    on a white `size` x `size` picture, uint8 grey levels (needs Pillow)."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(img)
    for stroke in STROKES[digit]:
        points = [(x * size, y * size) for x, y in stroke]
        draw.line(points, fill=0, width=width, joint="curve")
        for x, y in points[:1] + points[-1:]:
            draw.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=0)
    return np.asarray(img)
