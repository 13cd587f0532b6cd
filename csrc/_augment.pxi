"""Kernels of the training-time distortions (`lenet_fast.augment`): bilinear warps of
uint8 images and the separable Gaussian smoothing of elastic displacement fields.

No validation and no allocation here (the checked API is `lenet_fast.augment`); the
caller preallocates the outputs. Each image (or field) is handled by one thread from
start to end, so results do not depend on the thread count.

Sampling convention: pixel (row y, column x) has its centre at integer coordinates
(x, y); a sample at a non-integer point is the bilinear blend of its four
neighbours, pixels outside the image count as background (0). Values are rounded
to the nearest grey level and clamped to 0..255.
"""

from cython.parallel cimport prange
from libc.math cimport floorf
from lf_simd cimport LF_W, lf_v, lf_zero, lf_load, lf_store, lf_bcast, lf_fma, lf_mul


cdef inline float _pixel(const unsigned char* img, int x, int y, int H, int W) noexcept nogil:
    if x < 0 or x >= W or y < 0 or y >= H:
        return 0
    return img[y * W + x]


cdef inline unsigned char _bilinear(const unsigned char* img, float sx, float sy, int H,
                                    int W) noexcept nogil:
    # Grey level at (sx, sy), rounded and clamped. Points more than one pixel outside
    # are background; clamping first keeps the float -> int conversion defined.
    cdef int x0, y0
    cdef float fx, fy, v
    if not (sx > -1.0 and sx < W and sy > -1.0 and sy < H):  # also catches NaN
        return 0
    x0 = <int>floorf(sx)
    y0 = <int>floorf(sy)
    fx = sx - x0
    fy = sy - y0
    if x0 >= 0 and y0 >= 0 and x0 + 1 < W and y0 + 1 < H:
        img = img + y0 * W + x0
        v = ((1 - fy) * ((1 - fx) * img[0] + fx * img[1])
             + fy * ((1 - fx) * img[W] + fx * img[W + 1]))
    else:
        v = ((1 - fy) * ((1 - fx) * _pixel(img, x0, y0, H, W) + fx * _pixel(img, x0 + 1, y0, H, W))
             + fy * ((1 - fx) * _pixel(img, x0, y0 + 1, H, W)
                     + fx * _pixel(img, x0 + 1, y0 + 1, H, W)))
    v = v + 0.5
    if v <= 0:
        return 0
    if v >= 255:
        return 255
    return <unsigned char>v


cdef void _affine_raw(unsigned char* out, const unsigned char* img, const float* prm, int N,
                      int H, int W, int n_threads) noexcept nogil:
    cdef int n, i, j
    cdef float a, b, c, d, cx, cy, xr, yr, bx, by
    cdef const float* p
    cdef const unsigned char* src
    cdef unsigned char* dst
    cx = (W - 1) * 0.5
    cy = (H - 1) * 0.5
    for n in prange(N, num_threads=n_threads, schedule="static"):
        p = prm + 6 * n
        a = p[0]
        b = p[1]
        c = p[2]
        d = p[3]
        src = img + n * H * W
        dst = out + n * H * W
        for i in range(H):
            yr = i - cy
            bx = b * yr + cx + p[4]
            by = d * yr + cy + p[5]
            for j in range(W):
                xr = j - cx
                dst[i * W + j] = _bilinear(src, a * xr + bx, c * xr + by, H, W)


cdef void _elastic_raw(unsigned char* out, const unsigned char* img, const float* pdx,
                       const float* pdy, int N, int H, int W, int n_threads) noexcept nogil:
    cdef int n, i, j, k
    for n in prange(N, num_threads=n_threads, schedule="static"):
        for i in range(H):
            for j in range(W):
                k = (n * H + i) * W + j
                out[n * H * W + i * W + j] = _bilinear(img + n * H * W, j + pdx[k], i + pdy[k],
                                                       H, W)


DEF MAXW = 32   # widest (and tallest) field gaussian_smooth accepts (checked by its wrapper)
DEF MAXR = 32   # largest kernel radius


cdef void _smooth_one(float* o, const float* f, const float* g, int R, float scale,
                      float mul, float add, int H, int W) noexcept nogil:
    # One field: o = scale * (g (x) g) * (mul f + add) with zero padding. Rows are padded to 32
    # floats in local arrays (this thread's stack) and each output row is summed in
    # 32 / LF_W vectors, tap by tap in order (so the result is the same whatever the
    # thread count, and on every path).
    cdef int i, j, k, off, v
    cdef int nv = MAXW // LF_W
    cdef lf_v a[8]
    cdef lf_v gk
    cdef float row[MAXW + 2 * MAXR + 8]
    cdef float t[MAXW * MAXW]
    cdef float acc[MAXW]
    for j in range(MAXW + 2 * R):
        row[j] = 0
    # Horizontal pass: t[i, j] = sum_k g[k] f[i, j + k - R].
    for i in range(H):
        for j in range(W):
            row[R + j] = mul * f[i * W + j] + add
        for v in range(nv):
            a[v] = lf_zero()
        for k in range(2 * R + 1):
            gk = lf_bcast(g[k])
            for v in range(nv):
                a[v] = lf_fma(gk, lf_load(row + k + v * LF_W), a[v])
        for v in range(nv):
            lf_store(t + i * MAXW + v * LF_W, a[v])
    # Vertical pass: o[i, j] = scale * sum_k g[k] t[i + k - R, j].
    for i in range(H):
        for v in range(nv):
            a[v] = lf_zero()
        for k in range(2 * R + 1):
            off = i + k - R
            if off < 0 or off >= H:
                continue
            gk = lf_bcast(g[k])
            for v in range(nv):
                a[v] = lf_fma(gk, lf_load(t + off * MAXW + v * LF_W), a[v])
        gk = lf_bcast(scale)
        for v in range(nv):
            lf_store(acc + v * LF_W, lf_mul(gk, a[v]))
        for j in range(W):
            o[i * W + j] = acc[j]


cdef void _smooth_raw(float* out, const float* field, const float* g, int R, float scale,
                      int M, int H, int W, int n_threads) noexcept nogil:
    # out[m] = scale * (g (x) g) * field[m] for each of the M fields.
    cdef int m
    for m in prange(M, num_threads=n_threads, schedule="static"):
        _smooth_one(out + m * H * W, field + m * H * W, g, R, scale, 1, 0, H, W)


cdef void _elastic_one(unsigned char* dst, const unsigned char* src, const unsigned char* ux,
                       const unsigned char* uy, const float* g, int R, float alpha,
                       const float* p, int H, int W) noexcept nogil:
    # One image: fields alpha * gauss * u from random bytes ux, uy mapped to the
    # uniform levels u = (2 b + 1) / 256 - 1 in (-1, 1), plus the affine map p, then
    # the bilinear warp; the fields live on this thread's stack.
    cdef float fdx[MAXW * MAXW]
    cdef float fdy[MAXW * MAXW]
    cdef float u[MAXW * MAXW]
    cdef int i, j
    cdef float cx = (W - 1) * 0.5, cy = (H - 1) * 0.5, xr, yr, bx, by
    for i in range(H * W):
        u[i] = ux[i]
    _smooth_one(fdx, u, g, R, alpha, 2.0 / 256, 1.0 / 256 - 1, H, W)
    for i in range(H * W):
        u[i] = uy[i]
    _smooth_one(fdy, u, g, R, alpha, 2.0 / 256, 1.0 / 256 - 1, H, W)
    for i in range(H):
        yr = i - cy
        bx = p[1] * yr + cx + p[4]
        by = p[3] * yr + cy + p[5]
        for j in range(W):
            xr = j - cx
            dst[i * W + j] = _bilinear(src, p[0] * xr + bx + fdx[i * W + j],
                                       p[2] * xr + by + fdy[i * W + j], H, W)


cdef void _elastic_random_raw(unsigned char* out, const unsigned char* img,
                              const unsigned char* noise,
                              const float* g, int R, float alpha, const float* prm, int N,
                              int H, int W, int n_threads) noexcept nogil:
    cdef int n
    for n in prange(N, num_threads=n_threads, schedule="static"):
        _elastic_one(out + n * H * W, img + n * H * W, noise + n * H * W,
                     noise + (N + n) * H * W, g, R, alpha, prm + 6 * n, H, W)


def affine_warp(unsigned char[:, :, ::1] out, const unsigned char[:, :, ::1] images,
                const float[:, ::1] params, int n_threads):
    """out (N, H, W) <- images (N, H, W) sampled at the affine points of params (N, 6).

    params[n] = (a, b, c, d, tx, ty): output pixel (x, y) takes the input's value at
    (a x' + b y' + cx + tx, c x' + d y' + cy + ty), where x' = x - cx, y' = y - cy and
    (cx, cy) = ((W - 1) / 2, (H - 1) / 2) is the image centre.
    """
    if images.shape[0] == 0:
        return
    with nogil:
        _affine_raw(&out[0, 0, 0], &images[0, 0, 0], &params[0, 0], images.shape[0],
                    images.shape[1], images.shape[2], n_threads)


def elastic_warp(unsigned char[:, :, ::1] out, const unsigned char[:, :, ::1] images,
                 const float[:, :, ::1] dx, const float[:, :, ::1] dy, int n_threads):
    """out (N, H, W) <- images (N, H, W) sampled at (x + dx[n, y, x], y + dy[n, y, x])."""
    if images.shape[0] == 0:
        return
    with nogil:
        _elastic_raw(&out[0, 0, 0], &images[0, 0, 0], &dx[0, 0, 0], &dy[0, 0, 0],
                     images.shape[0], images.shape[1], images.shape[2], n_threads)


def gaussian_smooth(float[:, :, ::1] out, const float[:, :, ::1] fields,
                    const float[::1] taps, float scale, int n_threads):
    """out (M, H, W) <- scale * separable convolution of fields (M, H, W) with taps
    (2R+1,) along both axes, zero padding. H, W <= 32 and R <= 32."""
    if fields.shape[1] > MAXW or fields.shape[2] > MAXW or (taps.shape[0] - 1) // 2 > MAXR:
        raise ValueError(f"gaussian_smooth handles H, W <= {MAXW} and radius <= {MAXR}")
    if fields.shape[0] == 0:
        return
    with nogil:
        _smooth_raw(&out[0, 0, 0], &fields[0, 0, 0], &taps[0], (taps.shape[0] - 1) // 2, scale,
                    fields.shape[0], fields.shape[1], fields.shape[2], n_threads)


def elastic_random_warp(unsigned char[:, :, ::1] out, const unsigned char[:, :, ::1] images,
                        const unsigned char[:, :, ::1] noise, const float[::1] taps, float alpha,
                        const float[:, ::1] params, int n_threads):
    """The whole elastic distortion in one parallel pass over images (N, H, W).

    noise (2N, H, W), random bytes b, standing for the uniform levels
    u = (2 b + 1) / 256 - 1 in (-1, 1): dx of image n from noise[n], dy from
    noise[N + n], each alpha * (taps (x) taps) * u (zero padding);
    output pixel (x, y) samples the input at the affine point of params[n] (see
    affine_warp) plus (dx, dy). H, W <= 32 and radius <= 32.
    """
    if images.shape[1] > MAXW or images.shape[2] > MAXW or (taps.shape[0] - 1) // 2 > MAXR:
        raise ValueError(f"elastic_random_warp handles H, W <= {MAXW} and radius <= {MAXR}")
    if images.shape[0] == 0:
        return
    with nogil:
        _elastic_random_raw(&out[0, 0, 0], &images[0, 0, 0], &noise[0, 0, 0], &taps[0],
                            (taps.shape[0] - 1) // 2, alpha, &params[0, 0], images.shape[0],
                            images.shape[1], images.shape[2], n_threads)
