/* Block sums of the fused elementwise regression losses (lossforge/losses/_fused.py), float32.
 *
 * lf_<loss>_sum_f32(x, t, g, n, scale, p0, p1, p2) returns the sum over i < n of U(x[i] - t[i]), added in
 * double, and, unless g is NULL, writes scale * dU/dd into g[i]. p0 and p1 are the loss's parameters.
 * Each is the same formula as the loss's ATen block sum (`_*_sum` in _regression.py), evaluated in one
 * vectorised pass. A shortcut that overflows (d * d) makes the sum non-finite, and the caller then
 * does the block again with the exact ATen kernel.
 */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* glibc's vector math library (libmvec) has a SIMD logf: declared so, the compiler may vectorise the
   loops that call it (the scalar version is used where libmvec is not linked). exp and log1p are
   written out below (lf_exp, lf_log1p, lf_expm1_small) so that the loops vectorise with any C library:
   glibc's vector versions (libmvec) are about as fast, but musl and macOS have none, and a scalar call
   stops the vectorisation of its loop. */
#pragma omp declare simd notinbranch
float logf(float);

/* a * b + c, fused where the CPU has FMA (one rounding), else as written */
#ifdef __FMA__
#define LF_FMA(a, b, c) fmaf((a), (b), (c))
#else
#define LF_FMA(a, b, c) ((a) * (b) + (c))
#endif

/* exp(x) in float32, written to vectorise: x = n ln2 + r
   with n = rint(x / ln2) and ln2 split in two (Cody and Waite) so that r, |r| <= ln2 / 2, is exact to
   rounding; exp(r) by its Taylor polynomial of degree 7 (truncation below 1e-8 relative); 2^n applied
   as two normal powers of two, so that results near the overflow and underflow thresholds round as
   the product does (inf above 88.72, gradual underflow to 0 below -87.3). NaN stays NaN. Error: a unit
   or two in the last place (tests/core/test_native.py holds it to float64). */
static inline float lf_exp(float x) {
    const float xc = x < -104.0f ? -104.0f : (x > 89.0f ? 89.0f : x);
    const float n = rintf(xc * 1.44269504088896341f);
    const float r = LF_FMA(-n, 1.428606765330187e-6f, LF_FMA(-n, 0.693145751953125f, xc));
    float poly = 1.0f / 5040;
    poly = LF_FMA(poly, r, 1.0f / 720);
    poly = LF_FMA(poly, r, 1.0f / 120);
    poly = LF_FMA(poly, r, 1.0f / 24);
    poly = LF_FMA(poly, r, 1.0f / 6);
    poly = LF_FMA(poly, r, 0.5f);
    poly = LF_FMA(poly, r, 1.0f);
    poly = LF_FMA(poly, r, 1.0f);
    const int32_t k = (int32_t)n;
    const int32_t k1 = k / 2, k2 = k - k1;
    const int32_t b1 = (k1 + 127) << 23, b2 = (k2 + 127) << 23;
    float s1, s2;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    const float out = poly * s1 * s2;
    return x == x ? out : x;
}

/* expm1(x) for |x| <= 1: its Taylor series to x^11 / 11! (truncation below 3e-9 relative; for x < 0
   the terms alternate and shrink, and the sum is at least 0.63 |x|: no cancellation) */
static inline float lf_expm1_small(float x) {
    float p = 1.0f / 39916800;
    p = LF_FMA(p, x, 1.0f / 3628800);
    p = LF_FMA(p, x, 1.0f / 362880);
    p = LF_FMA(p, x, 1.0f / 40320);
    p = LF_FMA(p, x, 1.0f / 5040);
    p = LF_FMA(p, x, 1.0f / 720);
    p = LF_FMA(p, x, 1.0f / 120);
    p = LF_FMA(p, x, 1.0f / 24);
    p = LF_FMA(p, x, 1.0f / 6);
    p = LF_FMA(p, x, 0.5f);
    p = LF_FMA(p, x, 1.0f);
    return p * x;
}

/* log1p(x) in float32, written to vectorise:
   u = 1 + x = 2^k m with m in [sqrt(1/2), sqrt(2)) taken from the bits, c = (x - (u - 1)) / u the
   rounding error of u (Goldberg's correction), log m = 2 atanh(s) = f - s (f - z P(z)), s = f / (2 + f),
   f = m - 1 (exact), z = s^2 <= 0.03 (series to s^11: truncation below 1e-10); k ln 2 split in two.
   -1 gives -inf, below -1 NaN, inf inf, NaN NaN, -0 -0. Error: a unit or two in the last place. */
static inline float lf_log1p(float x) {
    const float u = 1.0f + x;
    int32_t bits;
    memcpy(&bits, &u, sizeof bits);
    const int32_t shifted = bits + (0x3f800000 - 0x3f3504f3);  /* 0x3f3504f3: sqrt(1/2) */
    const int32_t k = (shifted >> 23) - 127;
    const int32_t mbits = (shifted & 0x007fffff) + 0x3f3504f3;
    float m;
    memcpy(&m, &mbits, sizeof m);
    const float f = m - 1.0f;
    const float c = (x - (u - 1.0f)) / u;
    const float s = f / (2.0f + f);
    const float z = s * s;
    float p = 2.0f / 11;
    p = LF_FMA(p, z, 2.0f / 9);
    p = LF_FMA(p, z, 2.0f / 7);
    p = LF_FMA(p, z, 2.0f / 5);
    p = LF_FMA(p, z, 2.0f / 3);
    const float kf = (float)k;
    /* log m = 2s + s z P = f - s (f - z P): f exact, the correction a small fraction of it */
    const float lo = LF_FMA(kf, 1.428606765330187e-6f, c) + LF_FMA(-s, f - z * p, f);
    const float out = LF_FMA(kf, 0.693145751953125f, lo);
    float r = x == 0.0f ? x : out;  /* keeps -0 */
    r = x == INFINITY ? x : r;
    r = x == -1.0f ? -INFINITY : r;
    return x >= -1.0f ? r : NAN;  /* below -1, or NaN */
}

/* the same for arrays: the tests' handles on lf_exp and lf_log1p */
void lf_exp_f32(const float *restrict x, float *restrict out, int64_t n) {
    _Pragma("omp simd") for (int64_t i = 0; i < n; i++) out[i] = lf_exp(x[i]);
}

void lf_log1p_f32(const float *restrict x, float *restrict out, int64_t n) {
    _Pragma("omp simd") for (int64_t i = 0; i < n; i++) out[i] = lf_log1p(x[i]);
}

/* b^g for b in [0, 1], g >= 0, without powf (glibc's vector powf: 2.4 ns per element against 0.3
   for expf, docs/benchmarks.md). lf_ipow: an integer g in [0, 7] (the common focal and asymmetric exponents), by
   multiplication; the caller picks the kernel that uses it. lf_epow: any g, exp(g log b), 0 at b = 0
   (1 for g = 0). */
static inline float lf_ipow(float b, float g) {
    const int k = (int)g;
    const float b2 = b * b, b4 = b2 * b2;
    return ((k & 1) ? b : 1.0f) * ((k & 2) ? b2 : 1.0f) * ((k & 4) ? b4 : 1.0f);
}

static inline float lf_epow(float b, float g) {
    const float e = lf_exp(g * logf(b));
    return b > 0.0f ? e : (g > 0.0f ? 0.0f : 1.0f);
}

/* One loop with the gradient, one without; the body sets u (the loss) and du (dU/dx) from xi = x[i]
   and ti = t[i]. (The vectorised loop's remainder, and vectors where glibc's vector functions fall
   back to the scalar ones for a special input, may differ from the rest in the last bit: deterministic
   for a given input and block size, like any compiled kernel.) */
#define LF_SUM_KERNEL_XT(NAME, ...)                                                            \
    double lf_##NAME##_sum_f32(const float *restrict x, const float *restrict t,               \
                               float *restrict g, int64_t n, double scale_, double p0_,        \
                               double p1_, double p2_) {                                       \
        const float scale = (float)scale_, p0 = (float)p0_, p1 = (float)p1_, p2 = (float)p2_;  \
        (void)p0;                                                                              \
        (void)p1;                                                                              \
        (void)p2;                                                                              \
        double acc = 0.0;                                                                      \
        if (g) {                                                                               \
            _Pragma("omp simd reduction(+ : acc)") for (int64_t i = 0; i < n; i++) {           \
                const float xi = x[i], ti = t[i];                                              \
                float u, du;                                                                   \
                __VA_ARGS__;                                                                   \
                g[i] = du * scale;                                                             \
                acc += (double)u;                                                              \
            }                                                                                  \
        } else {                                                                               \
            _Pragma("omp simd reduction(+ : acc)") for (int64_t i = 0; i < n; i++) {           \
                const float xi = x[i], ti = t[i];                                              \
                float u, du;                                                                   \
                __VA_ARGS__;                                                                   \
                (void)du;                                                                      \
                acc += (double)u;                                                              \
            }                                                                                  \
        }                                                                                      \
        return acc;                                                                            \
    }

/* A loss of the residual d = x - t (du is then dU/dd = dU/dx). */
#define LF_SUM_KERNEL(NAME, ...) LF_SUM_KERNEL_XT(NAME, const float d = xi - ti; __VA_ARGS__)

/* |d|; sign(d) (0 at 0, NaN stays NaN) */
LF_SUM_KERNEL(l1, {
    u = fabsf(d);
    du = d > 0.0f ? 1.0f : (d < 0.0f ? -1.0f : d);
})

/* d^2; 2d */
LF_SUM_KERNEL(mse, {
    u = d * d;
    du = 2.0f * d;
})

/* c (d - c/2), c = clamp(d, -delta, delta); c.  p0 = delta */
LF_SUM_KERNEL(huber, {
    const float c = d < -p0 ? -p0 : (d > p0 ? p0 : d);
    u = c * (d - 0.5f * c);
    du = c;
})

/* huber(beta) / beta.  p0 = beta, p1 = 1 / beta */
LF_SUM_KERNEL(smooth_l1, {
    const float c = d < -p0 ? -p0 : (d > p0 ? p0 : d);
    u = c * (d - 0.5f * c) * p1;
    du = c * p1;
})

/* a = |d|. Below 1: log cosh a = log1p(m^2 / (2 (1 + m))), m = expm1(a) by its series (no
   cancellation: a^2/2 to full relative precision), and y = expm1(-2a) = -m (m + 2) / (1 + m)^2. From 1
   on: log cosh a = a + log1p(y / 2), y = exp(-2a) - 1 in [-1, -0.86] (nothing overflows). tanh a =
   -y / (2 + y). Both branches computed, the result chosen by selects. */
LF_SUM_KERNEL(log_cosh, {
    const float a = fabsf(d);
    const int near = a < 1.0f;
    const float m = lf_expm1_small(near ? a : 0.0f);
    const float y = near ? -(m * (m + 2.0f)) / ((1.0f + m) * (1.0f + m)) : lf_exp(-2.0f * a) - 1.0f;
    u = (near ? 0.0f : a) + lf_log1p(near ? m * m / (2.0f + 2.0f * m) : 0.5f * y);
    du = copysignf(-y / (2.0f + y), d);
})

/* d^2 / (sqrt(q) + eps), q = d^2 + eps^2; d / sqrt(q).  p0 = eps */
LF_SUM_KERNEL(charbonnier, {
    const float d2 = d * d;
    const float s = sqrtf(d2 + p0 * p0);
    u = d2 / (s + p0);
    du = d / s;
})

/* log1p(q), q = d^2 / k^2; 2 d / (k^2 (1 + q)).  p0 = 1 / k^2 */
LF_SUM_KERNEL(cauchy, {
    const float q = d * d * p0;
    u = lf_log1p(q);
    du = 2.0f * p0 * d / (1.0f + q);
})

/* U = -expm1(q), dU/dd = d exp(q) / c^2, q = -d^2 / (2 c^2), with one exp: for q >= -1/2, -expm1(q) by
   its series, below it 1 - exp(q) >= 0.39 (no cancellation); exp(q) to full relative precision for the
   gradient.  p0 = 1 / c^2 */
LF_SUM_KERNEL(welsch, {
    const float q = -0.5f * p0 * d * d;
    const float e = lf_exp(q);
    u = q >= -0.5f ? -lf_expm1_small(q >= -0.5f ? q : 0.0f) : 1.0f - e;
    du = d * e * p0;
})

/* 2 d^2 / (d^2 + 4 c^2); 16 c^2 d / (d^2 + 4 c^2)^2.  p0 = 4 c^2 */
LF_SUM_KERNEL(geman_mcclure, {
    const float d2 = d * d;
    const float den = d2 + p0;
    u = 2.0f * d2 / den;
    du = 4.0f * p0 * d / (den * den);
})

/* c^2/6 s (3 - 3s + s^2), s = r^2, r = clamp(d / c, -1, 1); c r ((1 - r)(1 + r))^2.  p0 = 1 / c, p1 = c */
LF_SUM_KERNEL(tukey_biweight, {
    const float z = d * p0;
    const float r = z < -1.0f ? -1.0f : (z > 1.0f ? 1.0f : z);
    const float s = r * r;
    const float m = (1.0f - r) * (1.0f + r);
    u = (p1 * p1 / 6.0f) * s * (3.0f - 3.0f * s + s * s);
    du = p1 * r * m * m;
})

/* w log1p(|d| / e) below w, |d| - C beyond; sign(d) w / (e + |d|) below w, sign(d) beyond.
   p0 = w, p1 = 1 / e, p2 = C = w - w log1p(w / e) */
LF_SUM_KERNEL(wing, {
    const float a = fabsf(d);
    const int near = a < p0;
    const float sg = d > 0.0f ? 1.0f : (d < 0.0f ? -1.0f : d);
    u = near ? p0 * lf_log1p(a * p1) : a - p2;
    du = near ? sg * p0 / (1.0f / p1 + a) : sg;
})

/* ---- binary classification on logits x and targets t in [0, 1] (lossforge/losses/_binary.py) ----
   e = exp(-|x|); sigma(x) = 1 / (1 + e) or e / (1 + e), sigma(-x) the other, each to full relative
   precision; the cross-entropy ce = (1 - t) x - log sigma(x) = ((1 - t) x if x >= 0 else -t x) + log1p(e),
   with no cancellation for large |x|. */
/* a + w (b - a), exact at w = 0 and w = 1 (torch.lerp's two-sided form) */
#define LF_LERP(a, b, w) ((w) < 0.5f ? (a) + (w) * ((b) - (a)) : (b) - ((b) - (a)) * (1.0f - (w)))

#define LF_SIGMOIDS                                            \
    const float e = lf_exp(-fabsf(xi));                        \
    const float inv = 1.0f / (1.0f + e);                       \
    const float p = xi >= 0.0f ? inv : e * inv; /* sigma(x) */ \
    const float r = xi >= 0.0f ? e * inv : inv; /* sigma(-x) */

/* ce with the target smoothed to t (1 - eps) + eps / 2; sigma(x) - t.  p0 = eps */
LF_SUM_KERNEL_XT(bce, {
    LF_SIGMOIDS
    (void)r;
    const float tt = ti * (1.0f - p0) + 0.5f * p0; /* exactly ti for eps = 0 */
    u = (xi >= 0.0f ? (1.0f - tt) * xi : -tt * xi) + lf_log1p(e);
    du = p - tt;
})

/* a ce q^gamma, q = lerp(sigma(x), sigma(-x), t) floored at FLT_MIN, a = t A + B;
   a q^gamma ((p - t) + gamma ce (1 - 2t) p r / q).  p0 = gamma, p1 = A, p2 = B (alpha: A = 2 alpha - 1,
   B = 1 - alpha; none: A = 0, B = 1). QG is q^gamma. */
#define LF_BINARY_FOCAL(QG)                                                      \
    LF_SIGMOIDS                                                                  \
    const float ce = (xi >= 0.0f ? (1.0f - ti) * xi : -ti * xi) + lf_log1p(e);     \
    const float q0 = LF_LERP(p, r, ti);                                          \
    const float q = q0 > FLT_MIN ? q0 : FLT_MIN;                                 \
    const float qg = (QG);                                                       \
    const float a = ti * p1 + p2;                                                \
    u = a * ce * qg;                                                             \
    du = a * qg * ((p - ti) + p0 * ce * (1.0f - 2.0f * ti) * (p * r / q));

LF_SUM_KERNEL_XT(binary_focal_g2, LF_BINARY_FOCAL(q * q))
LF_SUM_KERNEL_XT(binary_focal_int, LF_BINARY_FOCAL(lf_ipow(q, p0)))
LF_SUM_KERNEL_XT(binary_focal, LF_BINARY_FOCAL(lf_epow(q, p0)))

/* Asymmetric loss (Ridnik et al. 2021), lerp(L-, L+, t) with l+ = log sigma(x), l- = log sigma(-x):
   L+ = -l+ r^g+, dL+/dx = r^g+ (g+ p l+ - r);  p0 = g+, p1 = g-. POW: lf_ipow (both exponents integers
   in [0, 7]) or lf_epow. */
#define LF_ASYMMETRIC_POSITIVE(POW)                                  \
    LF_SIGMOIDS                                                      \
    const float lpe = lf_log1p(e);                                     \
    const float lp = (xi < 0.0f ? xi : 0.0f) - lpe;                  \
    const float fp = POW(r, p0);                                     \
    const float up = -lp * fp;                                       \
    const float gp = fp * (p0 * p * lp - r);

/* no clip: L- = -l- p^g-, dL-/dx = p^g- (p - g- r l-) */
#define LF_ASYMMETRIC(POW)                                           \
    LF_ASYMMETRIC_POSITIVE(POW)                                      \
    const float ln = (xi > 0.0f ? -xi : 0.0f) - lpe;                 \
    const float fn = POW(p, p1);                                     \
    const float un = -ln * fn;                                       \
    const float gn = fn * (p - p1 * r * ln);                         \
    u = LF_LERP(un, up, ti);                                         \
    du = LF_LERP(gn, gp, ti);

/* clip m = p2: q = p - m where above FLT_MIN, else 0; c = -log1p(-q); L- = c q^g-,
   dL-/dx = p r q^g- (1 / (1 - q) + g- c / q) where q > 0, else 0. */
#define LF_ASYMMETRIC_CLIP(POW)                                                                 \
    LF_ASYMMETRIC_POSITIVE(POW)                                                                 \
    const float q0 = p - p2;                                                                    \
    const int on = q0 > FLT_MIN;                                                                \
    const float q = on ? q0 : 0.0f;                                                             \
    const float c = -lf_log1p(-q);                                                                \
    const float fq = POW(q, p1);                                                                \
    const float un = c * fq;                                                                    \
    const float gn = on ? p * r * fq * (1.0f / (1.0f - q) + p1 * c / (on ? q : FLT_MIN)) : 0.0f; \
    u = LF_LERP(un, up, ti);                                                                    \
    du = LF_LERP(gn, gp, ti);

LF_SUM_KERNEL_XT(asymmetric_int, LF_ASYMMETRIC(lf_ipow))
LF_SUM_KERNEL_XT(asymmetric, LF_ASYMMETRIC(lf_epow))
LF_SUM_KERNEL_XT(asymmetric_clip_int, LF_ASYMMETRIC_CLIP(lf_ipow))
LF_SUM_KERNEL_XT(asymmetric_clip, LF_ASYMMETRIC_CLIP(lf_epow))
