"""5x5 valid convolution, stride 1, with an optional connection table (LeCun's C3).

Raw kernels: they validate nothing, allocate nothing and run without the GIL. The
checked public API is `lenet_fast.ops`; the model calls these directly on buffers it
owns. The connection table arrives as index lists built by `lenet_fast.ops.connections`:
for each output map the input maps it reads (`cptr/cidx`, with `pco` the output map of
each connected pair), and merged lists for pairs of output maps (`fptr/fidx/fflag`)
and of input maps (`bptr/bidx/bflag`). Unconnected pairs are skipped, never multiplied
by zero, so LeCun's C3 does 60/96 of the dense work.

How the work is laid out (NCHW, float32, eight-float vectors from `lf_simd.h`):
- y and dx: two output maps per job. Outputs are computed on "wide" rows: position
  q = oh * pitch + ow of the input's row pitch, so every tap (kh, kw) reads the input
  at q + kh * pitch + kw, one contiguous vector per 8 positions. Four vectors (32
  positions) of both maps accumulate in registers over all taps of all connected
  input maps, each loaded vector serving both outputs where both read that map;
  columns ow >= OW are computed and dropped. dx is the same correlation on a
  zero-padded copy of dy (`scratch`) with the kernel rotated by 180 degrees; its
  padding is 4 columns on the left only, so a row's reads that run past its end
  wrap into the next row's zeros and dx needs no dropped columns.
- dw: one connected (co, ci) pair per job, summed over the batch in sample order,
  13 + 12 taps per pass (each loaded dy vector feeds 13 accumulators). With dx
  requested, dy's padded copy is one wide row per sample (zeros between the rows);
  else vectors run along dy's rows, the last one shifted back to end at the row's
  end with its already-counted lanes masked off. dx skips kernel rows that would
  read only the padding.
- C5 (a 5x5 map and a dense table) is a matrix product: `_linear.dense_*`.
- Maps too small for vectors fall back to plain loops.

Thread invariance: every output element is written by one thread, summed in an order
fixed by the code, not by the thread count.
"""

from lf_conv cimport conv_forward_raw, conv_backward_raw, padded_map


def conv_forward(float[:, :, :, ::1] y, const float[:, :, :, ::1] x,
            const float[:, :, :, ::1] w, const float[::1] b,
            const int[::1] cptr, const int[::1] cidx, const int[::1] fptr,
            const int[::1] fidx, const int[::1] fflag, int n_threads):
    """y (N, Cout, H-4, W-4) <- conv(x (N, Cin, H, W), w (Cout, Cin, 5, 5)) + b (Cout,).

    cptr/cidx: inputs of each output map; fptr/fidx/fflag: the merged input lists of
    output-map pairs (2p, 2p+1), flag 0 both, 1 the first only, 2 the second only.
    """
    cdef const int* pidx = &cidx[0] if cidx.shape[0] > 0 else NULL
    cdef const int* qidx = &fidx[0] if fidx.shape[0] > 0 else NULL
    cdef const int* qflag = &fflag[0] if fflag.shape[0] > 0 else NULL
    with nogil:
        conv_forward_raw(&y[0, 0, 0, 0], &x[0, 0, 0, 0], &w[0, 0, 0, 0], &b[0], x.shape[0],
                         x.shape[1], x.shape[2], x.shape[3], w.shape[0], &cptr[0], pidx,
                         &fptr[0], qidx, qflag, n_threads)


def conv_scratch_size(int N, int Cout, int H, int W):
    """Floats of scratch `conv_backward` needs for dx: dy zero-padded to (H + 4) rows of W."""
    return N * Cout * padded_map(H, W)


def conv_backward(float[:, :, :, ::1] dx, float[:, :, :, ::1] dw, float[::1] db,
             const float[:, :, :, ::1] dy, const float[:, :, :, ::1] x,
             const float[:, :, :, ::1] w, const int[::1] cidx, const int[::1] pco,
             const int[::1] bptr, const int[::1] bidx, const int[::1] bflag,
             float[::1] scratch, int n_threads, bint need_dx=True):
    """dx (N, Cin, H, W), dw (Cout, Cin, 5, 5), db (Cout,) <- dy (N, Cout, H-4, W-4).

    cidx/pco: the input and output map of each connected pair; bptr/bidx/bflag: the
    merged output-map lists of input-map pairs (2p, 2p+1), flagged as in `conv_forward`.
    dw is zero where the table has no connection. With need_dx False, dx is not
    touched (the first layer's input gradient is never used). `scratch` holds at
    least `conv_scratch_size(N, Cout, H, W)` floats when need_dx (else it may be empty).
    """
    cdef int nnz = cidx.shape[0]
    cdef float* pdx = &dx[0, 0, 0, 0] if need_dx else NULL
    cdef float* psc = &scratch[0] if need_dx and scratch.shape[0] > 0 else NULL
    cdef const int* pcidx = &cidx[0] if nnz > 0 else NULL
    cdef const int* ppco = &pco[0] if nnz > 0 else NULL
    cdef const int* qidx = &bidx[0] if bidx.shape[0] > 0 else NULL
    cdef const int* qflag = &bflag[0] if bflag.shape[0] > 0 else NULL
    with nogil:
        conv_backward_raw(pdx, &dw[0, 0, 0, 0], &db[0], &dy[0, 0, 0, 0], &x[0, 0, 0, 0],
                          &w[0, 0, 0, 0], x.shape[0], x.shape[1], x.shape[2], x.shape[3],
                          w.shape[0], nnz, pcidx, ppco, &bptr[0], qidx, qflag, psc, n_threads)
