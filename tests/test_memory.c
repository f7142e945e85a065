/* test_memory.c — the attention kernel's peak memory grows linearly in L.
 * A child process runs the kernel at L and at 2L (one head of width 16)
 * and reports its resident high-water mark beyond its baseline; an L x L
 * score matrix would cost 1 GiB at L = 16384, linear memory about 4 MiB. */
#include "check.h"
#include "helix.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static long long status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long long v = -1;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, n)) { v = atoll(line + n + 1); break; }
    if (f) fclose(f);
    return v;
}

static int child(int64_t L)
{
    long long base = status_kb("VmRSS");
    helix_attn_args a = {0};
    a.B = 1; a.Lq = a.Lk = L; a.H = 1; a.width = 16; a.dtype = HELIX_F32; a.scale = 0.25f;
    size_t n = (size_t)(L * 16);
    float *q = malloc(4 * n), *k = malloc(4 * n), *v = malloc(4 * n), *o = malloc(4 * n);
    void *work = aligned_alloc(64, (size_t)helix_attention_workspace_bytes(16));
    for (size_t i = 0; i < n; i++) { q[i] = (float)(i % 7) * 0.1f; k[i] = (float)(i % 5) * 0.1f; v[i] = 1.0f; }
    a.q = q; a.k = k; a.v = v; a.o = o;
    helix_attn_args_dense(&a);
    if (helix_attention_fwd(&a, work)) return 1;
    long long peak = status_kb("VmHWM");
    /* all outputs must be exactly 1 (softmax-weighted average of ones) */
    int bad = 0;
    for (size_t i = 0; i < n; i++) bad |= o[i] < 0.999f || o[i] > 1.001f;
    free(q); free(k); free(v); free(o); free(work);
    if (bad) return 1;
    printf("%lld\n", peak - base);
    return 0;
}

static long long measure(const char *self, int64_t L)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "'%s' --child %lld", self, (long long)L);
    FILE *p = popen(cmd, "r");
    long long kb = -1;
    if (!p || fscanf(p, "%lld", &kb) != 1) kb = -1;
    if (p && pclose(p) != 0) kb = -1;
    return kb;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--child")) return child(atoll(argv[2]));
    char self[1024];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) { CHECK(0, "cannot find /proc/self/exe"); return test_summary(); }
    self[n] = 0;
    long long a = measure(self, 8192), b = measure(self, 16384);
    printf("kernel peak beyond baseline: L=8192 %lld KiB, L=16384 %lld KiB (inputs+output %lld / %lld KiB)\n",
           a, b, 4LL * 8192 * 16 * 4 / 1024, 4LL * 16384 * 16 * 4 / 1024);
    CHECK(a > 0 && b > 0, "children failed");
    CHECK(b >= 4LL * 16384 * 16 * 4 / 1024 * 9 / 10, "the measurement must see at least the inputs (%lld KiB)", b);
    CHECK(b <= 2.5 * a + 2048, "peak at 2L (%lld KiB) is more than linear in the peak at L (%lld KiB)", b, a);
    CHECK(b < 64 * 1024, "peak at L=16384 is %lld KiB; an L x L matrix would be 1 GiB", b);
    return test_summary();
}
