"""The paper's training step: SDLM at batch 1 through the trainer's compiled loop
(`LeNet5.train_steps`: preprocessing, forward, backward and update of every step in
one call, as `lenet_fast.Trainer` runs it), on 1 and 2 threads.

Checks before timing: from a fresh lecun98 model (init "fanin-sqrt") with SDLM's defaults (h estimated on
500 digits), 2,048 steps on real MNIST digits give finite weights and more than 70%
accuracy over the last 512 steps, and 1 and 2 threads give the same weights bitwise.

One timed call is 256 steps; 20 passes over MNIST are 1.2 million steps, so the time
of 20 passes is about 4,700 times the median of a call.
"""

from __future__ import annotations

import numpy as np
import pytest

from lenet_fast import LeNet5, datasets
from lenet_fast.optim import SDLM

from conftest import data_dir

STEPS = 2048
CALL = 256


@pytest.fixture(scope="module")
def digits():
    try:
        images, labels = datasets.load_mnist("train", data_dir(), download=False,
                                             progress=False)
    except (datasets.DataNotFoundError, datasets.DataFormatError, OSError):
        pytest.skip("needs the MNIST training digits ($LENET_FAST_DATA_DIR)")
    return np.ascontiguousarray(images[:STEPS]), labels[:STEPS].astype(np.int64), images


def _fresh(threads, all_images):
    model = LeNet5("lecun98", seed=0, init="fanin-sqrt", n_threads=threads)
    opt = SDLM()
    opt.before_epoch(model, all_images, None, 0, np.random.default_rng(0))
    return model, opt.fused_update(model.flat_params, model.flat_grads)


@pytest.mark.parametrize("threads", [1, 2])
def test_sdlm_batch1_steps(timed, benchmark, digits, threads):
    x, y, all_images = digits
    lrs = np.full(STEPS, SDLM().lr, np.float32)
    weights = []
    for t in (threads, 3 - threads):
        model, update = _fresh(t, all_images)
        done, _, _ = model.train_steps(x[:-512], y[:-512], lrs[:-512], *update)
        done2, _, correct = model.train_steps(x[-512:], y[-512:], lrs[-512:], *update)
        assert done + done2 == STEPS and np.isfinite(model.flat_params).all()
        assert correct / 512 > 0.7, f"accuracy over the last 512 steps {correct / 512:.3f}"
        weights.append(model.flat_params.copy())
    assert np.array_equal(*weights), "1 and 2 threads give different weights"

    model, update = _fresh(threads, all_images)
    state = {"at": 0}

    def call():
        a = state["at"]
        state["at"] = (a + CALL) % STEPS
        return model.train_steps(x[a:a + CALL], y[a:a + CALL], lrs[:CALL], *update)

    benchmark.group = "SDLM batch-1 steps (256 per call)"
    benchmark.extra_info.update({"steps_per_call": CALL, "threads": threads})
    timed(call)
    assert np.isfinite(model.flat_params).all()
