"""Probe one-epoch ideas the trainer has no setting for, on the validation split only:

    python scripts/one_epoch_probe.py --seed 0 [--lr R] [--batch B] [--ramp-to B]
        [--no-rate-scaling] [--anneal linear]

Trains the modern network (dense C3) like ``lenet-fast train --recipe one-epoch`` (same
initial weights, data order, optimizer, label smoothing and one-cycle schedule by step)
on the first 50,000 training digits, then prints its accuracy on the last 10,000 (the
split of ``lenet-fast sweep --holdout 10000``; the test set is never read) for the final
weights and for the uniform average of the weights over the last 10% and 20% of the
steps. With no option it reproduces the sweep's run of the recipe at ``--holdout 10000``
to the digit. Options try what the recipe cannot express:

- ``--ramp-to B``: a batch-size ramp within the epoch, from ``--batch`` (default: the
  recipe's, 32) to B, growing linearly with the share of the epoch's images already
  seen; each step's rate is the schedule's times its batch / the recipe's batch (not
  with ``--no-rate-scaling``); the one-cycle schedule runs over the ramp's steps;
- ``--anneal linear``: rise linearly from lr/25 to lr over the first 30% of the steps,
  then fall linearly to 0 (instead of the one-cycle's cosine phases).

The documentation's Results page ("How it was chosen") lists the runs made with it.
"""

import argparse

import numpy as np

from lenet_fast import LeNet5, RunSettings
from lenet_fast.datasets import load_mnist
from lenet_fast.metrics import evaluate
from lenet_fast.recipes import make_optimizer
from lenet_fast.schedules import make_schedule

HOLDOUT = 10_000
TAILS = (0.1, 0.2)


def batch_sizes(n, first, last):
    """Batch sizes of one pass over `n` images, `first` growing linearly to `last`."""
    sizes, done = [], 0
    while done < n:
        size = int(round(first + (last - first) * done / n))
        sizes.append(min(size, n - done))
        done += sizes[-1]
    return sizes


def rate(step, steps, peak, schedule, anneal):
    """The learning rate of `step` of `steps`."""
    if anneal == "onecycle":
        return schedule.lr_at(step)
    rise = 0.3 * steps
    if step < rise:
        return peak * (0.04 + 0.96 * step / rise)
    return peak * (steps - 1 - step) / (steps - 1 - rise)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=None, help="peak rate (default: the recipe's)")
    parser.add_argument("--batch", type=int, default=None, help="(first) batch size")
    parser.add_argument("--ramp-to", type=int, default=None, help="last batch size of a ramp")
    parser.add_argument("--no-rate-scaling", action="store_true",
                        help="a ramp's rates not scaled by the batch size")
    parser.add_argument("--anneal", choices=("onecycle", "linear"), default="onecycle")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)

    settings = RunSettings.resolve({"recipe": "one-epoch", "seed": args.seed, "threads": 1},
                                   save=False).as_dict()
    if args.lr is not None:
        settings["lr"] = args.lr
    images, labels = load_mnist("train", args.data_dir, progress=False)
    keep = len(images) - HOLDOUT
    train, held = (images[:keep], labels[:keep]), (images[keep:], labels[keep:])

    model = LeNet5(settings["variant"], c3=settings["c3"], seed=args.seed,
                   init=settings["init"], n_threads=1)
    optimizer = make_optimizer(settings)
    recipe_batch = settings["batch_size"]
    base = args.batch or recipe_batch
    sizes = batch_sizes(keep, base, args.ramp_to or base)
    scaled = args.ramp_to is not None and not args.no_rate_scaling
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    steps = len(sizes)
    schedule = make_schedule("onecycle", settings["lr"], steps, steps,
                             pct_start=settings["warmup"])
    order = np.random.default_rng(args.seed).permutation(keep)
    sums = {tail: np.zeros_like(model.flat_params) for tail in TAILS}
    counts = dict.fromkeys(TAILS, 0)
    for step in range(steps):
        idx = order[bounds[step]:bounds[step + 1]]
        optimizer.lr = rate(step, steps, settings["lr"], schedule, args.anneal)
        if scaled:
            optimizer.lr *= sizes[step] / recipe_batch
        model.train_step(train[0][idx], train[1][idx], optimizer,
                         label_smoothing=settings["label_smoothing"])
        for tail in TAILS:
            if step >= steps * (1 - tail):
                sums[tail] += model.flat_params
                counts[tail] += 1
    scores = [f"final {100 * evaluate(model, *held)['accuracy']:.2f}"]
    for tail in TAILS:
        model.flat_params[:] = sums[tail] / counts[tail]
        scores.append(f"last-{tail:.0%}-average {100 * evaluate(model, *held)['accuracy']:.2f}")
    ramp = f"{base}->{args.ramp_to or base}" + (" (rates scaled)" if scaled else "")
    print(f"seed {args.seed} lr {settings['lr']} batch {ramp} anneal {args.anneal} "
          f"steps {steps}: validation % " + ", ".join(scores), flush=True)


if __name__ == "__main__":
    main()
