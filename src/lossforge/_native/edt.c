/* Exact squared Euclidean distance transforms (lossforge/losses/_distance.py), float32 and float64.
 *
 * The separable 1-D passes of the torch path (Felzenszwalb & Huttenlocher, "Distance Transforms of
 * Sampled Functions", Theory of Computing 2012), one line at a time: along the last axis the distance
 * to the nearest site of the line, then along every other axis min_y' f(y') + (y - y')^2. The value
 * `big` (an integer above every squared distance) marks "no site": its parabolas are left out, and a
 * line without any other value stays `big`. Kernels (<t>: f32, f64, the type of the distances):
 *
 * lf_edt_planes_<t>(sites, out, planes, start, stop, h, w, big): the 2-D transform of the planes
 *     p in [start, stop) of out (., h, w), from plane p % planes of the bool array sites (planes, h,
 *     w), complemented when p >= planes (so one call gives the transforms of a mask and of its
 *     complement). Both passes of a plane run in scratch memory that stays in cache.
 * lf_edt_pass_<t>(f, n, inner, start, stop, big): the pass along the middle axis of a contiguous
 *     (outer, n, inner) array, in place, for the lines l = o * inner + i in [start, stop).
 * lf_edt_root_<t>_<u>(f, out, start, stop, cap): out[i] = min(sqrt((u) f[i]), (u) cap) for i in
 *     [start, stop), the root correctly rounded.
 *
 * Every value is an integer, held exactly in a double. A line's minimum is taken over a window
 * |y - y'| <= W first (vector operations across 16 lines, enough for the lines near a site), and by
 * the lower envelope of the parabolas where no window up to WMAX certifies it; the envelope compares
 * intersections in int64 by cross-multiplication (no division, no rounding). The results are exact,
 * equal to the torch path's. The kernels return 0, or -1 when scratch memory cannot be allocated.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* Lines processed together (one tile): adjacent in memory where a pass is strided, so that each row
   of a tile is one contiguous copy, and the lanes of the windowed minimum's vector operations. */
#define TILE 16
/* The widest window of the windowed minimum; lines it does not certify get the lower envelope. */
#define WMAX 16

/* d[i] = squared distance from i to the nearest i' with s[i'] != inv along a line of n, or `big`
   throughout when the line has none. */
static void first_line(const uint8_t *restrict s, uint8_t inv, double *restrict d, int64_t n,
                       double big) {
    int64_t prev = -1; /* the last site seen */
    for (int64_t i = 0; i < n; i++) {
        if (s[i] != inv) prev = i;
        d[i] = (double)(prev < 0 ? n : i - prev);
    }
    if (prev < 0) {
        for (int64_t i = 0; i < n; i++) d[i] = big;
        return;
    }
    for (int64_t i = n - 1; i > prev; i--) d[i] *= d[i]; /* right of the last site: forward distance */
    for (int64_t i = prev, next = prev; i >= 0; i--) {
        if (s[i] != inv) next = i;
        const double r = (double)(next - i), m = r < d[i] ? r : d[i];
        d[i] = m * m;
    }
}

/* out[x * os] = min over real y of f[y * fs] + (x - y)^2 for x < n (f[y] real where 2 f[y] < big, at
   least one real): Felzenszwalb-Huttenlocher's lower envelope, in int64. v, g: scratch of n (the stack
   of parabolas: their roots y and f[y] + y^2). */
static void lower_envelope(const double *restrict f, int64_t fs, double *restrict out, int64_t os,
                           int64_t n, double big, int64_t *restrict v, int64_t *restrict g) {
    int64_t k = -1; /* the top of the stack */
    for (int64_t q = 0; q < n; q++) {
        const double a = f[q * fs];
        if (2.0 * a >= big) continue;
        const int64_t gq = (int64_t)a + q * q;
        /* pop v[k] while its interval is empty: q meets v[k] at or left of where v[k] meets v[k - 1],
           (gq - g[k]) / (q - v[k]) <= (g[k] - g[k - 1]) / (v[k] - v[k - 1]) */
        while (k >= 1 && (gq - g[k]) * (v[k] - v[k - 1]) <= (g[k] - g[k - 1]) * (q - v[k])) k--;
        k++;
        v[k] = q;
        g[k] = gq;
    }
    /* parabola j + 1 is at or below parabola j from x on once g[j+1] - g[j] <= 2 x (v[j+1] - v[j]) */
    int64_t j = 0;
    for (int64_t x = 0; x < n; x++) {
        while (j < k && g[j + 1] - g[j] <= 2 * x * (v[j + 1] - v[j])) j++;
        out[x * os] = (double)(g[j] - 2 * x * v[j] + x * x);
    }
}

/* res = the envelope of each of the first m lines of tile (n, TILE) (lane t: tile[y * TILE + t]).
 * A constant line (no site, or all at one distance) is its own envelope. The others are first
 * minimised over a window |x - y| <= W, widened step by step in vector operations across the lanes; a
 * line is exact once its largest value is at most (W + 1)^2 (a farther y costs at least that) or once
 * the window spans it. Lines still uncertified at W = WMAX get the lower envelope. */
static void tile_envelope(const double *restrict tile, double *restrict res, int64_t n, int64_t m,
                          double big, int64_t *restrict v, int64_t *restrict g) {
    const double far = (double)((WMAX + 1) * (WMAX + 1));
    double lo[TILE], hi[TILE], run[TILE], longest[TILE];
    int todo[TILE], window[TILE];
    for (int t = 0; t < TILE; t++) {
        lo[t] = hi[t] = tile[t];
        run[t] = longest[t] = tile[t] > far;
    }
    for (int64_t y = 1; y < n; y++) {
        const double *row = tile + y * TILE;
        for (int t = 0; t < TILE; t++) {
            lo[t] = row[t] < lo[t] ? row[t] : lo[t];
            hi[t] = row[t] > hi[t] ? row[t] : hi[t];
            run[t] = row[t] > far ? run[t] + 1.0 : 0.0;
            longest[t] = run[t] > longest[t] ? run[t] : longest[t];
        }
    }
    /* a run of more than 2 WMAX + 1 values above (WMAX + 1)^2 keeps its middle above that bound: such a
       line goes to the lower envelope at once */
    int left = 0;
    for (int t = 0; t < TILE; t++) {
        todo[t] = t < m && lo[t] != hi[t];
        window[t] = todo[t] && longest[t] <= 2 * WMAX + 1;
        left += window[t];
    }
    for (int64_t i = 0; i < n * TILE; i++) res[i] = tile[i];
    for (int64_t d = 1; left && d <= WMAX && d < n; d++) {
        const double dd = (double)(d * d);
        for (int64_t y = d; y < n; y++) {
            double *r = res + y * TILE;
            const double *a = tile + (y - d) * TILE, *b = tile + (n - 1 - y + d) * TILE;
            double *rb = res + (n - 1 - y) * TILE;
            for (int t = 0; t < TILE; t++) {
                const double x = a[t] + dd, z = b[t] + dd;
                r[t] = x < r[t] ? x : r[t];
                rb[t] = z < rb[t] ? z : rb[t];
            }
        }
        if (d == n - 1) return; /* the window spans every line */
        if ((d & (d - 1)) == 0 || d == WMAX) { /* certify at d = 1, 2, 4, 8, ... */
            double top[TILE];
            for (int t = 0; t < TILE; t++) top[t] = res[t];
            for (int64_t y = 1; y < n; y++) {
                const double *row = res + y * TILE;
                for (int t = 0; t < TILE; t++) top[t] = row[t] > top[t] ? row[t] : top[t];
            }
            const double bound = (double)((d + 1) * (d + 1));
            left = 0;
            for (int t = 0; t < TILE; t++) {
                todo[t] = todo[t] && top[t] > bound;
                left += window[t] = window[t] && todo[t];
            }
        }
    }
    for (int t = 0; t < TILE; t++)
        if (todo[t]) lower_envelope(tile + t, TILE, res + t, TILE, n, big, v, g);
}

#define LF_EDT_KERNELS(SUF, T)                                                                         \
    int lf_edt_planes_##SUF(const uint8_t *restrict sites, T *restrict out, int64_t planes,            \
                            int64_t start, int64_t stop, int64_t h, int64_t w, double big) {           \
        const int64_t size = h * w;                                                                    \
        double *buf = malloc((size_t)(size + 2 * TILE * h) * sizeof *buf);                             \
        int64_t *stack = malloc((size_t)(2 * h) * sizeof *stack);                                      \
        if (!buf || !stack) {                                                                          \
            free(buf);                                                                                 \
            free(stack);                                                                               \
            return -1;                                                                                 \
        }                                                                                              \
        double *plane = buf, *tile = buf + size, *res = tile + TILE * h;                               \
        for (int64_t p = start; p < stop; p++) {                                                       \
            const uint8_t *s = sites + (p % planes) * size;                                            \
            const uint8_t inv = p >= planes; /* the complement's sites are the mask's zeros */         \
            T *o = out + p * size;                                                                     \
            for (int64_t y = 0; y < h; y++) first_line(s + y * w, inv, plane + y * w, w, big);         \
            for (int64_t x0 = 0; x0 < w; x0 += TILE) { /* columns x0 .. x0 + m - 1 */                  \
                const int64_t m = w - x0 < TILE ? w - x0 : TILE;                                       \
                for (int64_t y = 0; y < h; y++)                                                        \
                    for (int64_t t = 0; t < TILE; t++)                                                 \
                        tile[y * TILE + t] = t < m ? plane[y * w + x0 + t] : 0.0;                      \
                tile_envelope(tile, res, h, m, big, stack, stack + h);                                 \
                for (int64_t y = 0; y < h; y++)                                                        \
                    for (int64_t t = 0; t < m; t++) o[y * w + x0 + t] = (T)res[y * TILE + t];          \
            }                                                                                          \
        }                                                                                              \
        free(buf);                                                                                     \
        free(stack);                                                                                   \
        return 0;                                                                                      \
    }                                                                                                  \
                                                                                                       \
    int lf_edt_pass_##SUF(T *restrict f, int64_t n, int64_t inner, int64_t start, int64_t stop,        \
                          double big) {                                                                \
        double *buf = malloc((size_t)(2 * TILE * n) * sizeof *buf);                                    \
        int64_t *stack = malloc((size_t)(2 * n) * sizeof *stack);                                      \
        if (!buf || !stack) {                                                                          \
            free(buf);                                                                                 \
            free(stack);                                                                               \
            return -1;                                                                                 \
        }                                                                                              \
        double *tile = buf, *res = buf + TILE * n;                                                     \
        for (int64_t l = start; l < stop;) { /* lines l .. l + m - 1, adjacent in memory */            \
            const int64_t i0 = l % inner;                                                              \
            int64_t m = inner - i0 < TILE ? inner - i0 : TILE;                                         \
            m = stop - l < m ? stop - l : m;                                                           \
            T *base = f + (l / inner) * n * inner + i0;                                                \
            for (int64_t y = 0; y < n; y++)                                                            \
                for (int64_t t = 0; t < TILE; t++)                                                     \
                    tile[y * TILE + t] = t < m ? (double)base[y * inner + t] : 0.0;                    \
            tile_envelope(tile, res, n, m, big, stack, stack + n);                                     \
            for (int64_t y = 0; y < n; y++)                                                            \
                for (int64_t t = 0; t < m; t++) base[y * inner + t] = (T)res[y * TILE + t];            \
            l += m;                                                                                    \
        }                                                                                              \
        free(buf);                                                                                     \
        free(stack);                                                                                   \
        return 0;                                                                                      \
    }

LF_EDT_KERNELS(f32, float)
LF_EDT_KERNELS(f64, double)

#define LF_EDT_ROOT(SUF, T, U, SQRT)                                                                   \
    int lf_edt_root_##SUF(const T *restrict f, U *restrict out, int64_t start, int64_t stop,           \
                          double cap_) {                                                               \
        const U cap = (U)cap_;                                                                         \
        for (int64_t i = start; i < stop; i++) {                                                       \
            const U r = SQRT((U)f[i]);                                                                 \
            out[i] = r > cap ? cap : r;                                                                \
        }                                                                                              \
        return 0;                                                                                      \
    }

LF_EDT_ROOT(f32_f32, float, float, sqrtf)
LF_EDT_ROOT(f32_f64, float, double, sqrt)
LF_EDT_ROOT(f64_f32, double, float, sqrtf)
LF_EDT_ROOT(f64_f64, double, double, sqrt)
