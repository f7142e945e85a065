/* elementwise.c — the CPU's row-wise pieces of a transformer block:
 * LayerNorm, the MLP activations, the residual add. Storage type in and
 * out, f32 arithmetic on one row at a time in `work` (the mean and
 * variance in double). */
#include "ops-impl.h"
#include "helix_model.h"

#include <math.h>

void helix_cpu_layernorm(helix_dtype t, const void *a, const void *g, const void *b, void *y, int64_t rows,
                         int64_t D, float *work)
{
    const size_t es = helix_dtype_size(t);
    float *u = work, *gf = u + D, *bf = gf + D;
    helix_to_f32(t, g, gf, D);
    helix_to_f32(t, b, bf, D);
    for (int64_t r = 0; r < rows; r++) {
        helix_to_f32(t, (const char *)a + (size_t)(r * D) * es, u, D);
        double mean = 0, var = 0;
        for (int64_t c = 0; c < D; c++) mean += u[c];
        mean /= (double)D;
        for (int64_t c = 0; c < D; c++) var += ((double)u[c] - mean) * ((double)u[c] - mean);
        const float inv = (float)(1.0 / sqrt(var / (double)D + 1e-5)), mu = (float)mean;
        for (int64_t c = 0; c < D; c++) u[c] = (u[c] - mu) * inv * gf[c] + bf[c];
        helix_from_f32(t, u, (char *)y + (size_t)(r * D) * es, D);
    }
}

void helix_cpu_residual(helix_dtype t, void *a, const void *p, int64_t rows, int64_t D, float *work)
{
    const size_t es = helix_dtype_size(t);
    float *u = work, *v = u + D;
    for (int64_t r = 0; r < rows; r++) {
        char *ar = (char *)a + (size_t)(r * D) * es;
        helix_to_f32(t, ar, u, D);
        helix_to_f32(t, (const char *)p + (size_t)(r * D) * es, v, D);
        for (int64_t c = 0; c < D; c++) u[c] += v[c];
        helix_from_f32(t, u, ar, D);
    }
}

void helix_gelu(float *v, int64_t n)
{
    for (int64_t c = 0; c < n; c++) v[c] = 0.5f * v[c] * (1.0f + erff(v[c] * 0.70710678118654752f));
}

void helix_activate(helix_act a, float *v, int64_t n)
{
    switch (a) {
    case HELIX_ACT_GELU: helix_gelu(v, n); break;
    case HELIX_ACT_GELU_TANH:
        for (int64_t c = 0; c < n; c++)
            v[c] = 0.5f * v[c] * (1.0f + tanhf(0.79788456080286536f * (v[c] + 0.044715f * v[c] * v[c] * v[c])));
        break;
    case HELIX_ACT_RELU:
        for (int64_t c = 0; c < n; c++) v[c] = v[c] > 0 ? v[c] : v[c] == v[c] ? 0.0f : v[c];   /* NaN stays NaN */
        break;
    }
}

void helix_cpu_activate(helix_act act, helix_dtype t, void *h, int64_t rows, int64_t cols, float *work)
{
    const size_t es = helix_dtype_size(t);
    for (int64_t r = 0; r < rows; r++) {
        char *hr = (char *)h + (size_t)(r * cols) * es;
        helix_to_f32(t, hr, work, cols);
        helix_activate(act, work, cols);
        helix_from_f32(t, work, hr, cols);
    }
}
