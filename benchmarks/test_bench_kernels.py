"""Each kernel, forward and backward, at LeNet-5's shapes: fast (`lenet_fast.ops`,
1 and 2 threads) beside the NumPy reference (`lenet_fast.reference`).

Shapes: C1 1->6 maps on 32x32, C3 6->16 on 14x14 with LeCun's table and dense,
C5 16->120 on 5x5; subsampling and 2x2 max pooling on 6@28x28 (S2) and 16@10x10
(S4). Batches 1, 64 and 256; the reference is timed at batches 1 and 64 only (at
256 its C3 backward alone takes about half a second a call).

Benchmarks are grouped per kernel, shape and batch (``benchmark.group``), so that
``pytest benchmarks/`` prints fast/1 thread, fast/2 threads and reference side by
side. Before timing, every benchmark checks its output on seeded inputs: a fast
result against the reference evaluated in float64, a reference result against the
fast one, within 1e-4 of the larger of 1 and the result's largest magnitude.
The timed calls are the public functions (argument checks and output allocation
included).
"""

from __future__ import annotations

import functools
import zlib

import numpy as np
import pytest

from lenet_fast import LECUN_C3_TABLE, ops, reference

TOL = 1e-4

#: name: (Cin, Cout, H = W, connection table)
CONV_SHAPES = {
    "C1 1->6@32x32": (1, 6, 32, None),
    "C3-lecun 6->16@14x14": (6, 16, 14, LECUN_C3_TABLE),
    "C3-dense 6->16@14x14": (6, 16, 14, None),
    "C5 16->120@5x5": (16, 120, 5, None),
}

#: name: (C, H = W)
POOL_SHAPES = {
    "S2 6@28x28": (6, 28),
    "S4 16@10x10": (16, 10),
}

KERNELS = ([("conv_forward", s) for s in CONV_SHAPES] + [("conv_backward", s) for s in CONV_SHAPES]
           + [(k, s) for k in ("subsample_forward", "subsample_backward",
                               "maxpool_forward", "maxpool_backward") for s in POOL_SHAPES])

BATCHES = (1, 64, 256)
REFERENCE_BATCHES = (1, 64)

#: (implementation, threads)
IMPLS = (("fast", 1), ("fast", 2), ("reference", 1))

CASES = [
    pytest.param(kernel, shape, batch, impl, threads,
                 id=f"{kernel}-{shape.split()[0]}-B{batch}-{impl}" + (f"-t{threads}" if impl == "fast" else ""))
    for kernel, shape in KERNELS
    for batch in BATCHES
    for impl, threads in IMPLS
    if impl == "fast" or batch in REFERENCE_BATCHES
]


@functools.lru_cache(maxsize=None)
def _inputs(shape: str, batch: int) -> dict[str, np.ndarray]:
    """Seeded float32 inputs of one shape and batch (read-only, cached)."""
    rng = np.random.default_rng(zlib.crc32(f"{shape}/{batch}".encode()))
    f32 = np.float32
    if shape in CONV_SHAPES:
        cin, cout, h, table = CONV_SHAPES[shape]
        arrays = {
            "x": rng.standard_normal((batch, cin, h, h)).astype(f32),
            "w": (rng.standard_normal((cout, cin, 5, 5)) * 0.2).astype(f32),
            "b": rng.standard_normal(cout).astype(f32),
            "dy": rng.standard_normal((batch, cout, h - 4, h - 4)).astype(f32),
        }
    else:
        c, h = POOL_SHAPES[shape]
        arrays = {
            "x": rng.standard_normal((batch, c, h, h)).astype(f32),
            "coef": rng.uniform(0.5, 1.5, c).astype(f32),
            "bias": rng.standard_normal(c).astype(f32),
            "dy": rng.standard_normal((batch, c, h // 2, h // 2)).astype(f32),
        }
    for a in arrays.values():
        a.setflags(write=False)
    return arrays


def _call(module, kernel: str, shape: str, a: dict[str, np.ndarray]):
    """A no-argument callable running `kernel` of `module` on inputs `a`.

    The caller adds n_threads through functools.partial when the module takes it.
    """
    table = CONV_SHAPES[shape][3] if shape in CONV_SHAPES else None
    fn = getattr(module, kernel)
    names = {
        "conv_forward": ("x", "w", "b"),
        "conv_backward": ("dy", "x", "w"),
        "subsample_forward": ("x", "coef", "bias"),
        "subsample_backward": ("dy", "x", "coef"),
        "maxpool_forward": ("x",),
        "maxpool_backward": ("dy", "x"),
    }[kernel]
    args = tuple(a[n] for n in names) + ((table,) if kernel.startswith("conv") else ())
    return functools.partial(fn, *args)


def _as_tuple(result):
    return result if isinstance(result, tuple) else (result,)


@functools.lru_cache(maxsize=None)
def _expected_reference(kernel: str, shape: str, batch: int):
    """The reference's result in float64 on the float32 inputs (cached)."""
    a64 = {k: v.astype(np.float64) for k, v in _inputs(shape, batch).items()}
    return _as_tuple(_call(reference, kernel, shape, a64)())


@functools.lru_cache(maxsize=None)
def _expected_fast(kernel: str, shape: str, batch: int):
    """The fast kernels' result with one thread (cached)."""
    return _as_tuple(_call(ops, kernel, shape, _inputs(shape, batch))(n_threads=1))


def _check(label: str, got, expected):
    got = _as_tuple(got)
    assert len(got) == len(expected), f"{label}: {len(got)} results, expected {len(expected)}"
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g.dtype == np.float32, f"{label}[{i}]: dtype {g.dtype}"
        assert g.shape == e.shape, f"{label}[{i}]: shape {g.shape} != {e.shape}"
        assert np.isfinite(g).all(), f"{label}[{i}]: non-finite values"
        scale = max(1.0, float(np.abs(e).max(initial=0.0)))
        err = float(np.abs(g.astype(np.float64) - e).max(initial=0.0))
        assert err <= TOL * scale, f"{label}[{i}]: max abs error {err:.3g} > {TOL * scale:.3g}"


@pytest.mark.parametrize("kernel,shape,batch,impl,threads", CASES)
def test_kernel(timed, benchmark, kernel, shape, batch, impl, threads):
    a = _inputs(shape, batch)
    label = f"{kernel} {shape} B={batch} {impl}"
    if impl == "fast":
        fn = functools.partial(_call(ops, kernel, shape, a), n_threads=threads)
        _check(label, fn(), _expected_reference(kernel, shape, batch))
    else:
        fn = _call(reference, kernel, shape, a)
        _check(label, fn(), _expected_fast(kernel, shape, batch))
    benchmark.group = f"{kernel} {shape} B={batch}"
    benchmark.extra_info.update({"impl": impl, "threads": threads, "batch": batch})
    timed(fn)
