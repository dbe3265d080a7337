/* SSIM of float32 image planes with its gradient, in one pass (lossforge/losses/_ssim_native.py).
 *
 * lf_ssim2d_f32 computes, for `planes` planes x, y (h, w) and a Gaussian window of k taps (odd, at
 * most LF_MAX_WINDOW), the SSIM map (or, with cs_only, the contrast-structure map) over the 'valid'
 * positions (h - k + 1, w - k + 1), with the formulas of _level in _image.py:
 *
 *   mx, my = K x, K y;  Q = K (x^2 + y^2 + c1 + c2);  P = K (2xy + c1 + c2)      (K: separable filter)
 *   A1 = 2 mx my + c1,  B1 = mx^2 + my^2 + c1,  A2 = P - A1,  B2 = max(Q - B1, c2)
 *   S = (A1 / B1) (A2 / B2),  CS = A2 / B2.
 *
 * For the rows [r0, r1) of each plane it writes the sum (double) of each map row p in [r0, min(r1,
 * h - k + 1)) into rowsum[p], and, where gx / gy is not NULL, the rows [r0, r1) of scale * d(sum of the
 * map)/dx (dy) into gx (gy): the adjoint filter K^T of the map's partial derivatives, as in _level.
 * Every value is computed by the same operations whatever r0 and r1, so a plane split into row
 * ranges (run on different threads) gives the same result; a range recomputes the k - 1 rows of
 * statistics above it.
 *
 * The plane is processed in tiles of LF_TILE columns (so that the working set, about 100 KiB, stays
 * in the L2 cache), each tile streamed row by row: every input row is filtered along w once into a ring of
 * the last k rows, the statistics of an output row are filtered along h from the ring, and the
 * derivative maps of each output row go through the adjoint filter along w into a second ring, from
 * which each gradient row is filtered along h. A tile recomputes the k - 1 columns of statistics to
 * its left. Every inner loop runs along w and is vectorised by the compiler. The sum of a row is the
 * sum of its tiles' sums, in tile order.
 *
 * Returns 0, -1 when the working memory cannot be allocated, -2 for an unsupported window size.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__FMA__)
#define LF_MADD(a, b, c) fmaf((a), (b), (c))
#else
#define LF_MADD(a, b, c) ((a) * (b) + (c))
#endif

/* The row kernels are inlined into one function per variant (LF_NOINLINE): gcc vectorises their
   loops there, but not always once inlined into the larger driver. */
#if defined(__GNUC__)
#define LF_INLINE static inline __attribute__((always_inline))
#define LF_NOINLINE static __attribute__((noinline))
#else
#define LF_INLINE static inline
#define LF_NOINLINE static
#endif

/* The largest window the kernel takes. */
#define LF_MAX_WINDOW 15

/* Columns per tile (a multiple of 16). */
#ifndef LF_TILE
#define LF_TILE 256
#endif

/* floats, rounded up to a multiple of 16 (64 bytes): every loop runs over whole vectors of
   zero-padded buffers */
static int64_t lf_pad(int64_t n) { return (n + 15) / 16 * 16; }

/* The filter along w ('valid') of the four rows a, b, c, d: out[m * ms + j] = sum_i wt[i] row_m[j + i],
   j < n. K is a constant (the loop over the taps unrolled). */
LF_INLINE void lf_hfilter4(const float *restrict a, const float *restrict b, const float *restrict c,
                           const float *restrict d, int64_t n, const float *restrict wt, const int K,
                           float *restrict out, int64_t ms) {
    float w[LF_MAX_WINDOW];
    for (int i = 0; i < K; i++) w[i] = wt[i];
#pragma omp simd
    for (int64_t j = 0; j < n; j++) {
        float sa = 0.0f, sb = 0.0f, sc = 0.0f, sd = 0.0f;
#pragma GCC unroll 16
        for (int i = 0; i < K; i++) {
            sa = LF_MADD(w[i], a[j + i], sa);
            sb = LF_MADD(w[i], b[j + i], sb);
            sc = LF_MADD(w[i], c[j + i], sc);
            sd = LF_MADD(w[i], d[j + i], sd);
        }
        out[j] = sa;
        out[ms + j] = sb;
        out[2 * ms + j] = sc;
        out[3 * ms + j] = sd;
    }
}

LF_NOINLINE void lf_hfilter4_k(const float *restrict a, const float *restrict b, const float *restrict c,
                               const float *restrict d, int64_t n, const float *restrict wt, int k,
                               float *restrict out, int64_t ms) {
#define LF_K(K)                                                                                    \
    case K:                                                                                        \
        lf_hfilter4(a, b, c, d, n, wt, K, out, ms);                                               \
        return;
    switch (k) {
        LF_K(1) LF_K(3) LF_K(5) LF_K(7) LF_K(9) LF_K(11) LF_K(13) LF_K(15)
    default: return;
    }
#undef LF_K
}

/* The four maps x, y, x^2 + y^2 + c, 2xy + c of one input row filtered along w ('valid') into
   out[m * ms + j] for the n columns j < n (a multiple of 16, at least ws - k + 1), reading n + k - 1
   input columns: x and y themselves where they have that many (`direct`), else their ws columns
   copied into tx, ty, whose columns past ws hold finite values. The sums of squares are formed as
   in _image._stack (equal bits where x == y). */
LF_NOINLINE void lf_forward_row(const float *x, const float *y, int64_t ws, int direct, float *tx, float *ty,
                                float *restrict tq, float *restrict tp, float c, const float *restrict win,
                                int k, float *restrict out, int64_t n, int64_t ms) {
    if (direct) {
        ws = n + k - 1;
    } else {
#pragma omp simd
        for (int64_t j = 0; j < ws; j++) {
            tx[j] = x[j];
            ty[j] = y[j];
        }
    }
    const float *restrict xs = direct ? x : tx, *restrict ys = direct ? y : ty;
#pragma omp simd
    for (int64_t j = 0; j < ws; j++) {
        tq[j] = LF_MADD(ys[j], ys[j], LF_MADD(xs[j], xs[j], c));
        tp[j] = LF_MADD(xs[j], ys[j], LF_MADD(xs[j], ys[j], c));
    }
    lf_hfilter4_k(xs, ys, tq, tp, n, win, k, out, ms);
}

/* The adjoint of the filter along w ('full' convolution) of the m derivative maps of one row:
   out[mm * ms + j] = sum_i wf[i] gpad[mm * gs + j + i], j < n (wf: the window reversed; gpad: the
   maps, zero-padded by k - 1 on the left and past their last column, from the tile's first column). */
LF_INLINE void lf_row_adjoint(const float *restrict gpad, int64_t gs, int64_t n, const float *restrict wf,
                              int k, float *restrict out, int64_t ms, const int m) {
#pragma omp simd
    for (int64_t j = 0; j < n; j++) {
        float a = 0.0f, b = 0.0f, c = 0.0f, d = 0.0f;
        int i = 0;
        do {
            const float wi = wf[i];
            a = LF_MADD(wi, gpad[j + i], a);
            b = LF_MADD(wi, gpad[gs + j + i], b);
            c = LF_MADD(wi, gpad[2 * gs + j + i], c);
            if (m == 4) d = LF_MADD(wi, gpad[3 * gs + j + i], d);
        } while (++i < k);
        out[j] = a;
        out[ms + j] = b;
        out[2 * ms + j] = c;
        if (m == 4) out[3 * ms + j] = d;
    }
}

LF_NOINLINE void lf_adjoint_row(const float *restrict gpad, int64_t gs, int64_t n, const float *restrict wf,
                                int k, float *restrict out, int64_t ms, int m) {
    if (m == 4) lf_row_adjoint(gpad, gs, n, wf, k, out, ms, 4);
    else lf_row_adjoint(gpad, gs, n, wf, k, out, ms, 3);
}

/* The filter along h: out[mm * os + j] = sum_i wt[i] rows[i][mm * ms + j] for the M maps of the K
   ring rows `rows`, j < n; one map at a time, so that the K row pointers stay in registers. K is a
   constant, the loop over the taps unrolled: gcc does not vectorise a loop over columns whose body
   loops over rows. */
LF_INLINE void lf_vfilter(const float *const *rows, int64_t ms, int64_t n, const float *restrict wt,
                          const int K, int M, float *restrict out, int64_t os) {
    const float *r[LF_MAX_WINDOW];
    float w[LF_MAX_WINDOW];
    for (int mm = 0; mm < M; mm++) {
        for (int i = 0; i < K; i++) {
            r[i] = rows[i] + mm * ms;
            w[i] = wt[i];
        }
        float *restrict o = out + mm * os;
#pragma omp simd
        for (int64_t j = 0; j < n; j++) {
            float a = 0.0f;
#pragma GCC unroll 16
            for (int i = 0; i < K; i++) a = LF_MADD(w[i], r[i][j], a);
            o[j] = a;
        }
    }
}

/* lf_vfilter for the window size k (odd, at most LF_MAX_WINDOW) */
LF_NOINLINE void lf_vfilter_k(const float *const *rows, int64_t ms, int64_t n, const float *restrict wt,
                              int k, int m, float *restrict out, int64_t os) {
#define LF_K(K)                                                                                    \
    case K:                                                                                        \
        lf_vfilter(rows, ms, n, wt, K, m, out, os);                                               \
        return;
    switch (k) {
        LF_K(1) LF_K(3) LF_K(5) LF_K(7) LF_K(9) LF_K(11) LF_K(13) LF_K(15)
    default: return;
    }
#undef LF_K
}

/* One output row from its four statistics mx, my, Q, P (stats[mm * ss + j], j < n): the map's values
   into vals[j] and, with `sinks` (1: x, 2: y, 3: both), its partial derivatives g2n = -dS/dQ, g3 =
   dS/dP and dS/dmx / 2, dS/dmy / 2 into g[mm * gs + j] (maps 0, 1, then x's, then y's); all 0 from
   column `valid` on. */
LF_INLINE void lf_row_map(const float *restrict stats, int64_t ss, int64_t n, int64_t valid, float c1,
                          float c2, float *restrict vals, float *restrict g, int64_t gs, const int cs_only,
                          const int sinks) {
    const float *restrict smx = stats, *restrict smy = stats + ss, *restrict sq = stats + 2 * ss,
                *restrict sp = stats + 3 * ss;
    float *restrict g0 = g, *restrict g1 = g + gs, *restrict gx = g + 2 * gs,
          *restrict gy = g + (sinks == 3 ? 3 : 2) * gs;
#pragma omp simd
    for (int64_t j = 0; j < n; j++) {
        const float mx = smx[j], my = smy[j];
        const float a1 = LF_MADD(mx, my, LF_MADD(mx, my, c1));
        const float b1 = LF_MADD(my, my, LF_MADD(mx, mx, c1));
        const float a2 = sp[j] - a1;
        const float var = sq[j] - b1;              /* sigma_x^2 + sigma_y^2 + c2 */
        const float b2 = var < c2 ? c2 : var;      /* the variance clamped at 0 (NaN stays NaN) */
        const float positive = var > c2 ? 1.0f : 0.0f;
        const float q2 = a2 / b2;
        const int in = j < valid;
        float value, g2n, g3, dx, dy;
        if (cs_only) {
            value = q2;
            g3 = 1.0f / b2;
            g2n = q2 / b2 * positive;
            dx = mx * g2n - my * g3;
            dy = my * g2n - mx * g3;
        } else {
            const float q1 = a1 / b1;
            const float ib1 = 1.0f / b1, ib2 = 1.0f / b2;
            value = q1 * q2;
            g3 = q1 * ib2;                         /* A1 / (B1 B2) */
            g2n = value * ib2 * positive;          /* S / B2 where the variance is positive */
            const float e = q2 * ib1 - g3;         /* (A2 - A1) / (B1 B2) */
            const float f = g2n - value * ib1;
            dx = e * my + f * mx;
            dy = e * mx + f * my;
        }
        vals[j] = in ? value : 0.0f;
        if (sinks) {
            g0[j] = in ? g2n : 0.0f;
            g1[j] = in ? g3 : 0.0f;
            if (sinks & 1) gx[j] = in ? dx : 0.0f;
            if (sinks & 2) gy[j] = in ? dy : 0.0f;
        }
    }
}

#define LF_MAP_VARIANT(CS, SINKS)                                                                  \
    LF_NOINLINE void lf_map_row_##CS##SINKS(const float *restrict stats, int64_t ss, int64_t n,      \
                                            int64_t valid, float c1, float c2, float *restrict vals, \
                                            float *restrict g, int64_t gs) {                         \
        lf_row_map(stats, ss, n, valid, c1, c2, vals, g, gs, CS, SINKS);                            \
    }
LF_MAP_VARIANT(0, 0) LF_MAP_VARIANT(0, 1) LF_MAP_VARIANT(0, 2) LF_MAP_VARIANT(0, 3)
LF_MAP_VARIANT(1, 0) LF_MAP_VARIANT(1, 1) LF_MAP_VARIANT(1, 2) LF_MAP_VARIANT(1, 3)
#undef LF_MAP_VARIANT

LF_INLINE void lf_map_row(const float *restrict stats, int64_t ss, int64_t n, int64_t valid, float c1,
                          float c2, float *restrict vals, float *restrict g, int64_t gs, const int cs_only,
                          const int sinks) {
    switch (cs_only * 4 + sinks) {
    case 0: lf_map_row_00(stats, ss, n, valid, c1, c2, vals, g, gs); return;
    case 1: lf_map_row_01(stats, ss, n, valid, c1, c2, vals, g, gs); return;
    case 2: lf_map_row_02(stats, ss, n, valid, c1, c2, vals, g, gs); return;
    case 3: lf_map_row_03(stats, ss, n, valid, c1, c2, vals, g, gs); return;
    case 4: lf_map_row_10(stats, ss, n, valid, c1, c2, vals, g, gs); return;
    case 5: lf_map_row_11(stats, ss, n, valid, c1, c2, vals, g, gs); return;
    case 6: lf_map_row_12(stats, ss, n, valid, c1, c2, vals, g, gs); return;
    default: lf_map_row_13(stats, ss, n, valid, c1, c2, vals, g, gs); return;
    }
}

/* The sum of v[0 .. n), in double */
LF_NOINLINE double lf_sum(const float *restrict v, int64_t n) {
    double acc = 0.0;
#pragma omp simd reduction(+ : acc)
    for (int64_t j = 0; j < n; j++) acc += (double)v[j];
    return acc;
}

/* One gradient row (n columns) from the adjoint filter of its derivative maps along both axes
   (a[mm * as + j]): scale * (K^T dS/dm - x K^T g2n + y K^T g3). */
LF_INLINE void lf_row_gradient(const float *restrict a, int64_t as, int64_t n, const float *restrict x,
                               const float *restrict y, float *restrict gx, float *restrict gy,
                               float scale, const int sinks) {
    const float *restrict a0 = a, *restrict a1 = a + as, *restrict ax = a + 2 * as,
                *restrict ay = a + (sinks == 3 ? 3 : 2) * as;
    /* the two products subtracted before adding: exactly 0 where x == y and a0 == a1 */
#pragma omp simd
    for (int64_t j = 0; j < n; j++) {
        if (sinks & 1) gx[j] = scale * (ax[j] + (y[j] * a1[j] - x[j] * a0[j]));
        if (sinks & 2) gy[j] = scale * (ay[j] + (x[j] * a1[j] - y[j] * a0[j]));
    }
}

#define LF_GRADIENT_VARIANT(SINKS)                                                                 \
    LF_NOINLINE void lf_gradient_row_##SINKS(const float *restrict a, int64_t as, int64_t n,       \
                                             const float *restrict x, const float *restrict y,     \
                                             float *restrict gx, float *restrict gy, float scale) { \
        lf_row_gradient(a, as, n, x, y, gx, gy, scale, SINKS);                                     \
    }
LF_GRADIENT_VARIANT(1) LF_GRADIENT_VARIANT(2) LF_GRADIENT_VARIANT(3)
#undef LF_GRADIENT_VARIANT

LF_INLINE void lf_gradient_row(const float *restrict a, int64_t as, int64_t n, const float *restrict x,
                               const float *restrict y, float *restrict gx, float *restrict gy,
                               float scale, const int sinks) {
    if (sinks == 1) lf_gradient_row_1(a, as, n, x, y, gx, gy, scale);
    else if (sinks == 2) lf_gradient_row_2(a, as, n, x, y, gx, gy, scale);
    else lf_gradient_row_3(a, as, n, x, y, gx, gy, scale);
}

/* The k ring rows starting at ring row `first`, in order. */
static void lf_ring_rows(const float **rows, float *ring, int64_t slot, int64_t first, int k) {
    for (int i = 0; i < k; i++) rows[i] = ring + ((first + i) % k) * slot;
}

LF_INLINE int lf_ssim2d(const float *x, const float *y, int64_t x_plane, int64_t x_row, int64_t y_plane,
                        int64_t y_row, float *gx, float *gy, int64_t planes, int64_t h, int64_t w,
                        const float *window, int k, float c1, float c2, float cq, float scale, int64_t r0,
                        int64_t r1, double *rowsum, const int cs_only, const int sinks) {
    const int64_t ho = h - k + 1, wo = w - k + 1;
    const int m = sinks == 0 ? 0 : (sinks == 3 ? 4 : 3);
    /* rows of statistics: those of [r0, r1), and with a gradient the k - 1 rows above them */
    const int64_t p0 = sinks ? (r0 - k + 1 > 0 ? r0 - k + 1 : 0) : r0;
    const int64_t p1 = r1 < ho ? r1 : ho;
    if (p0 >= p1 && !sinks) return 0;
    /* buffer sizes (floats): a tile has at most LF_TILE + k - 1 columns of statistics */
    const int64_t tile = LF_TILE, ms = lf_pad(tile + k - 1), tl = lf_pad(ms + k), gs = tl;
    const int64_t slot_h = 4 * ms, slot_g = (int64_t)m * tile;
    /* one zeroed allocation per buffer (so that memory checkers see each one's bounds) */
    enum { TX, TY, TQ, TP, RING_H, STATS, VALS, GPAD, RING_G, ADJ, WIN, WF, NBUF };
    const int64_t sizes[NBUF] = {tl, tl, tl, tl, k * slot_h, 4 * ms, ms, 4 * gs, k * slot_g + 16, 4 * tile,
                                 lf_pad(k), lf_pad(k)};
    float *buf[NBUF] = {0};
    int ok = 1;
    for (int b = 0; b < NBUF; b++) {
        buf[b] = aligned_alloc(64, (size_t)sizes[b] * sizeof(float));
        if (buf[b]) memset(buf[b], 0, (size_t)sizes[b] * sizeof(float));
        ok = ok && buf[b];
    }
    if (!ok) {
        for (int b = 0; b < NBUF; b++) free(buf[b]);
        return -1;
    }
    float *tx = buf[TX], *ty = buf[TY], *tq = buf[TQ], *tp = buf[TP], *ring_h = buf[RING_H], *stats = buf[STATS];
    float *vals = buf[VALS], *gpad = buf[GPAD], *ring_g = buf[RING_G], *adj = buf[ADJ], *win = buf[WIN];
    float *wf = buf[WF];
    for (int i = 0; i < k; i++) {
        win[i] = window[i];
        wf[i] = window[k - 1 - i];
    }
    const float *rows[LF_MAX_WINDOW];
    const int64_t cols = sinks ? w : wo; /* the tiles cover the gradient's columns, or the map's */
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * x_plane, *yp = y + pl * y_plane;
        float *gxp = gx ? gx + pl * h * w : NULL, *gyp = gy ? gy + pl * h * w : NULL;
        double *sums = rowsum + pl * ho;
        for (int64_t t0 = 0; t0 < cols; t0 += tile) {
            /* columns [t0, t1) of the gradient (or of the map), from the map's columns [s0, s1) */
            const int64_t t1 = t0 + tile < cols ? t0 + tile : cols;
            const int64_t s0 = sinks ? (t0 - k + 1 > 0 ? t0 - k + 1 : 0) : t0, s1 = t1 < wo ? t1 : wo;
            const int64_t nm = s1 - s0, ws = nm + k - 1, from = t0 - s0, nc = t1 - t0;
            const int first = t0 == 0, direct = s0 + lf_pad(nm) + k - 1 <= w;
            if (sinks) {
                memset(gpad, 0, (size_t)(4 * gs) * sizeof(float));
                memset(ring_g, 0, (size_t)(k * slot_g) * sizeof(float)); /* the rows above p0 are 0 */
            }
            /* input row r at ring row (r - p0) % k; derivative row p at (p - p0 + k - 1) % k */
            for (int64_t r = p0; r < p0 + k - 1; r++)
                lf_forward_row(xp + r * x_row + s0, yp + r * y_row + s0, ws, direct, tx, ty, tq, tp, cq, win,
                               k, ring_h + ((r - p0) % k) * slot_h, lf_pad(nm), ms);
            for (int64_t p = p0; p < p1; p++) {
                const int64_t r = p + k - 1;
                lf_forward_row(xp + r * x_row + s0, yp + r * y_row + s0, ws, direct, tx, ty, tq, tp, cq, win,
                               k, ring_h + ((r - p0) % k) * slot_h, lf_pad(nm), ms);
                lf_ring_rows(rows, ring_h, slot_h, p - p0, k);
                lf_vfilter_k(rows, ms, lf_pad(nm), win, k, 4, stats, ms);
                lf_map_row(stats, ms, lf_pad(nm), nm, c1, c2, vals, gpad + (k - 1), gs, cs_only, sinks);
                if (p >= r0) {
                    const double total = nm > from ? lf_sum(vals + from, nm - from) : 0.0;
                    sums[p] = first ? total : sums[p] + total;
                }
                if (!sinks) continue;
                lf_adjoint_row(gpad + from, gs, lf_pad(nc), wf, k, ring_g + ((p - p0 + k - 1) % k) * slot_g,
                               tile, m);
                if (p < r0) continue;
                lf_ring_rows(rows, ring_g, slot_g, p - p0, k);
                lf_vfilter_k(rows, tile, lf_pad(nc), wf, k, m, adj, tile);
                lf_gradient_row(adj, tile, nc, xp + p * x_row + t0, yp + p * y_row + t0,
                                gxp ? gxp + p * w + t0 : NULL, gyp ? gyp + p * w + t0 : NULL, scale, sinks);
            }
            if (!sinks) continue;
            /* the last k - 1 rows: no statistics rows below p1 */
            for (int64_t q = p1; q < r1; q++) {
                memset(ring_g + ((q - p0 + k - 1) % k) * slot_g, 0, (size_t)slot_g * sizeof(float));
                if (q < r0) continue;
                lf_ring_rows(rows, ring_g, slot_g, q - p0, k);
                lf_vfilter_k(rows, tile, lf_pad(nc), wf, k, m, adj, tile);
                lf_gradient_row(adj, tile, nc, xp + q * x_row + t0, yp + q * y_row + t0,
                                gxp ? gxp + q * w + t0 : NULL, gyp ? gyp + q * w + t0 : NULL, scale, sinks);
            }
        }
    }
    for (int b = 0; b < NBUF; b++) free(buf[b]);
    return 0;
}

/* See the top of the file. x_plane, x_row (y_plane, y_row): strides in elements (the rows are
   contiguous); gx, gy: contiguous (planes, h, w) or NULL; rowsum: (planes, h - k + 1). */
int lf_ssim2d_f32(const float *x, const float *y, int64_t x_plane, int64_t x_row, int64_t y_plane,
                  int64_t y_row, float *gx, float *gy, int64_t planes, int64_t h, int64_t w,
                  const float *window, int64_t k, double c1, double c2, int32_t cs_only, double scale,
                  int64_t r0, int64_t r1, double *rowsum) {
    if (k < 1 || k > LF_MAX_WINDOW || k % 2 == 0) return -2;
    const int sinks = (gx != NULL) | (gy != NULL) << 1;
    const int kk = (int)k;
    const float f1 = (float)c1, f2 = (float)c2, cq = (float)(c1 + c2), sc = (float)scale;
#define LF_CASE(CS, SINKS)                                                                         \
    return lf_ssim2d(x, y, x_plane, x_row, y_plane, y_row, gx, gy, planes, h, w, window, kk, f1, f2, \
                     cq, sc, r0, r1, rowsum, CS, SINKS)
    if (cs_only) {
        switch (sinks) {
        case 0: LF_CASE(1, 0);
        case 1: LF_CASE(1, 1);
        case 2: LF_CASE(1, 2);
        default: LF_CASE(1, 3);
        }
    }
    switch (sinks) {
    case 0: LF_CASE(0, 0);
    case 1: LF_CASE(0, 1);
    case 2: LF_CASE(0, 2);
    default: LF_CASE(0, 3);
    }
#undef LF_CASE
}

/* 2x2 average pooling of `planes` planes x (h, w) into out (planes, h / 2, w / 2), odd sizes floored,
   in the order of _image._rows: ((x[2i][2j] + x[2i+1][2j]) + (x[2i][2j+1] + x[2i+1][2j+1])) / 4.
   x_plane, x_row: strides in elements (the rows are contiguous); out is contiguous. */
void lf_avgpool2_f32(const float *x, int64_t x_plane, int64_t x_row, float *out, int64_t planes, int64_t h,
                     int64_t w) {
    const int64_t ho = h / 2, wo = w / 2;
    for (int64_t pl = 0; pl < planes; pl++) {
        for (int64_t i = 0; i < ho; i++) {
            const float *restrict a = x + pl * x_plane + 2 * i * x_row, *restrict b = a + x_row;
            float *restrict o = out + (pl * ho + i) * wo;
#pragma omp simd
            for (int64_t j = 0; j < wo; j++)
                o[j] = ((a[2 * j] + b[2 * j]) + (a[2 * j + 1] + b[2 * j + 1])) * 0.25f;
        }
    }
}

/* The adjoint of `factor`x`factor` average pooling, added: z[pl][i][j] += s g[pl][i / f][j / f] for
   i < hc f, j < wc f, with s = scale * weights[pl] (scale where weights is NULL). g: contiguous
   (planes, hc, wc); z: contiguous (planes, h, w), h >= hc f and w >= wc f. Returns 0, or -1 when the
   working memory cannot be allocated. */
int lf_spread_f32(const float *g, const float *weights, double scale, float *z, int64_t planes, int64_t hc,
                  int64_t wc, int64_t h, int64_t w, int64_t factor) {
    const int64_t n = wc * factor;
    float *e = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!e) return -1;
    for (int64_t pl = 0; pl < planes; pl++) {
        const float s = (float)(weights ? scale * weights[pl] : scale);
        for (int64_t ic = 0; ic < hc; ic++) {
            const float *restrict gr = g + (pl * hc + ic) * wc;
            for (int64_t jc = 0; jc < wc; jc++) {
                const float v = s * gr[jc];
                for (int64_t u = 0; u < factor; u++) e[jc * factor + u] = v;
            }
            for (int64_t t = 0; t < factor; t++) {
                float *restrict zr = z + (pl * h + ic * factor + t) * w;
#pragma omp simd
                for (int64_t j = 0; j < n; j++) zr[j] += e[j];
            }
        }
    }
    free(e);
    return 0;
}
