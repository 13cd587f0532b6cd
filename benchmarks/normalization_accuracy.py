"""What MNIST-style normalization does to accuracy on pictures that are not MNIST-shaped.

    python benchmarks/normalization_accuracy.py [--limit N] [--model modern|lecun98|FILE]

Each MNIST test digit is placed in a 280x280 picture, at several scales and places
(enlarged with Pillow's bicubic filter), and read two ways:

- squeezed: the picture resized to 28x28 (Pillow, Lanczos) and inverted if its mean grey
  level is above 127: what ``lenet-fast predict`` did before `lenet_fast.pictures`;
- normalized: `lenet_fast.pictures.mnist_digit` (ink cropped, fit to 20x20 keeping its
  aspect, centre of mass at the centre of 28x28; dark on light inverted).

Prints a Markdown table of test accuracy per placement and way (the 28x28 digits as
they are: the model's own accuracy). Positions are drawn from a seeded generator.
"""

import argparse

import numpy as np
from PIL import Image

import lenet_fast
from lenet_fast.datasets import load_mnist
from lenet_fast.pictures import mnist_digit

SIZE = 280
#: (name, side of the digit's 28x28 field in the picture, where, dark ink on white)
PLACEMENTS = [
    ("28x28 field in the centre", 28, "centre", False),
    ("28x28 field in a corner (top left)", 28, "corner", False),
    ("28x28 field at a random place", 28, "random", False),
    ("84x84 (x3) at a random place", 84, "random", False),
    ("140x140 (x5) at a random place", 140, "random", False),
    ("280x280 (x10): fills the picture", 280, "centre", False),
    ("140x140 (x5) at a random place, dark ink on white", 140, "random", True),
]


def squeezed(picture):
    """The old `lenet-fast predict` reading of a picture."""
    img = Image.fromarray(picture).resize((28, 28), Image.Resampling.LANCZOS)
    a = np.asarray(img, np.uint8)
    return 255 - a if a.mean() > 127 else a


def place(digit, side, where, dark, rng):
    picture = np.zeros((SIZE, SIZE), np.uint8)
    field = digit if side == 28 else np.asarray(
        Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC))
    if where == "centre":
        top = left = (SIZE - side) // 2
    elif where == "corner":
        top = left = 4
    else:
        top, left = rng.integers(0, SIZE - side + 1, size=2)
    picture[top:top + side, left:left + side] = field
    return 255 - picture if dark else picture


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=10_000, help="test digits (default: all)")
    parser.add_argument("--model", default="modern")
    args = parser.parse_args()
    model = (lenet_fast.pretrained(args.model) if args.model in ("modern", "lecun98")
             else lenet_fast.load(args.model))
    images, labels = load_mnist("test")
    images, labels = images[:args.limit], labels[:args.limit]
    rng = np.random.default_rng(0)
    base = (model.predict(images) == labels).mean()
    renorm = (model.predict(np.stack([mnist_digit(d, True) for d in images])) == labels).mean()
    print(f"model: {args.model}; {len(images):,} MNIST test digits in {SIZE}x{SIZE} pictures\n")
    print("| placement | squeezed to 28x28 (before) | normalized (lenet_fast.pictures) |")
    print("|---|---:|---:|")
    print(f"| the 28x28 digits as they are | {base:.2%} | {renorm:.2%} (normalized again) |")
    for name, side, where, dark in PLACEMENTS:
        pictures = [place(d, side, where, dark, rng) for d in images]
        old = np.stack([squeezed(p) for p in pictures])
        new = np.stack([mnist_digit(p) for p in pictures])
        a_old = (model.predict(old) == labels).mean()
        a_new = (model.predict(new) == labels).mean()
        print(f"| {name} | {a_old:.2%} | {a_new:.2%} |", flush=True)


if __name__ == "__main__":
    main()
