/* ukr-impl.h — private: the SIMD micro-kernel body, written once and
 * included by each SIMD path (k_avx2.c, k_avx512.c) after it defines
 *   MR, NR            the tile (NR = 2 vectors)
 *   VEC, VL           the vector type and its lanes (NR / 2)
 *   V_ZERO() V_LOAD(p) V_STORE(p, x) V_ADD(a, b) V_FMA(a, b, c) V_BCAST(p)
 *   MR1               the rows of the one-vector-wide kernel (<= HELIX_MR_MAX)
 * It defines ukr, ukr_rm and ukr_rm1 (the contracts are in kern-impl.h). */

/* A(i, k) = a[i*rs + k*cs]: packed panels (rs = 1, cs = MR) or rows read
 * in place (rs = lda, cs = 1); inlined into both, so each gets constant
 * strides where it has them. */
static inline __attribute__((always_inline)) void ukr_gen(int64_t kc, const float *a, int64_t rs, int64_t cs,
                                                          const float *bp, float *c, int64_t ldc, int acc)
{
    VEC c0[MR], c1[MR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) c0[i] = c1[i] = V_ZERO();
    for (int64_t k = 0; k < kc; k++, a += cs, bp += NR) {
        const VEC b0 = V_LOAD(bp), b1 = V_LOAD(bp + VL);
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            const VEC av = V_BCAST(a + i * rs);
            c0[i] = V_FMA(av, b0, c0[i]);
            c1[i] = V_FMA(av, b1, c1[i]);
        }
    }
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
        float *ci = c + i * ldc;
        if (acc) {
            c0[i] = V_ADD(c0[i], V_LOAD(ci));
            c1[i] = V_ADD(c1[i], V_LOAD(ci + VL));
        }
        V_STORE(ci, c0[i]);
        V_STORE(ci + VL, c1[i]);
    }
}

static void ukr(int64_t kc, const float *ap, const float *bp, float *c, int64_t ldc, int acc)
{
    ukr_gen(kc, ap, 1, MR, bp, c, ldc, acc);
}

static void ukr_rm(int64_t kc, const float *a, int64_t lda, const float *bp, float *c, int64_t ldc, int acc)
{
    ukr_gen(kc, a, lda, 1, bp, c, ldc, acc);
}

/* One vector wide: C[MR1][VL] (+)= A rows (A(i, k) = a[i*lda + k]) times a
 * panel VL columns wide (bp[k*VL + j]): attention's P V at widths <= VL,
 * where the two-vector tile would be half padding. */
static inline __attribute__((always_inline)) void ukr_rm1_gen(int64_t kc, const float *a, int64_t lda, const float *bp,
                                                              float *c, int64_t ldc, int acc)
{
    VEC c0[MR1];
#pragma GCC unroll 16
    for (int i = 0; i < MR1; i++) c0[i] = V_ZERO();
    for (int64_t k = 0; k < kc; k++, a++, bp += VL) {
        const VEC b0 = V_LOAD(bp);
#pragma GCC unroll 16
        for (int i = 0; i < MR1; i++) c0[i] = V_FMA(V_BCAST(a + i * lda), b0, c0[i]);
    }
#pragma GCC unroll 16
    for (int i = 0; i < MR1; i++) {
        float *ci = c + i * ldc;
        V_STORE(ci, acc ? V_ADD(c0[i], V_LOAD(ci)) : c0[i]);
    }
}

/* Rows HELIX_PV_LD apart (attention's P: a key tile) get their own copy
 * with the stride a compile-time constant: the rows' offsets become
 * immediates instead of MR1 registers the loop runs short of (it reloaded
 * them from the stack every step; one broadcast per FMA makes that the
 * limit: 16 x 16 in isolation 56 -> 80 % of the peak). The two-vector
 * ukr_rm, two FMAs per broadcast, measured the same either way. */
static void ukr_rm1(int64_t kc, const float *a, int64_t lda, const float *bp, float *c, int64_t ldc, int acc)
{
    if (lda == HELIX_PV_LD) ukr_rm1_gen(kc, a, HELIX_PV_LD, bp, c, ldc, acc);
    else ukr_rm1_gen(kc, a, lda, bp, c, ldc, acc);
}
