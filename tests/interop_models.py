"""Briefly trained models for the interop tests (ONNX, PyTorch, safetensors): one epoch
on the first 5,000 training digits, so predictions are meaningful (about 90% of the
test digits right for each preset) and outputs have realistic ranges. Cached for the
session; tests must not change them."""

import functools

from lenet_fast import LeNet5, Trainer, optim
from lenet_fast.datasets import load_mnist

RECIPES = {
    "modern": dict(optimizer="sgd", lr=0.05, batch_size=64, schedule="onecycle"),
    "lecun98": dict(optimizer="adam", lr=0.002, batch_size=32, schedule="constant"),
}


@functools.lru_cache(maxsize=None)
def trained(variant, c3="lecun", n=5000):
    """LeNet5(variant, c3=c3, seed=0) after one epoch on the first `n` training digits."""
    images, labels = load_mnist("train", download=False, progress=False)
    r = RECIPES[variant]
    model = LeNet5(variant, c3=c3, seed=0, n_threads=1)
    Trainer(model, optim.make_optimizer(r["optimizer"], r["lr"]), batch_size=r["batch_size"],
            epochs=1, schedule=r["schedule"], progress=False).fit((images[:n], labels[:n]))
    return model
