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


DEF MAXW = 64   # widest field gaussian_smooth accepts (checked by its wrapper)
DEF MAXR = 32   # largest kernel radius


cdef void _smooth_raw(float* out, float* tmp, const float* field, const float* g, int R,
                      float scale, int M, int H, int W, int n_threads) noexcept nogil:
    # out[m] = scale * (g (x) g) * field[m], zero padding; g has 2R+1 taps.
    # tmp is scratch of M * H * W floats, one plane per field. The rows are built in
    # local arrays, which the compiler knows do not alias, so the loops over j vectorize.
    cdef int m, i, j, k, off
    cdef float gk
    cdef float row[MAXW + 2 * MAXR]
    cdef float acc[MAXW]
    cdef float* t
    cdef float* o
    cdef const float* f
    for m in prange(M, num_threads=n_threads, schedule="static"):
        t = tmp + m * H * W
        o = out + m * H * W
        f = field + m * H * W
        for j in range(2 * R + W):
            row[j] = 0
        # Horizontal pass: t[i, j] = sum_k g[k] f[i, j + k - R].
        for i in range(H):
            for j in range(W):
                row[R + j] = f[i * W + j]
                acc[j] = 0
            for k in range(2 * R + 1):
                gk = g[k]
                for j in range(W):
                    acc[j] = acc[j] + gk * row[j + k]
            for j in range(W):
                t[i * W + j] = acc[j]
        # Vertical pass: o[i, j] = scale * sum_k g[k] t[i + k - R, j].
        for i in range(H):
            for j in range(W):
                acc[j] = 0
            for k in range(2 * R + 1):
                off = i + k - R
                if off < 0 or off >= H:
                    continue
                gk = g[k]
                for j in range(W):
                    acc[j] = acc[j] + gk * t[off * W + j]
            for j in range(W):
                o[i * W + j] = scale * acc[j]


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


def gaussian_smooth(float[:, :, ::1] out, float[:, :, ::1] scratch,
                    const float[:, :, ::1] fields, const float[::1] taps, float scale,
                    int n_threads):
    """out (M, H, W) <- scale * separable convolution of fields (M, H, W) with taps
    (2R+1,) along both axes, zero padding; scratch is (M, H, W) working memory.
    W <= 64 and R <= 32."""
    if fields.shape[2] > MAXW or (taps.shape[0] - 1) // 2 > MAXR:
        raise ValueError(f"gaussian_smooth handles W <= {MAXW} and radius <= {MAXR}")
    if fields.shape[0] == 0:
        return
    with nogil:
        _smooth_raw(&out[0, 0, 0], &scratch[0, 0, 0], &fields[0, 0, 0], &taps[0],
                    (taps.shape[0] - 1) // 2, scale, fields.shape[0], fields.shape[1],
                    fields.shape[2], n_threads)
