"""The whole network: one training step (SGD, momentum 0.9) and one inference pass, for
the presets modern with a dense C3, modern with LeCun's table and lecun98, beside
PyTorch's same network (modern, dense C3) when torch is installed; batches 1, 64 and
256; 1 and 2 threads.

The timed step is the one ``lenet-fast bench`` times: one call of
`lenet_fast.bench.LenetRunner` / `TorchRunner` (one home for what a step is: the model,
the optimizer, the loss, and the cycle through the distinct batches of the real MNIST
pool of conftest.py, as training does; repeating one batch would let the network
memorise it and drive its gradients towards zero and denormals). ``lenet-fast bench``
times it with its own interleaved rounds and reports the lenet_fast/PyTorch ratio;
here pytest-benchmark times it, grouped per mode, preset and batch, so that the
libraries and thread counts sit side by side.

Checks before timing:

* training: on the pool's first batch, a fresh model's loss is finite at each of 6
  steps and lower after them than at the first; after timing, the runner's last loss
  is finite;
* inference (lenet_fast): the output is (N, 10) and finite, a second call returns the
  same values bitwise, the first image alone gives the same output as in the batch,
  and a 1-thread model gives the same output.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lenet_fast import bench

PRESETS = (("modern", "full"), ("modern", "lecun"), ("lecun98", "lecun"))
BATCHES = (1, 64, 256)
THREADS = (1, 2)
CHECK_STEPS = 6

CASES = [
    pytest.param("lenet_fast", variant, c3, batch, threads,
                 id=f"lenet_fast-{variant}-{c3}-B{batch}-t{threads}")
    for variant, c3 in PRESETS for batch in BATCHES for threads in THREADS
] + [
    pytest.param("torch", "modern", "full", batch, threads, id=f"torch-B{batch}-t{threads}")
    for batch in BATCHES for threads in THREADS
]


def _runner(library, variant, c3, mode, batches, threads):
    if library == "lenet_fast":
        return bench.LenetRunner(variant, c3, mode, batches, threads)
    torch = pytest.importorskip("torch")
    return bench.TorchRunner(torch, mode, batches, threads)


def _time(timed, benchmark, runner, group, batch, threads, source):
    benchmark.group = group
    benchmark.extra_info.update({"batch": batch, "threads": threads, "data": source})
    runner.enter()
    timed(lambda: runner.run(1))


@pytest.mark.parametrize("library,variant,c3,batch,threads", CASES)
def test_train_step(timed, benchmark, mnist_pool, library, variant, c3, batch, threads):
    batches = bench.pool_batches(mnist_pool[0], mnist_pool[1], batch)

    check = _runner(library, variant, c3, "train", batches[:1], threads)
    losses = []
    for _ in range(CHECK_STEPS):
        check.run(1)
        losses.append(check.loss())
    assert all(map(math.isfinite, losses)), f"non-finite loss: {losses}"
    assert losses[-1] < losses[0], f"loss did not fall over {CHECK_STEPS} steps: {losses}"

    runner = _runner(library, variant, c3, "train", batches, threads)
    _time(timed, benchmark, runner, f"train_step {variant}/c3={c3} B={batch}", batch, threads,
          mnist_pool[2])
    assert math.isfinite(runner.loss())


@pytest.mark.parametrize("library,variant,c3,batch,threads", CASES)
def test_forward(timed, benchmark, mnist_pool, library, variant, c3, batch, threads):
    batches = bench.pool_batches(mnist_pool[0], mnist_pool[1], batch)
    runner = _runner(library, variant, c3, "infer", batches, threads)

    if library == "lenet_fast":
        x0, model = batches[0][0], runner.model
        out = model.forward(x0)
        assert out.shape == (batch, 10) and out.dtype == np.float32
        assert np.isfinite(out).all()
        assert np.array_equal(model.forward(x0), out), "a second forward call differs"
        np.testing.assert_allclose(model.forward(x0[:1]), out[:1], rtol=1e-5, atol=1e-5,
                                   err_msg="the first image alone differs from it in the batch")
        single = bench.LenetRunner(variant, c3, "infer", batches, 1).model.forward(x0)
        np.testing.assert_allclose(out, single, rtol=1e-6, atol=1e-6,
                                   err_msg=f"{threads} threads differ from 1 thread")

    _time(timed, benchmark, runner, f"forward {variant}/c3={c3} B={batch}", batch, threads,
          mnist_pool[2])
