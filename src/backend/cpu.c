/* cpu.c — the CPU backend: device memory is host memory, copies are
 * memcpy, compute is the kernels of src/kernels on the path
 * helix_isa_current() names, unchanged. */
#include "helix_backend.h"
#include "../kernels/ops-impl.h"
#include "../core/util-impl.h"

#include <stdlib.h>
#include <string.h>

static helix_status cpu_alloc(helix_backend *be, int64_t n, void **out)
{
    (void)be;
    *out = NULL;
    if (n <= 0) return HELIX_OK;
    if ((uint64_t)n > (uint64_t)SIZE_MAX - 64) return HELIX_ERR_NOMEM;
    *out = aligned_alloc(64, (size_t)helix_al64(n));
    return *out ? HELIX_OK : HELIX_ERR_NOMEM;
}

static void cpu_free(helix_backend *be, void *p) { (void)be; free(p); }

static helix_status cpu_memset(helix_backend *be, void *p, int v, int64_t n)
{
    (void)be;
    if (n > 0) memset(p, v, (size_t)n);
    return HELIX_OK;
}

static helix_status cpu_copy(helix_backend *be, void *dst, const void *src, int64_t n, helix_copy_kind k)
{
    (void)be; (void)k;
    if (n > 0 && dst != src) memcpy(dst, src, (size_t)n);
    return HELIX_OK;
}

static helix_status cpu_copy2d(helix_backend *be, void *dst, int64_t dpitch, const void *src, int64_t spitch,
                               int64_t width, int64_t rows, helix_copy_kind k)
{
    (void)be; (void)k;
    for (int64_t r = 0; r < rows; r++)
        memcpy((char *)dst + r * dpitch, (const char *)src + r * spitch, (size_t)width);
    return HELIX_OK;
}

static helix_status cpu_upload(helix_backend *be, void *dst, helix_dtype t, const float *src, int64_t n)
{
    (void)be;
    helix_from_f32(t, src, dst, n);
    return HELIX_OK;
}

static helix_status cpu_download(helix_backend *be, float *dst, const void *src, helix_dtype t, int64_t n)
{
    (void)be;
    helix_to_f32(t, src, dst, n);
    return HELIX_OK;
}

static helix_status cpu_gemm(helix_backend *be, const helix_gemm_args *a, void *work)
{
    (void)be;
    helix_gemm(a->M, a->N, a->K, a->ta, a->A, a->lda, a->tb, a->B, a->ldb, a->bias, a->tc, a->C, a->ldc, work);
    return HELIX_OK;
}

static int64_t cpu_gemm_ws(helix_backend *be, const helix_gemm_args *a)
{
    (void)be;
    return helix_gemm_workspace_bytes(a->M, a->N, a->K, a->ta, a->tb, a->tc);
}

static helix_status cpu_attention(helix_backend *be, const helix_attn_args *a, void *work)
{
    (void)be;
    return helix_attention_fwd(a, work);
}

static int64_t cpu_attention_ws(helix_backend *be, int64_t width)
{
    (void)be;
    return helix_attention_workspace_bytes(width);
}

static helix_status cpu_partial_scores(helix_backend *be, const helix_scores_args *a, void *work)
{
    (void)be;
    helix_cpu_partial_scores(a, work);
    return HELIX_OK;
}

static helix_status cpu_softmax_v(helix_backend *be, const helix_scores_args *a, void *work)
{
    (void)be;
    helix_cpu_softmax_v(a, work);
    return HELIX_OK;
}

static helix_status cpu_layernorm(helix_backend *be, helix_dtype t, const void *x, const void *g, const void *b,
                                  void *y, int64_t rows, int64_t D, void *work)
{
    (void)be;
    helix_cpu_layernorm(t, x, g, b, y, rows, D, (float *)work);
    return HELIX_OK;
}

static int64_t cpu_norm_ws(helix_backend *be, int64_t D) { (void)be; return 3 * D * (int64_t)sizeof(float); }

static helix_status cpu_activate(helix_backend *be, helix_act act, helix_dtype t, void *h, int64_t rows,
                                 int64_t cols, void *work)
{
    (void)be;
    helix_cpu_activate(act, t, h, rows, cols, (float *)work);
    return HELIX_OK;
}

static helix_status cpu_residual(helix_backend *be, helix_dtype t, void *a, const void *p, int64_t rows,
                                 int64_t D, void *work)
{
    (void)be;
    helix_cpu_residual(t, a, p, rows, D, (float *)work);
    return HELIX_OK;
}

static double cpu_now(helix_backend *be) { (void)be; return helix_now(); }

static const helix_backend_ops cpu_ops = {
    .name = "cpu",
    .host_memory = 1,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .memset = cpu_memset,
    .copy = cpu_copy,
    .copy2d = cpu_copy2d,
    .upload_f32 = cpu_upload,
    .download_f32 = cpu_download,
    .gemm = cpu_gemm,
    .gemm_workspace_bytes = cpu_gemm_ws,
    .attention = cpu_attention,
    .attention_workspace_bytes = cpu_attention_ws,
    .partial_scores = cpu_partial_scores,
    .softmax_v = cpu_softmax_v,
    .layernorm = cpu_layernorm,
    .norm_workspace_bytes = cpu_norm_ws,
    .activate = cpu_activate,
    .residual_add = cpu_residual,
    .now = cpu_now,
};

static helix_backend cpu_backend = {&cpu_ops, NULL};

helix_backend *helix_backend_cpu(void) { return &cpu_backend; }

void helix_backend_free(helix_backend *be)
{
    if (be && be->ops->destroy) be->ops->destroy(be);
}
