"""Time to accuracy: the default recipe trained in lenet_fast and in PyTorch, side by side.

``lenet-fast bench --time-to-accuracy`` trains the modern preset's default recipe
(`lenet_fast.recipes`; ``--recipe NAME``: a named one, e.g. one-epoch) with lenet_fast
and, when it is installed, with PyTorch, and prints for each the seconds of training to the first epoch whose test accuracy reaches
the target (99.0%), the accuracy after every epoch, and the ratio of the two times.

Both sides run the same computation as far as two libraries can:

- the same network: LeNet-5's modern layers with a dense C3 (PyTorch has no sparse
  convolution), starting from the same weights (lenet_fast's initialisation for the
  seed, copied into the PyTorch modules);
- the same data order: each epoch's permutation from ``numpy.random.default_rng(seed)``,
  as `lenet_fast.Trainer` draws it;
- the same optimizer (SGD with the recipe's momentum, Nesterov and weight decay, or Adam
  with its betas and weight decay: ``torch.optim.SGD`` / ``Adam`` and
  `lenet_fast.optim.SGD` / ``Adam`` define the same updates, `torch_optimizer`), the same
  learning rate at every step (the recipe's schedule object, with its warmup), the same
  batch size, the same label smoothing
  (``torch.nn.functional.cross_entropy(label_smoothing=...)``);
- each library at its best thread count: every count in ``threads`` is run and the
  fastest time to the target is compared.

Outside both timings: loading and preprocessing the data set (PyTorch gets the whole
training set as one preprocessed float tensor; lenet_fast keeps its uint8 digits and
preprocesses each batch inside its compiled pass, which is timed) and the evaluation
after each epoch. Inside: every training step, with its batch gathering, forward,
backward and update.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np

from .._io import datasets
from .._training import recipes
from ._machine import machine_info
from ._peers import import_torch, torch_network
from ._runners import unique_positive

#: The accuracy a run must reach.
TARGET = 0.99


def recipe_settings(recipe=None):
    """The training settings the benchmark runs: the modern preset's default recipe, or
    a named one (`lenet_fast.recipes.NAMED_RECIPES`), with a dense C3.

    Parameters
    ----------
    recipe : str or None
        A named recipe; None: the default recipe.

    Returns
    -------
    lenet_fast.RunSettings
        The settings as `lenet_fast.RunSettings.resolve` resolves them (the model is not
        saved).

    Raises
    ------
    ValueError
        For an unknown recipe, or one whose optimizer PyTorch is not given here (sdlm).
    """
    from .._training.settings import RunSettings

    given = {"variant": "modern", "c3": "full"}
    if recipe is not None:
        given["recipe"] = recipe
    settings = RunSettings.resolve(given, save=False)
    if settings.optimizer not in ("sgd", "adam"):
        raise ValueError(f"the time-to-accuracy benchmark runs sgd or adam recipes, not "
                         f"{settings.optimizer}")
    return settings


def _lenet_run(settings, train, test, seed, threads, epochs):
    """lenet_fast: (seconds of training per epoch, test accuracy after each epoch)."""
    from .._training.experiment import build

    trainer = build(settings.replace(seed=seed, threads=threads, epochs=epochs))
    history = trainer.fit(train, validation=test)
    return [h["seconds"] for h in history], [h["val_accuracy"] for h in history]


def torch_optimizer(torch, parameters, settings):
    """The PyTorch optimizer that makes the update of `settings`'s lenet_fast optimizer:
    ``torch.optim.SGD`` (momentum, Nesterov, weight decay) or ``torch.optim.Adam``
    (betas, eps 1e-8, L2 weight decay), which `lenet_fast.optim.SGD` and `Adam` follow.

    Parameters
    ----------
    torch : module
        The imported torch.
    parameters : iterable
        The network's parameters.
    settings : lenet_fast.RunSettings
        Resolved training settings (`recipe_settings`).

    Returns
    -------
    torch.optim.Optimizer
    """
    ours = recipes.make_optimizer(settings.as_dict())
    if settings.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=ours.base_lr, momentum=ours.momentum,
                               nesterov=ours.nesterov, weight_decay=ours.weight_decay)
    return torch.optim.Adam(parameters, lr=ours.base_lr, betas=ours.betas, eps=ours.eps,
                            weight_decay=ours.weight_decay)


def _torch_run(torch, settings, train, test, seed, threads, epochs):
    """PyTorch: the same run (module docstring)."""
    from .._model.lenet5 import LeNet5
    from .._training.schedules import make_schedule

    s = settings
    torch.set_num_threads(threads)
    net = torch_copy(torch, LeNet5("modern", c3="full", seed=seed, init=s.init))
    x = torch.from_numpy(datasets.preprocess(train[0]))
    y = torch.from_numpy(train[1].astype(np.int64))
    x_test = torch.from_numpy(datasets.preprocess(test[0]))
    y_test = torch.from_numpy(test[1].astype(np.int64))
    bs, n = s.batch_size, len(train[0])
    steps = -(-n // bs)
    opt = torch_optimizer(torch, net.parameters(), s)
    schedule = make_schedule(s.schedule, opt.defaults["lr"], steps * epochs, steps,
                             **recipes.schedule_options(s.as_dict()))
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=s.label_smoothing)
    rng = np.random.default_rng(seed)
    seconds, accuracy = [], []
    for epoch in range(epochs):
        order = torch.from_numpy(rng.permutation(n))
        net.train()
        t0 = time.perf_counter()
        for b in range(steps):
            idx = order[b * bs:(b + 1) * bs]
            for group in opt.param_groups:
                group["lr"] = schedule.lr_at(epoch * steps + b)
            opt.zero_grad(set_to_none=True)
            loss_fn(net(x[idx]), y[idx]).backward()
            opt.step()
        seconds.append(time.perf_counter() - t0)
        net.eval()
        with torch.inference_mode():
            accuracy.append(float((net(x_test).argmax(1) == y_test).float().mean()))
    return seconds, accuracy


def torch_copy(torch, model):
    """The benchmark's PyTorch network (`lenet_fast.bench`) holding a copy of the weights
    of `model` (modern, dense C3).

    Parameters
    ----------
    torch : module
        The imported torch.
    model : LeNet5
        A modern model with a dense C3.

    Returns
    -------
    torch.nn.Module"""
    net = torch_network(torch)
    layers = [m for m in net if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        for module, name in zip(layers, ("c1", "c3", "c5", "f6", "out")):
            module.weight.copy_(torch.from_numpy(
                model.params[f"{name}.weight"].reshape(module.weight.shape)))
            module.bias.copy_(torch.from_numpy(model.params[f"{name}.bias"]))
    return net


def _to_target(seconds, accuracy, target):
    """(seconds of training to the first epoch at >= target, that epoch) or (None, None)."""
    for k, acc in enumerate(accuracy):
        if acc >= target:
            return float(sum(seconds[:k + 1])), k + 1
    return None, None


def run(*, seed: int = 0, threads: Sequence[int] = (1, 2), epochs: int | None = None,
        target: float = TARGET, use_torch: bool = True, data_dir=None,
        progress: Callable[[str], None] | None = None,
        recipe: str | None = None) -> dict[str, Any]:
    """Train the default recipe (or a named one) in both libraries and time them to
    `target` accuracy.

    Parameters
    ----------
    seed : int
        Weight initialisation and data order of both libraries.
    threads : sequence of int
        Thread counts to run each library at; the best is compared.
    epochs : int, optional
        Epochs of each run (default: the recipe's).
    target : float
        Test accuracy to reach, in (0, 1].
    use_torch : bool
        Also train with PyTorch when it can be imported.
    data_dir : path, optional
        MNIST folder (`lenet_fast.datasets.load_mnist`; nothing is downloaded).
    progress : callable, optional
        Called with a status line before each run.
    recipe : str, optional
        A named recipe (`lenet_fast.recipes.NAMED_RECIPES`); default: the default one.

    Returns
    -------
    dict
        JSON-ready: ``recipe`` (the resolved training settings, with ``name``: the
        named recipe or None), ``settings``, ``machine``, ``torch`` (availability),
        ``runs`` (per library and thread count: seconds per epoch, test accuracy per
        epoch, seconds to the target and the epoch reaching it) and ``best`` (per
        library: the fastest run to the target) and ``ratio`` (PyTorch's best time over
        lenet_fast's).
    """
    threads = unique_positive("threads", threads)
    if not 0 < target <= 1:
        raise ValueError(f"target must be in (0, 1], got {target!r}")
    settings = recipe_settings(recipe)
    epochs = settings.epochs if epochs is None else unique_positive("epochs", [epochs])[0]
    say = progress or (lambda message: None)
    torch, reason = (None, "disabled (--no-torch)")
    if use_torch:
        torch, reason = import_torch()
    train = datasets.load_mnist("train", data_dir, download=False, progress=False)
    test = datasets.load_mnist("test", data_dir, download=False, progress=False)
    runs = []
    for t in threads:
        for lib in ("lenet_fast", "torch"):
            if lib == "torch" and torch is None:
                continue
            say(f"{lib}, {t} thread(s): {epochs} epoch(s)")
            if lib == "lenet_fast":
                seconds, accuracy = _lenet_run(settings, train, test, seed, t, epochs)
            else:
                seconds, accuracy = _torch_run(torch, settings, train, test, seed, t, epochs)
            to_target, epoch = _to_target(seconds, accuracy, target)
            runs.append({"library": lib, "threads": t, "seconds": seconds, "accuracy": accuracy,
                         "seconds_to_target": to_target, "epoch_reaching_target": epoch})
    best = {}
    for r in runs:
        if r["seconds_to_target"] is not None and (
                r["library"] not in best
                or r["seconds_to_target"] < best[r["library"]]["seconds_to_target"]):
            best[r["library"]] = r
    ratio = (best["torch"]["seconds_to_target"] / best["lenet_fast"]["seconds_to_target"]
             if "torch" in best and "lenet_fast" in best else None)
    shown = {k: v for k, v in settings.as_dict().items()
             if k not in ("threads", "seed", "out")}
    return {"recipe": dict(shown, name=recipe),
            "settings": {"seed": seed, "threads": threads, "epochs": epochs,
                         "target": target},
            "machine": machine_info(),
            "torch": {"available": torch is not None, "reason": reason,
                      "version": getattr(torch, "__version__", None)},
            "runs": runs, "best": {k: {"threads": v["threads"],
                                       "seconds_to_target": v["seconds_to_target"]}
                                   for k, v in best.items()},
            "ratio": ratio}


def describe(recipe: dict[str, Any]) -> str:
    """A recipe's settings in words, for the benchmark's heading.

    Parameters
    ----------
    recipe : dict
        Resolved settings (`run`'s ``recipe``).

    Returns
    -------
    str
    """
    r = recipe
    if r["optimizer"] == "sgd":
        optimizer = (f"SGD (momentum {r.get('momentum') or 0.9:g}, Nesterov {r['nesterov']}, "
                     f"weight decay {r['weight_decay']:g})")
    else:
        optimizer = (f"Adam (betas {r.get('beta1')}, {r.get('beta2')}, weight decay "
                     f"{r['weight_decay']:g})")
    warmup = f", {r['warmup']:g} warmup" if r.get("warmup") is not None else ""
    name = f"the {r['name']} recipe: " if r.get("name") else ""
    return (f"{name}modern LeNet-5 with a dense C3, batch {r['batch_size']}, {optimizer}, "
            f"{r['schedule']} to {r['lr']:g}{warmup}, label smoothing {r['label_smoothing']:g}")


def format_markdown(result: dict[str, Any]) -> str:
    """The result as markdown: one row per library and thread count, then the ratio.

    Parameters
    ----------
    result : dict
        What `run` returns, with the seconds to the target per library and thread count.

    Returns
    -------
    str
    """
    s, r = result["settings"], result["recipe"]
    lines = [f"**Time to {100 * s['target']:.1f}% MNIST test accuracy**, seed {s['seed']}: "
             f"{describe(r)}; seconds of training (data loading and evaluation excluded)", "",
             "| library | threads | seconds to target | epoch | test accuracy per epoch | "
             "seconds per epoch |", "|---|---:|---:|---:|---|---|"]
    for run in result["runs"]:
        secs = run["seconds_to_target"]
        lines.append(
            f"| {run['library']} | {run['threads']} | "
            f"{'not reached' if secs is None else f'{secs:.2f}'} | "
            f"{run['epoch_reaching_target'] or '-'} | "
            f"{', '.join(f'{100 * a:.2f}%' for a in run['accuracy'])} | "
            f"{', '.join(f'{t:.2f}' for t in run['seconds'])} |")
    if result["ratio"] is not None:
        lines += ["", f"PyTorch's best time / lenet_fast's best time: **{result['ratio']:.2f}x**"]
    elif not result["torch"]["available"]:
        lines += ["", f"PyTorch not run: {result['torch']['reason']}"]
    return "\n".join(lines)
