/* module.c — the GPU module's one exported symbol: the table of its entry
 * points (cuda-api.h), read by the core's loader after dlopen. Everything
 * else in libhelix-cuda.so is hidden (-fvisibility=hidden, --exclude-libs). */
#include "cuda-api.h"

#ifndef HELIX_CUDA_BUILT_WITH
#define HELIX_CUDA_BUILT_WITH "CUDA"
#endif

#ifndef HELIX_HAVE_NCCL
#include "../core/err-impl.h"
static helix_status no_nccl(helix_comm_t *w, helix_cuda_ctx **ctx, helix_comm_t **out, helix_err *err)
{
    (void)w;
    *ctx = NULL;
    *out = NULL;
    return helix_errf(err, HELIX_ERR_UNSUPPORTED, "the GPU module was built without NCCL (nccl.h / libnccl not found at configure time): "
                                                  "one GPU works, the NCCL engine does not");
}
#define NCCL_WORLD no_nccl
#else
#define NCCL_WORLD helix_nccl_world
#endif

/* what the loader reads from the file without loading it (helix version) */
__attribute__((used)) static const char build_record[] = "HELIX-CUDA-MODULE-INFO:" HELIX_CUDA_BUILT_WITH
#ifndef HELIX_HAVE_NCCL
    ", no NCCL"
#endif
    "\n";

__attribute__((visibility("default"))) const helix_cuda_api helix_cuda_module = {
    HELIX_CUDA_API_VERSION,
    HELIX_CUDA_BUILT_WITH,
#ifdef HELIX_HAVE_NCCL
    1,
#else
    0,
#endif
    helix_cuda_device_count, helix_cuda_device_info, helix_cuda_ctx_new, helix_cuda_ctx_free, helix_cuda_sync,
    helix_cuda_malloc, helix_cuda_free, helix_cuda_upload, helix_cuda_download, helix_cuda_attention_name,
    helix_cuda_attention, helix_cuda_gemm, helix_cuda_timer_start, helix_cuda_timer_stop, NCCL_WORLD,
    helix_cuda_backend_new, helix_cuda_backend_on,
};
