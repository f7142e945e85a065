/* none.c — the GPU API when helix is built without CUDA: every call says
 * so (HELIX_ERR_UNSUPPORTED) instead of pretending. */
#include "helix_cuda.h"
#include "../core/err-impl.h"

#define NO_CUDA(err) helix_errf(err, HELIX_ERR_UNSUPPORTED, "helix was built without CUDA (no nvcc, CUDA toolkit or NCCL found at configure time)")

int helix_cuda_built(void) { return 0; }
helix_status helix_cuda_device_count(int *count, helix_err *err) { *count = 0; return NO_CUDA(err); }
helix_status helix_cuda_device_info(int device, helix_cuda_device *out, helix_err *err) { (void)device; (void)out; return NO_CUDA(err); }
helix_status helix_cuda_ctx_new(int device, helix_cuda_ctx **out, helix_err *err) { (void)device; *out = NULL; return NO_CUDA(err); }
void helix_cuda_ctx_free(helix_cuda_ctx *c) { (void)c; }
helix_status helix_cuda_sync(helix_cuda_ctx *c, helix_err *err) { (void)c; return NO_CUDA(err); }
helix_status helix_cuda_malloc(helix_cuda_ctx *c, size_t n, void **out, helix_err *err) { (void)c; (void)n; *out = NULL; return NO_CUDA(err); }
void helix_cuda_free(void *p) { (void)p; }
helix_status helix_cuda_upload(helix_cuda_ctx *c, void *d, const void *s, size_t n, helix_err *err) { (void)c; (void)d; (void)s; (void)n; return NO_CUDA(err); }
helix_status helix_cuda_download(helix_cuda_ctx *c, void *d, const void *s, size_t n, helix_err *err) { (void)c; (void)d; (void)s; (void)n; return NO_CUDA(err); }
const char *helix_cuda_attention_name(int variant) { return variant == 0 ? "naive" : variant == 1 ? "wmma" : "?"; }
helix_status helix_cuda_attention(helix_cuda_ctx *c, int variant, helix_dtype t, int64_t heads, int64_t L, int64_t width,
                                  int causal, float scale, const void *q, const void *k, const void *v, void *o,
                                  helix_err *err)
{
    (void)c; (void)variant; (void)t; (void)heads; (void)L; (void)width; (void)causal; (void)scale;
    (void)q; (void)k; (void)v; (void)o;
    return NO_CUDA(err);
}
helix_status helix_cuda_gemm(helix_cuda_ctx *c, helix_dtype t, int64_t M, int64_t N, int64_t K, const void *A,
                             const void *B, void *C, helix_err *err)
{
    (void)c; (void)t; (void)M; (void)N; (void)K; (void)A; (void)B; (void)C;
    return NO_CUDA(err);
}
helix_status helix_cuda_timer_start(helix_cuda_ctx *c, helix_err *err) { (void)c; return NO_CUDA(err); }
helix_status helix_cuda_timer_stop(helix_cuda_ctx *c, double *s, helix_err *err) { (void)c; *s = 0; return NO_CUDA(err); }
helix_status helix_nccl_world(helix_comm_t *w, helix_cuda_ctx **ctx, helix_comm_t **out, helix_err *err)
{
    (void)w; *ctx = NULL; *out = NULL;
    return NO_CUDA(err);
}
