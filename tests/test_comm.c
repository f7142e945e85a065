/* test_comm.c — the in-process engine: every collective moves the right
 * bytes to the right place, all-reduce and reduce sum in rank order, splits
 * order by key, the byte counters follow the convention, and a failing
 * rank makes the others return ABORTED instead of hanging. An engine with
 * the optional copy/sum_rows hooks (what the NCCL engine supplies for
 * device memory) gives bitwise the all-reduce and reduce of the host path. */
#include "check.h"
#include "helix_comm.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define P 6

static helix_inproc_world_t *world;
static int errors[P];
static helix_comm_counters ctr[P];
static int aborted_seen[P];

static void *rank_main(void *arg)
{
    int r = (int)(intptr_t)arg, bad = 0;
    helix_comm_t *c = NULL, *sub = NULL;
    if (helix_inproc_comm(world, r, &ctr[r], &c)) { errors[r] = 1000; return NULL; }
    /* bcast from rank 2 */
    int v[4] = {r, r, r, r};
    if (r == 2) for (int k = 0; k < 4; k++) v[k] = 40 + k;
    helix_comm_bcast(c, v, sizeof v, 2);
    for (int k = 0; k < 4; k++) bad += v[k] != 40 + k;
    /* allgatherv with rank-dependent sizes: rank p sends p+1 ints valued p */
    size_t cnt[P], dsp[P], off = 0;
    for (int p = 0; p < P; p++) { cnt[p] = sizeof(int) * (size_t)(p + 1); dsp[p] = off; off += cnt[p]; }
    int mine[P], all[P * (P + 1) / 2];
    for (int k = 0; k <= r; k++) mine[k] = r;
    helix_comm_allgatherv(c, mine, cnt[r], all, cnt, dsp);
    for (int p = 0, x = 0; p < P; p++) for (int k = 0; k <= p; k++) bad += all[x++] != p;
    /* alltoallv: rank r sends value 100*r+p to p */
    int sendv[P], recvv[P];
    size_t one[P], idx[P];
    for (int p = 0; p < P; p++) { sendv[p] = 100 * r + p; one[p] = sizeof(int); idx[p] = sizeof(int) * (size_t)p; }
    helix_comm_alltoallv(c, sendv, one, idx, recvv, one, idx);
    for (int p = 0; p < P; p++) bad += recvv[p] != 100 * p + r;
    /* gatherv to rank 1 */
    int got[P] = {0};
    helix_comm_gatherv(c, &r, sizeof(int), got, one, idx, 1);
    if (r == 1) for (int p = 0; p < P; p++) bad += got[p] != p;
    /* allreduce of 13 floats (uneven chunks) */
    float f[13], scratch[64];
    for (int k = 0; k < 13; k++) f[k] = (float)(r + k);
    helix_comm_allreduce_sum(c, f, 13, HELIX_F32, scratch);
    for (int k = 0; k < 13; k++) bad += f[k] != (float)(15 + P * k);
    /* reduce of 13 floats to rank 3 */
    float g[13], out[13] = {0};
    for (int k = 0; k < 13; k++) g[k] = (float)(r * k);
    helix_comm_reduce_sum(c, g, out, 13, HELIX_F32, 3, scratch);
    if (r == 3) for (int k = 0; k < 13; k++) bad += out[k] != (float)(15 * k);
    /* split into even/odd ranks, reversed order by key */
    helix_comm_split(c, r % 2, -r, &sub);
    bad += sub->size != P / 2;
    bad += sub->rank != (P / 2 - 1) - r / 2;
    int x = r;
    helix_comm_bcast(sub, &x, sizeof x, 0);            /* root of the sub group is the highest rank */
    bad += x != (r % 2 ? P - 1 : P - 2);
    /* any() */
    int any = 0;
    helix_comm_any(c, r == 4, &any);
    bad += any != 1;
    helix_comm_free(sub);
    helix_comm_free(c);
    helix_inproc_rank_done(world);
    errors[r] = bad;
    return NULL;
}


/* ------------------------------------------------ an engine with hooks:
 * inproc underneath, its own copy and rank-ordered sum on top */
typedef struct { helix_comm_t *in; int copies, sums; } hooked;
static helix_status hk_bcast(void *s, void *b, size_t n, int root) { helix_comm_t *i = ((hooked *)s)->in; return i->ops->bcast(i->self, b, n, root); }
static helix_status hk_allgatherv(void *s, const void *snd, size_t sb, void *rcv, const size_t *rb, const size_t *d)
{ helix_comm_t *i = ((hooked *)s)->in; return i->ops->allgatherv(i->self, snd, sb, rcv, rb, d); }
static helix_status hk_alltoallv(void *s, const void *snd, const size_t *sb, const size_t *sd, void *rcv, const size_t *rb, const size_t *rd)
{ helix_comm_t *i = ((hooked *)s)->in; return i->ops->alltoallv(i->self, snd, sb, sd, rcv, rb, rd); }
static helix_status hk_gatherv(void *s, const void *snd, size_t sb, void *rcv, const size_t *rb, const size_t *d, int root)
{ helix_comm_t *i = ((hooked *)s)->in; return i->ops->gatherv(i->self, snd, sb, rcv, rb, d, root); }
static helix_status hk_split(void *s, int color, int key, helix_comm_t **out) { (void)s; (void)color; (void)key; (void)out; return HELIX_ERR_UNSUPPORTED; }
static helix_status hk_any(void *s, int mine, int *any) { helix_comm_t *i = ((hooked *)s)->in; return i->ops->any(i->self, mine, any); }
static void hk_free(void *s) { (void)s; }
static helix_status hk_copy(void *s, void *dst, const void *src, size_t n) { ((hooked *)s)->copies++; memmove(dst, src, n); return HELIX_OK; }
static helix_status hk_sum_rows(void *s, void *rows, int64_t n_rows, int64_t n, helix_dtype t)
{
    ((hooked *)s)->sums++;
    for (int64_t x = 0; x < n; x++) {
        float acc = 0.0f;
        for (int64_t r = 0; r < n_rows; r++) acc += helix_load(t, rows, r * n + x);
        helix_from_f32(t, &acc, (char *)rows + (size_t)x * helix_dtype_size(t), 1);
    }
    return HELIX_OK;
}
static const helix_comm_ops hooked_ops = {"hooked", hk_bcast, hk_allgatherv, hk_alltoallv, hk_gatherv, hk_split,
                                          hk_any, hk_free, hk_copy, hk_sum_rows};

#define HN 1001
static uint16_t hk_in[P][HN], hk_plain[P][HN], hk_hook[P][HN], hk_red_plain[HN], hk_red_hook[HN];
static int hk_calls[P];

static void *hooked_main(void *arg)
{
    int r = (int)(intptr_t)arg;
    helix_comm_t *c = NULL;
    if (helix_inproc_comm(world, r, NULL, &c)) return NULL;
    hooked h = {c, 0, 0};
    helix_comm_t hc = {&hooked_ops, &h, c->rank, c->size, NULL};
    uint16_t scratch[P * ((HN + P - 1) / P)];
    memcpy(hk_plain[r], hk_in[r], sizeof hk_in[r]);
    memcpy(hk_hook[r], hk_in[r], sizeof hk_in[r]);
    helix_comm_allreduce_sum(c, hk_plain[r], HN, HELIX_BF16, scratch);
    helix_comm_allreduce_sum(&hc, hk_hook[r], HN, HELIX_BF16, scratch);
    helix_comm_reduce_sum(c, hk_in[r], hk_red_plain, HN, HELIX_BF16, 4, scratch);
    helix_comm_reduce_sum(&hc, hk_in[r], hk_red_hook, HN, HELIX_BF16, 4, scratch);
    hk_calls[r] = h.copies * 100 + h.sums;
    helix_comm_free(c);
    helix_inproc_rank_done(world);
    return NULL;
}

static void *abort_main(void *arg)
{
    int r = (int)(intptr_t)arg;
    helix_comm_t *c = NULL;
    helix_inproc_comm(world, r, NULL, &c);
    int v = 0;
    if (r == 3) {                       /* rank 3 fails before the collective */
        helix_inproc_world_abort(world);
    } else {
        aborted_seen[r] = helix_comm_bcast(c, &v, sizeof v, 0) == HELIX_ERR_ABORTED;
        /* and every later collective fails at once, too */
        aborted_seen[r] &= helix_comm_any(c, 0, &v) == HELIX_ERR_ABORTED;
    }
    helix_comm_free(c);
    helix_inproc_rank_done(world);
    return NULL;
}

int main(void)
{
    for (int slots = 1; slots <= P; slots += P - 1) {
        memset(ctr, 0, sizeof ctr);
        CHECK(helix_inproc_world_new(P, slots, &world) == HELIX_OK, "world");
        pthread_t t[P];
        for (int r = 0; r < P; r++) pthread_create(&t[r], NULL, rank_main, (void *)(intptr_t)r);
        for (int r = 0; r < P; r++) pthread_join(t[r], NULL);
        helix_inproc_world_free(world);
        for (int r = 0; r < P; r++) CHECK(errors[r] == 0, "slots=%d rank %d: %d wrong values", slots, r, errors[r]);
        /* counters: bcast 16 B; allgatherv; alltoallv; gatherv; allreduce; reduce; split bcast 4 B */
        for (int r = 0; r < P; r++) {
            int64_t s = 0, rv = 0;
            s += r == 2 ? 16 * (P - 1) : 0;             rv += r == 2 ? 0 : 16;
            s += 4 * (r + 1) * (P - 1);                 rv += 4 * (P * (P + 1) / 2 - (r + 1));
            s += 4 * (P - 1);                           rv += 4 * (P - 1);
            s += r == 1 ? 0 : 4;                        rv += r == 1 ? 4 * (P - 1) : 0;
            const helix_comm_topo one = helix_comm_topo_one(P, r);
            helix_traffic ar = helix_traffic_allreduce(&one, 13, 4), rd = helix_traffic_reduce(&one, 13, 3, 4);
            s += ar.sent_bytes + rd.sent_bytes;         rv += ar.recv_bytes + rd.recv_bytes;
            int is_sub_root = r >= P - 2;
            s += is_sub_root ? 4 * (P / 2 - 1) : 0;     rv += is_sub_root ? 0 : 4;
            CHECK(ctr[r].bytes[0].sent_bytes == s && ctr[r].bytes[0].recv_bytes == rv,
                  "slots=%d rank %d counted %lld/%lld bytes, convention says %lld/%lld", slots, r,
                  (long long)ctr[r].bytes[0].sent_bytes, (long long)ctr[r].bytes[0].recv_bytes,
                  (long long)s, (long long)rv);
        }
    }
    /* the allreduce convention: every element is sent once per other rank in total */
    int64_t tot_s = 0, tot_r = 0;
    for (int r = 0; r < 5; r++) {
        const helix_comm_topo one = helix_comm_topo_one(5, r);
        helix_traffic a = helix_traffic_allreduce(&one, 1001, 4);
        tot_s += a.sent_bytes; tot_r += a.recv_bytes;
    }
    CHECK(tot_s == 2 * 4 * 1001 * 4 && tot_r == tot_s, "allreduce moves 2(P-1)/P of the data per rank: %lld",
          (long long)tot_s);

    /* an engine with copy/sum_rows hooks: bitwise the host path, hooks used */
    for (int r = 0; r < P; r++)
        for (int k = 0; k < HN; k++) {
            float v = (float)((r * 7919 + k * 104729) % 2001 - 1000) * 0.00137f;
            helix_from_f32(HELIX_BF16, &v, &hk_in[r][k], 1);
        }
    helix_inproc_world_new(P, 2, &world);
    pthread_t th[P];
    for (int r = 0; r < P; r++) pthread_create(&th[r], NULL, hooked_main, (void *)(intptr_t)r);
    for (int r = 0; r < P; r++) pthread_join(th[r], NULL);
    helix_inproc_world_free(world);
    for (int r = 0; r < P; r++) {
        CHECK(!memcmp(hk_plain[r], hk_hook[r], sizeof hk_plain[r]), "rank %d: hooked all-reduce differs", r);
        CHECK(hk_calls[r] == 102, "rank %d: copy/sum_rows hooks called %d (want 1 copy, 2 sums: 102)", r, hk_calls[r]);
    }
    CHECK(!memcmp(hk_red_plain, hk_red_hook, sizeof hk_red_plain), "hooked reduce differs");
    float first = helix_load(HELIX_BF16, hk_plain[0], 0), want = 0;
    for (int r = 0; r < P; r++) want += helix_load(HELIX_BF16, hk_in[r], 0);
    CHECK(first == helix_bf16_to_f32(helix_f32_to_bf16(want)), "all-reduce[0] %g, want %g", first, want);

    /* abort: nobody hangs */
    struct timespec a0, a1;
    clock_gettime(CLOCK_MONOTONIC, &a0);
    helix_inproc_world_new(P, 2, &world);
    pthread_t t[P];
    for (int r = 0; r < P; r++) pthread_create(&t[r], NULL, abort_main, (void *)(intptr_t)r);
    for (int r = 0; r < P; r++) pthread_join(t[r], NULL);
    helix_inproc_world_free(world);
    clock_gettime(CLOCK_MONOTONIC, &a1);
    for (int r = 0; r < P; r++)
        if (r != 3) CHECK(aborted_seen[r], "rank %d did not see the abort", r);
    double dt = (double)(a1.tv_sec - a0.tv_sec) + 1e-9 * (double)(a1.tv_nsec - a0.tv_nsec);
    CHECK(dt < 5.0, "abort took %.2f s", dt);
    return test_summary();
}
