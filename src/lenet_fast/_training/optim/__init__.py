"""Optimizers of one flat parameter vector: SGD, Adam and SDLM.

The model keeps every trainable parameter as a view into one contiguous
``float32`` array, and the backward pass writes every gradient into a second
contiguous array of the same shape. Each optimizer here updates that one vector
from that one gradient vector with one compiled call per step (the kernels' `sgd`,
`adam`, `scaled_sgd`: csrc/_optim.pxi, over the update kernels of
``csrc/lf_update.pxd``):

* state buffers are allocated when the ``(params, grads)`` pair is first seen (or on
  `Optimizer.load_state_dict`) and reused afterwards, so a step allocates nothing;
* input validation runs only when the ``(params, grads)`` pair changes identity;
* scalar factors (bias corrections, step sizes) are Python floats, which numpy 2
  treats as "weak" scalars.

A new optimizer is a subclass of `Optimizer` registered in `OPTIMIZERS` (with its
by-name defaults in ``_NAME_DEFAULTS``); the command line's ``--optimizer`` offers
every registered name. Learning-rate schedules are in `lenet_fast.schedules`;
SDLM's curvature estimate and optimizer in `lenet_fast.optim`.

Examples
--------
>>> import numpy as np
>>> from lenet_fast.schedules import make_schedule
>>> params = np.zeros(4, dtype=np.float32)
>>> grads = np.ones(4, dtype=np.float32)
>>> opt = make_optimizer("sgd", lr=0.1)
>>> sched = make_schedule("cosine", opt.base_lr, total_steps=100, steps_per_epoch=10)
>>> for step in range(3):
...     opt.lr = sched.lr_at(step)
...     opt.step(params, grads)
>>> opt.step_count
3
"""

from ._base import Optimizer
from .first_order import SGD, Adam
from .registry import OPTIMIZERS, make_optimizer
from .sdlm import DEFAULT_ETA, PAPER_ETA, SDLM

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "SDLM",
    "PAPER_ETA",
    "DEFAULT_ETA",
    "OPTIMIZERS",
    "make_optimizer",
]
