"""The whole network: one training step (`LeNet5.train_step` with SGD, momentum 0.9)
and inference (`LeNet5.forward`), for the presets modern with a dense C3, modern with
LeCun's table and lecun98; batches 1, 64 and 256; 1 and 2 threads.

Benchmarks are grouped per mode, preset and batch, so the thread counts sit side by
side. The timed calls cycle through distinct batches of the real MNIST pool (see
conftest.py), as training does: repeating one batch would let the network memorise
it and drive its gradients towards zero (and denormals).

Checks before timing:

* training: on the pool's first batch, a fresh model's loss is finite at each of 6
  steps and lower after them than at the first;
* inference: the output is (N, 10) and finite, a second call returns the same
  values bitwise, the first image alone gives the same output as in the batch, and
  a 1-thread model gives the same output.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lenet_fast import LeNet5, bench, optim

PRESETS = (("modern", "full"), ("modern", "lecun"), ("lecun98", "lecun"))
BATCHES = (1, 64, 256)
THREADS = (1, 2)
CHECK_STEPS = 6

CASES = [
    pytest.param(variant, c3, batch, threads, id=f"{variant}-{c3}-B{batch}-t{threads}")
    for variant, c3 in PRESETS for batch in BATCHES for threads in THREADS
]


def _batches(pool, batch):
    """All the distinct contiguous batches of the pool (`lenet_fast.bench.pool_batches`)."""
    return bench.pool_batches(pool[0], pool[1], batch)


def _sgd():
    return optim.SGD(lr=0.01, momentum=0.9)


@pytest.mark.parametrize("variant,c3,batch,threads", CASES)
def test_train_step(timed, benchmark, mnist_pool, variant, c3, batch, threads):
    batches = _batches(mnist_pool, batch)
    x0, y0 = batches[0]

    model = LeNet5(variant, c3=c3, seed=0, n_threads=threads)
    opt = _sgd()
    losses = [model.train_step(x0, y0, opt) for _ in range(CHECK_STEPS)]
    assert all(np.isfinite(losses)), f"non-finite loss: {losses}"
    assert losses[-1] < losses[0], f"loss did not fall over {CHECK_STEPS} steps: {losses}"

    model = LeNet5(variant, c3=c3, seed=0, n_threads=threads)
    opt = _sgd()
    cycle = itertools.cycle(batches)

    def step():
        x, y = next(cycle)
        return model.train_step(x, y, opt)

    benchmark.group = f"train_step {variant}/c3={c3} B={batch}"
    benchmark.extra_info.update({"batch": batch, "threads": threads, "data": mnist_pool[2]})
    timed(step)
    assert np.isfinite(model.flat_params).all()


@pytest.mark.parametrize("variant,c3,batch,threads", CASES)
def test_forward(timed, benchmark, mnist_pool, variant, c3, batch, threads):
    batches = _batches(mnist_pool, batch)
    x0, _ = batches[0]

    model = LeNet5(variant, c3=c3, seed=0, n_threads=threads)
    out = model.forward(x0)
    assert out.shape == (batch, 10) and out.dtype == np.float32
    assert np.isfinite(out).all()
    assert np.array_equal(model.forward(x0), out), "a second forward call differs"
    np.testing.assert_allclose(model.forward(x0[:1]), out[:1], rtol=1e-5, atol=1e-5,
                               err_msg="the first image alone differs from it in the batch")
    single = LeNet5(variant, c3=c3, seed=0, n_threads=1).forward(x0)
    np.testing.assert_allclose(out, single, rtol=1e-6, atol=1e-6,
                               err_msg=f"{threads} threads differ from 1 thread")

    cycle = itertools.cycle([x for x, _ in batches])
    benchmark.group = f"forward {variant}/c3={c3} B={batch}"
    benchmark.extra_info.update({"batch": batch, "threads": threads, "data": mnist_pool[2]})
    timed(lambda: model.forward(next(cycle)))
