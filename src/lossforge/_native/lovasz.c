/* Lovász-softmax against class indices (lossforge/losses/_region_kernels.py), float32.
 *
 * The same computation as the torch path of _LovaszSoftmaxFn, from the same softmax p, one row at a
 * time. A row is an (image, selected class) pair (per image) or a selected class over the whole
 * batch, its pixels in (image, pixel) order. Kernels:
 *
 * lf_lovasz_labels(target, lab, c, lut, ignore, has_ignore, count): lab[u] = lut[target[u]] (the
 *     slot of a selected class, k for another class), or -1 where target[u] == ignore (has_ignore), for
 *     u < count. Returns 0, or -2 for a target outside [0, c).
 * lf_lovasz_rows_f32(p, lab, s, u, f, n, c, k, length, index, per_image, r0, r1): for the rows r in
 *     [r0, r1) (slot r % k of image r / k per image, else slot r): the signed Lovász gradient s = g *
 *     sign(d) of the error e = |d|, d = p - fg (0 at ignored pixels), into s (N, k, length), the loss
 *     u[r] = sum e g (added in double) and the foreground count f[r]. index: the class of each slot.
 *     Returns 0, or -1 when scratch memory cannot be allocated.
 * lf_lovasz_backward_f32(p, s, gu, grad, c, k, length, lut, per_image, u0, u1): the gradient of
 *     sum_r gu[r] u[r] with respect to the logits, for the pixels in [u0, u1): softmax's backward of
 *     dp = s * gu[row] (0 for the classes not selected).
 *
 * With F the row's foreground count, a foreground pixel with b background errors above it has
 * g = 1 / (F + b) and a background pixel with a foreground and b background errors above it
 * g = (F - a) / ((F + b)(F + b + 1)) (errors in decreasing order, ties by position). Only the pixels
 * where the foreground and background errors overlap are sorted: a foreground error above every
 * background error has g = 1 / F, a background error below every foreground error g = 0. They are
 * found exactly (a foreground error at most the largest background error hi, a background error at
 * least the smallest foreground error lo) and sorted by an LSD radix sort of packed 64-bit items:
 * the key bits(1) - bits(e) (order-preserving for e in [0, 1], 30 bits), the position (32 bits: the
 * offset in s from the row's first pixel) and the label (1 bit); input in position order, so ties
 * keep it. A row without foreground puts its
 * whole gradient on its first largest error. The g formulas are evaluated in float32 as in torch.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* pixels handled together by the vector loops (a multiple of 64: the row scan's candidate masks) */
#define TILE 256
#define ONE_BITS 0x3F800000u
#define KEY_SHIFT 33
#define RADIX_BITS 10
#define RADIX (1 << RADIX_BITS)
#define PASSES ((30 + RADIX_BITS - 1) / RADIX_BITS) /* the key has 30 bits */

static inline uint32_t float_bits(float v) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static inline float bits_float(uint32_t u) {
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

int lf_lovasz_labels(const int64_t *restrict target, int32_t *restrict lab, int64_t c,
                     const int64_t *restrict lut, int64_t ignore, int64_t has_ignore, int64_t count) {
    int bad = 0;
    for (int64_t j = 0; j < count; j++) {
        const int64_t t = target[j];
        const int ignored = has_ignore && t == ignore, outside = t < 0 || t >= c;
        bad |= !ignored && outside;
        lab[j] = ignored || outside ? -1 : (int32_t)lut[t];
    }
    return bad ? -2 : 0;
}

/* Stable LSD radix sort of items[0, m) by their key bits (tmp: scratch of m); the result in items. */
static void radix_sort(uint64_t *restrict items, uint64_t *restrict tmp, int64_t m) {
    if (m < 48) { /* insertion sort: the items are distinct (positions), so a plain comparison is stable */
        for (int64_t i = 1; i < m; i++) {
            const uint64_t v = items[i];
            int64_t j = i - 1;
            while (j >= 0 && items[j] > v) {
                items[j + 1] = items[j];
                j--;
            }
            items[j + 1] = v;
        }
        return;
    }
    uint32_t hist[PASSES][RADIX];
    memset(hist, 0, sizeof hist);
    for (int64_t i = 0; i < m; i++) {
        const uint64_t key = items[i] >> KEY_SHIFT;
        for (int d = 0; d < PASSES; d++) hist[d][(key >> (d * RADIX_BITS)) & (RADIX - 1)]++;
    }
    uint64_t *src = items, *dst = tmp;
    for (int d = 0; d < PASSES; d++) {
        uint32_t *h = hist[d];
        const uint64_t first = ((src[0] >> KEY_SHIFT) >> (d * RADIX_BITS)) & (RADIX - 1);
        if (h[first] == (uint32_t)m) continue; /* one digit value: nothing moves */
        uint32_t total = 0;
        for (int b = 0; b < RADIX; b++) {
            const uint32_t cnt = h[b];
            h[b] = total;
            total += cnt;
        }
        const int shift = KEY_SHIFT + d * RADIX_BITS;
        for (int64_t i = 0; i < m; i++) {
            const uint64_t v = src[i];
            dst[h[(v >> shift) & (RADIX - 1)]++] = v;
        }
        uint64_t *swap = src;
        src = dst;
        dst = swap;
    }
    if (src != items) memcpy(items, src, (size_t)m * sizeof *items);
}

/* Foreground count, largest foreground probability and largest background error of one segment. */
static void segment_stats(const float *restrict pp, const int32_t *restrict ll, int64_t len, int32_t slot,
                          int64_t *cnt, float *top, float *hi) {
    int64_t c = 0;
    float t = *top, h = *hi;
#pragma omp simd reduction(+ : c) reduction(max : t, h)
    for (int64_t j = 0; j < len; j++) {
        const int32_t l = ll[j];
        const float v = pp[j];
        const int isf = l == slot;
        const float fv = isf ? v : 0.0f, bv = (!isf && l >= 0) ? v : 0.0f;
        c += isf;
        t = fv > t ? fv : t;
        h = bv > h ? bv : h;
    }
    *cnt += c;
    *top = t;
    *hi = h;
}

int lf_lovasz_rows_f32(const float *restrict p, const int32_t *restrict lab, float *restrict s,
                       double *restrict u_out, int64_t *restrict f_out, int64_t n, int64_t c, int64_t k,
                       int64_t length, const int64_t *restrict index, int64_t per_image, int64_t r0,
                       int64_t r1) {
    const int64_t row_len = per_image ? length : n * length;
    uint64_t *items = malloc((size_t)(2 * row_len) * sizeof *items);
    if (!items) return -1;
    uint64_t *tmp = items + row_len;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t slot = per_image ? r % k : r, cl = index[slot];
        const int64_t i0 = per_image ? r / k : 0, i1 = per_image ? i0 + 1 : n;
        int64_t big_f = 0;
        float top = 0.0f, hi = 0.0f;
        for (int64_t im = i0; im < i1; im++)
            segment_stats(p + (im * c + cl) * length, lab + im * length, length, (int32_t)slot, &big_f,
                          &top, &hi);
        const float lo = big_f > 0 ? 1.0f - top : 2.0f; /* the smallest foreground error */
        const float fg_grad = 1.0f / (float)(big_f > 0 ? big_f : 1);
        const uint32_t hi_bits = float_bits(hi), lo_bits = float_bits(lo);
        double fg_sum = 0.0; /* errors of the foreground pixels above the overlap (g = 1 / F) */
        int64_t m = 0, fg_sorted = 0;
        float *s_row = s + (i0 * k + slot) * length; /* a sorted item's position: its offset from here */
        for (int64_t im = i0; im < i1; im++) {
            const float *pp = p + (im * c + cl) * length;
            const int32_t *ll = lab + im * length;
            float *ss = s + (im * k + slot) * length;
            const uint64_t base = (uint64_t)(ss - s_row);
            for (int64_t j0 = 0; j0 < length; j0 += TILE) {
                const int64_t w = length - j0 < TILE ? length - j0 : TILE;
                uint8_t cand[TILE];
                if (w < TILE) memset(cand + w, 0, (size_t)(TILE - w));
                float part = 0.0f; /* a tile's sum in float lanes, the tiles' in double */
#pragma omp simd reduction(+ : part)
                for (int64_t i = 0; i < w; i++) {
                    const int32_t l = ll[j0 + i];
                    const float v = pp[j0 + i];
                    const int isf = l == slot;
                    const float ef = 1.0f - v; /* unconditional: the loop has no branch and vectorises */
                    const float e = isf ? ef : v;
                    /* errors are >= 0: compared by their bits (float comparisons would branch) */
                    const uint32_t eb = float_bits(e);
                    const int sorted = isf ? eb <= hi_bits : (l >= 0) & (eb >= lo_bits);
                    ss[j0 + i] = isf ? -fg_grad : 0.0f;
                    cand[i] = (uint8_t)sorted;
                    part += (isf & !sorted) ? e : 0.0f;
                }
                fg_sum += (double)part;
                for (int64_t q = 0; q < TILE; q += 64) {
                    uint64_t mask = 0; /* bit i: pixel j0 + q + i is sorted (8 flags -> 8 bits: a multiply) */
                    for (int i = 0; i < 64; i += 8) {
                        uint64_t word;
                        memcpy(&word, cand + q + i, sizeof word);
                        mask |= ((word * 0x0102040810204080ull) >> 56) << i;
                    }
                    while (mask) {
                        const int64_t jj = j0 + q + __builtin_ctzll(mask);
                        mask &= mask - 1;
                        const int isf = ll[jj] == slot;
                        const float e = isf ? 1.0f - pp[jj] : pp[jj];
                        items[m++] = ((uint64_t)(ONE_BITS - float_bits(e)) << KEY_SHIFT) |
                                     ((base + (uint64_t)jj) << 1) | (uint64_t)isf;
                        fg_sorted += isf;
                    }
                }
            }
        }
        radix_sort(items, tmp, m);
        double total = fg_sum * (double)fg_grad;
        int64_t a = big_f - fg_sorted, b = 0; /* foreground above (all unsorted ones), background above */
        for (int64_t i = 0; i < m; i++) { /* branch-free: foreground and background items interleave */
            const uint64_t v = items[i];
            const int64_t isf = (int64_t)(v & 1);
            const uint32_t key = (uint32_t)(v >> KEY_SHIFT);
            const float e = bits_float(ONE_BITS - key);
            const float fb = (float)(big_f + b);
            const float gf = 1.0f / fb, gb = (float)(big_f - a) / (fb * (fb + 1.0f));
            const float g = isf ? gf : gb;
            a += isf;
            b += 1 - isf;
            /* s = g sign(d): -g for the foreground, g for the background, 0 where e = 0 */
            const uint32_t sg = (float_bits(g) ^ ((uint32_t)isf << 31)) & (key == ONE_BITS ? 0u : ~0u);
            s_row[(v >> 1) & 0xFFFFFFFFu] = bits_float(sg);
            total += (double)e * (double)g;
        }
        if (big_f == 0 && hi > 0.0f) { /* no foreground: the first largest error gets the whole gradient */
            for (int64_t im = i0; im < i1; im++) {
                const float *pp = p + (im * c + cl) * length;
                const int32_t *ll = lab + im * length;
                int64_t j = 0;
                while (j < length && !(ll[j] >= 0 && pp[j] == hi)) j++;
                if (j < length) {
                    s[(im * k + slot) * length + j] = 1.0f;
                    total = (double)hi;
                    break;
                }
            }
        }
        u_out[r] = total;
        f_out[r] = big_f;
    }
    free(items);
    return 0;
}

void lf_lovasz_backward_f32(const float *restrict p, const float *restrict s, const float *restrict gu,
                            float *restrict grad, int64_t c, int64_t k, int64_t length,
                            const int64_t *restrict lut, int64_t per_image, int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1;) {
        const int64_t n = u / length, j0 = u - n * length;
        const int64_t j1 = j0 + (u1 - u < length - j0 ? u1 - u : length - j0);
        const float *ps = p + n * c * length, *sn = s + n * k * length, *gn = gu + (per_image ? n * k : 0);
        float *gs = grad + n * c * length;
        for (int64_t j = j0; j < j1; j += TILE) {
            const int64_t w = j1 - j < TILE ? j1 - j : TILE;
            float r[TILE];
            for (int64_t i = 0; i < w; i++) r[i] = 0.0f;
            for (int64_t cl = 0; cl < c; cl++) {
                const int64_t slot = lut[cl];
                if (slot >= k) continue;
                const float g = gn[slot];
                const float *pr = ps + cl * length + j, *sr = sn + slot * length + j;
#pragma omp simd
                for (int64_t i = 0; i < w; i++) r[i] += pr[i] * (sr[i] * g);
            }
            for (int64_t cl = 0; cl < c; cl++) {
                const int64_t slot = lut[cl];
                const float *pr = ps + cl * length + j;
                float *gr = gs + cl * length + j;
                if (slot >= k) {
#pragma omp simd
                    for (int64_t i = 0; i < w; i++) gr[i] = pr[i] * -r[i];
                } else {
                    const float g = gn[slot];
                    const float *sr = sn + slot * length + j;
#pragma omp simd
                    for (int64_t i = 0; i < w; i++) gr[i] = pr[i] * (sr[i] * g - r[i]);
                }
            }
        }
        u += j1 - j0;
    }
}
