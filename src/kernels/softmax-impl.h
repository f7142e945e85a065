/* softmax-impl.h — private: the SIMD online-softmax row, written once and
 * included by each SIMD path (k_avx2.c, k_avx512.c) after ukr-impl.h's
 * macros and these:
 *   V_SET1(x) V_SUB(a, b) V_MUL(a, b) V_MAX(a, b)
 *   V_LOADN(p, n)     the first n lanes (n may exceed VL), -inf after
 *   V_STOREN(p, n, x) store the first n lanes
 *   V_ANY_ABOVE(x, y) some lane of x above y's, or unordered (NaN)
 *   V_ANY_NAN(x)      some lane NaN
 *   V_HMAX(x) V_HSUM(x) V_EXP(x)   (e^x lane-wise for x <= SLACK)
 *   S_EXP(x)          the same e^x, one float
 * It defines softmax_rows (the contract is in kern-impl.h).
 *
 * The row goes by chunks of SM_CHUNK vectors held in registers, so each
 * score is read once. The reference m is kept while no score of a chunk
 * exceeds it by more than HELIX_SOFTMAX_SLACK: then P = e^(s - m) <= e^8,
 * with no max reduction and no rescale. Otherwise m becomes the chunk's
 * max and what this row has of P and its sum so far are rescaled (on the
 * first key tile, where m = -inf, and in a row whose max jumps; once the
 * max has settled, no row takes it). */
#define SM_CHUNK 8

typedef struct {
    float m, alpha;
    VEC sum0, sum1;
} sm_state;

/* one chunk at s (n scores left; full: at least SM_CHUNK * VL), j0 scores
 * of this row before it */
static inline __attribute__((always_inline)) void sm_chunk(float *s, int64_t j0, int64_t n, int full, sm_state *st)
{
    VEC x[SM_CHUNK], mv;
#pragma GCC unroll 8
    for (int v = 0; v < SM_CHUNK; v++) {
        x[v] = full ? V_LOAD(s + v * VL) : V_LOADN(s + v * VL, n - v * VL);
        mv = v ? V_MAX(mv, x[v]) : x[0];
    }
    /* -inf while m is; a NaN score may drop out of mv (vmaxps), but not
     * out of P: e^(NaN - m) */
    if (V_ANY_ABOVE(mv, V_SET1(st->m + HELIX_SOFTMAX_SLACK))) {   /* the reference moves to this chunk's max */
        const float mx = V_HMAX(mv), a = st->m == -INFINITY ? 0.0f : S_EXP(st->m - mx);
        const VEC av = V_SET1(a);
        for (int64_t j = -j0; j < 0; j += VL) V_STOREN(s + j, -j, V_MUL(V_LOADN(s + j, -j), av));
        st->sum0 = V_MUL(st->sum0, av);
        st->sum1 = V_MUL(st->sum1, av);
        st->alpha *= a;
        st->m = mx;
    }
    if (st->m == -INFINITY) {   /* no visible key in the row so far: P = 0 ... */
        for (int v = 0; v < SM_CHUNK; v++)
            if (V_ANY_NAN(x[v])) st->m = NAN;   /* ... unless a NaN dropped out of mv: then P is NaN */
        if (st->m == -INFINITY) {
            for (int v = 0; v < SM_CHUNK && v * VL < n; v++) V_STOREN(s + v * VL, n - v * VL, V_ZERO());
            return;
        }
    }
    const VEC mr = V_SET1(st->m);
#pragma GCC unroll 8
    for (int v = 0; v < SM_CHUNK; v++) {
        const VEC e = V_EXP(V_SUB(x[v], mr));   /* lanes past n: -inf, 0 */
        if (full) V_STORE(s + v * VL, e);
        else if (v * VL < n) V_STOREN(s + v * VL, n - v * VL, e);
        if (v & 1) st->sum1 = V_ADD(st->sum1, e);
        else st->sum0 = V_ADD(st->sum0, e);
    }
}

static inline __attribute__((always_inline)) float sm_row(float *s, int64_t n, float *m, float *l)
{
    sm_state st = {*m, 1.0f, V_ZERO(), V_ZERO()};
    int64_t j0 = 0;
    for (; j0 + SM_CHUNK * VL <= n; j0 += SM_CHUNK * VL) sm_chunk(s + j0, j0, n - j0, 1, &st);
    if (j0 < n) sm_chunk(s + j0, j0, n - j0, 0, &st);
    *l = *l * st.alpha + V_HSUM(V_ADD(st.sum0, st.sum1));
    *m = st.m;
    return st.alpha;
}

/* rows in one call: the constants stay in registers from row to row */
static void softmax_rows(float *s, int64_t ld, int64_t rows, int64_t n, float *m, float *l, float *alpha)
{
    for (int64_t r = 0; r < rows; r++) alpha[r] = sm_row(s + r * ld, n, m + r, l + r);
}
