/* loader.c — the GPU API (helix_cuda.h) in the core library, without
 * CUDA: on first use it loads the GPU module (libhelix-cuda.so) with
 * dlopen and forwards every call to the module's table (cuda-api.h).
 * A CPU run never calls it, so it never maps cudart or cuBLAS. Where the
 * module was not built, is not found, or does not load (no CUDA runtime
 * on this machine), every call says so (HELIX_ERR_UNSUPPORTED). */
#include "cuda-api.h"
#include "../core/err-impl.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MODULE_FILE "libhelix-cuda.so"

static struct {
    pthread_once_t once;
    const helix_cuda_api *api;
    char path[PATH_MAX];
    char why[600];
} mod = {PTHREAD_ONCE_INIT, NULL, "", ""};

/* The places the module may be, in order: $HELIX_CUDA_MODULE; beside the
 * executable; its ../lib; the build and install directories CMake knew;
 * the dynamic loader's own search path. */
static int candidates(char out[][PATH_MAX], int max)
{
    int n = 0;
    const char *env = getenv("HELIX_CUDA_MODULE");
    if (env && env[0]) { snprintf(out[n++], PATH_MAX, "%s", env); return n; }
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            if (n < max) snprintf(out[n++], PATH_MAX, "%.3000s/" MODULE_FILE, exe);
            if (n < max) snprintf(out[n++], PATH_MAX, "%.3000s/../lib/helix/" MODULE_FILE, exe);
        }
    }
#ifdef HELIX_CUDA_MODULE_DIR
    if (n < max) snprintf(out[n++], PATH_MAX, "%s/" MODULE_FILE, HELIX_CUDA_MODULE_DIR);
#endif
#ifdef HELIX_CUDA_MODULE_INSTALL_DIR
    if (n < max) snprintf(out[n++], PATH_MAX, "%s/" MODULE_FILE, HELIX_CUDA_MODULE_INSTALL_DIR);
#endif
    if (n < max) snprintf(out[n++], PATH_MAX, MODULE_FILE);
    return n;
}

/* why no module file was found in any of the places */
static void not_found(char *buf, size_t n)
{
    const char *env = getenv("HELIX_CUDA_MODULE");
    if (env && env[0]) {
        snprintf(buf, n, "HELIX_CUDA_MODULE=%.500s: no such file", env);
        return;
    }
#ifdef HELIX_CUDA_MODULE_DIR
    snprintf(buf, n, MODULE_FILE " not found (beside the executable, in %s, or on the loader's path; "
                     "HELIX_CUDA_MODULE=PATH names it)", HELIX_CUDA_MODULE_DIR);
#else
    snprintf(buf, n, "not built (-DHELIX_CUDA=OFF, or no nvcc or CUDA toolkit with cuBLAS at configure time)");
#endif
}

static void load(void)
{
    char c[8][PATH_MAX];
    const int n = candidates(c, 8);
    size_t used = 0;
    for (int k = 0; k < n; k++) {
        const int named = strchr(c[k], '/') != NULL;
        if (named && access(c[k], F_OK) != 0) continue;       /* not there: the next place */
        void *h = dlopen(c[k], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            const char *e = dlerror();
            if (!named && e && strstr(e, "No such file")) continue;
            used += (size_t)snprintf(mod.why + used, used < sizeof mod.why ? sizeof mod.why - used : 0,
                                     "%s%s does not load: %s", used ? "; " : "", c[k], e ? e : "?");
            if (used >= sizeof mod.why) used = sizeof mod.why - 1;
            continue;
        }
        const helix_cuda_api *a = (const helix_cuda_api *)dlsym(h, HELIX_CUDA_MODULE_SYMBOL);
        if (!a || a->version != HELIX_CUDA_API_VERSION) {
            used += (size_t)snprintf(mod.why + used, used < sizeof mod.why ? sizeof mod.why - used : 0,
                                     "%s%s is not a helix GPU module of this version (API %d, want %d)", used ? "; " : "",
                                     c[k], a ? a->version : -1, HELIX_CUDA_API_VERSION);
            if (used >= sizeof mod.why) used = sizeof mod.why - 1;
            dlclose(h);
            continue;
        }
        mod.api = a;
        snprintf(mod.path, sizeof mod.path, "%.4000s", c[k]);
        return;
    }
    if (!used) not_found(mod.why, sizeof mod.why);
}

static const helix_cuda_api *api(helix_err *err)
{
    pthread_once(&mod.once, load);
    if (!mod.api && err) helix_errf(err, HELIX_ERR_UNSUPPORTED, "no GPU module: %s", mod.why);
    return mod.api;
}

int helix_cuda_built(void) { return api(NULL) != NULL; }

int helix_cuda_module_status(char *buf, size_t n)
{
    const helix_cuda_api *a = api(NULL);
    if (a) snprintf(buf, n, "%s (%s%s)", mod.path, a->built_with, a->has_nccl ? "" : ", no NCCL");
    else snprintf(buf, n, "%s", mod.why);
    return a != NULL;
}

/* What the module file says it was built with (module.c's marker),
 * read from the file: nothing is loaded. */
static int file_info(const char *path, char *out, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    static const char mark[] = "HELIX-CUDA-MODULE-INFO:";
    char buf[1 << 16];
    size_t keep = 0, got;
    int found = 0;
    while (!found && (got = fread(buf + keep, 1, sizeof buf - keep - 1, f)) > 0) {
        const size_t len = keep + got;
        buf[len] = 0;
        for (size_t k = 0; k + sizeof mark - 1 <= len; k++) {
            if (memcmp(buf + k, mark, sizeof mark - 1)) continue;
            const char *v = buf + k + sizeof mark - 1;
            const size_t room = len - (size_t)(v - buf);
            const char *end = memchr(v, '\n', room);
            if (!end) break;                               /* cut by the buffer: read on */
            snprintf(out, n, "%.*s", (int)(end - v), v);
            found = 1;
            break;
        }
        keep = len > 256 ? 256 : len;                      /* a marker across the boundary */
        memmove(buf, buf + len - keep, keep);
    }
    fclose(f);
    return found;
}

int helix_cuda_module_find(char *buf, size_t n)
{
    char c[8][PATH_MAX], info[256];
    const int nc = candidates(c, 8);
    for (int k = 0; k < nc; k++) {
        if (!strchr(c[k], '/') || access(c[k], R_OK) != 0) continue;
        if (!file_info(c[k], info, sizeof info)) {
            snprintf(buf, n, "%.3000s is not a helix GPU module (no build record in it)", c[k]);
            return 0;
        }
        snprintf(buf, n, "%.3000s (%s)", c[k], info);
        return 1;
    }
    not_found(buf, n);
    return 0;
}

/* ------------------------------------------------------------ forwarders */

#define CALL(err, expr) do { const helix_cuda_api *a_ = api(err); if (!a_) return HELIX_ERR_UNSUPPORTED; return a_->expr; } while (0)

helix_status helix_cuda_device_count(int *count, helix_err *err) { *count = 0; CALL(err, device_count(count, err)); }
helix_status helix_cuda_device_info(int device, helix_cuda_device *out, helix_err *err)
{
    memset(out, 0, sizeof *out);
    CALL(err, device_info(device, out, err));
}
helix_status helix_cuda_ctx_new(int device, helix_cuda_ctx **out, helix_err *err) { *out = NULL; CALL(err, ctx_new(device, out, err)); }
void helix_cuda_ctx_free(helix_cuda_ctx *c) { if (c && mod.api) mod.api->ctx_free(c); }
helix_status helix_cuda_sync(helix_cuda_ctx *c, helix_err *err) { CALL(err, sync(c, err)); }
helix_status helix_cuda_malloc(helix_cuda_ctx *c, size_t n, void **out, helix_err *err) { *out = NULL; CALL(err, malloc_(c, n, out, err)); }
void helix_cuda_free(void *p) { if (p && mod.api) mod.api->free_(p); }
helix_status helix_cuda_upload(helix_cuda_ctx *c, void *d, const void *s, size_t n, helix_err *err) { CALL(err, upload(c, d, s, n, err)); }
helix_status helix_cuda_download(helix_cuda_ctx *c, void *d, const void *s, size_t n, helix_err *err) { CALL(err, download(c, d, s, n, err)); }
const char *helix_cuda_attention_name(int variant) { return variant == 0 ? "rows" : variant == 1 ? "wmma" : variant == 2 ? "mma" : "?"; }
helix_status helix_cuda_attention(helix_cuda_ctx *c, int variant, helix_dtype t, int64_t heads, int64_t L, int64_t width,
                                  int causal, float scale, const void *q, const void *k, const void *v, void *o,
                                  helix_err *err)
{
    CALL(err, attention(c, variant, t, heads, L, width, causal, scale, q, k, v, o, err));
}
helix_status helix_cuda_gemm(helix_cuda_ctx *c, helix_dtype t, int64_t M, int64_t N, int64_t K, const void *A,
                             const void *B, void *C, helix_err *err)
{
    CALL(err, gemm(c, t, M, N, K, A, B, C, err));
}
helix_status helix_cuda_timer_start(helix_cuda_ctx *c, helix_err *err) { CALL(err, timer_start(c, err)); }
helix_status helix_cuda_timer_stop(helix_cuda_ctx *c, double *s, helix_err *err) { *s = 0; CALL(err, timer_stop(c, s, err)); }
helix_status helix_nccl_world(helix_comm_t *w, helix_cuda_ctx **ctx, helix_comm_t **out, helix_err *err)
{
    *ctx = NULL;
    *out = NULL;
    CALL(err, nccl_world(w, ctx, out, err));
}

helix_status helix_backend_cuda_new(int device, helix_backend **out, helix_err *err)
{
    *out = NULL;
    CALL(err, backend_new(device, out, err));
}

helix_status helix_backend_cuda_on(helix_cuda_ctx *ctx, struct helix_backend **out, helix_err *err)
{
    *out = NULL;
    CALL(err, backend_on(ctx, out, err));
}
