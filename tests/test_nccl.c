/* test_nccl.c — the NCCL engine under mpirun (one rank per GPU): all-reduce,
 * reduce-scatter by rows (uneven), all-gather, all-to-all and gather of
 * uneven chunks and broadcast over device buffers; sums equal bitwise what
 * the rank-ordered f32 sums on the host give, for f32, f16 and bf16, on
 * the world and (np >= 4) on splits of more than one rank; the native
 * (ncclAllReduce) all-reduce right to rounding; byte counters follow
 * helix_comm.h. Without CUDA,
 * MPI, or a GPU per rank, it prints SKIPPED and exits 77 on every rank. */
#include "check.h"
#include "helix_cuda.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float value(int rank, int64_t k) { return (float)((rank + 1) * 0.37 + (double)(k % 17) * 0.013 - 0.1); }

static void allreduce(helix_cuda_ctx *ctx, helix_comm_t *c, helix_dtype t, int64_t count, const char *what)
{
    const size_t es = helix_dtype_size(t), bytes = (size_t)count * es;
    void *h = malloc(bytes), *expect = malloc(bytes), *dev = NULL, *scratch = NULL;
    helix_err err = {{0}};
    for (int64_t k = 0; k < count; k++) { float v = value(c->rank, k); helix_from_f32(t, &v, (char *)h + k * es, 1); }
    /* expected: the host sum of every rank's stored values, in rank order */
    for (int64_t k = 0; k < count; k++) {
        float acc = 0, v;
        char tmp[4];
        for (int r = 0; r < c->size; r++) {
            v = value(r, k);
            helix_from_f32(t, &v, tmp, 1);
            acc += helix_load(t, tmp, 0);
        }
        helix_from_f32(t, &acc, (char *)expect + k * es, 1);
    }
    helix_status st = helix_cuda_malloc(ctx, bytes, &dev, &err);
    if (!st) st = helix_cuda_malloc(ctx, (size_t)helix_comm_reduce_scratch_bytes(count, c->size, t), &scratch, &err);
    if (!st) st = helix_cuda_upload(ctx, dev, h, bytes, &err);
    if (!st) st = helix_comm_allreduce_sum(c, dev, count, t, scratch);
    if (!st) st = helix_cuda_sync(ctx, &err);
    if (!st) st = helix_cuda_download(ctx, h, dev, bytes, &err);
    CHECK(st == HELIX_OK, "%s all-reduce %s: status %d %s", what, helix_dtype_name(t), (int)st, err.msg);
    CHECK(!st && !memcmp(h, expect, bytes), "%s all-reduce %s: differs from the host's rank-ordered sum", what,
          helix_dtype_name(t));
    helix_cuda_free(dev);
    helix_cuda_free(scratch);
    free(h);
    free(expect);
}

/* reduce-scatter by rows (rows not a multiple of the ranks): my rows hold
 * the host's rank-ordered sum bitwise */
static void reduce_scatter(helix_cuda_ctx *ctx, helix_comm_t *c, helix_dtype t, int64_t rows, int64_t unit)
{
    const int64_t count = rows * unit;
    const size_t es = helix_dtype_size(t), bytes = (size_t)count * es;
    void *h = malloc(bytes), *expect = malloc(bytes), *dev = NULL, *scratch = NULL;
    helix_err err = {{0}};
    for (int64_t k = 0; k < count; k++) {
        float v = value(c->rank, k), acc = 0;
        helix_from_f32(t, &v, (char *)h + k * es, 1);
        for (int r = 0; r < c->size; r++) {
            char tmp[4];
            float x = value(r, k);
            helix_from_f32(t, &x, tmp, 1);
            acc += helix_load(t, tmp, 0);
        }
        helix_from_f32(t, &acc, (char *)expect + k * es, 1);
    }
    helix_status st = helix_cuda_malloc(ctx, bytes, &dev, &err);
    if (!st) st = helix_cuda_malloc(ctx, (size_t)helix_comm_reduce_scatter_scratch_bytes(rows, unit, c->size, t), &scratch, &err);
    if (!st) st = helix_cuda_upload(ctx, dev, h, bytes, &err);
    if (!st) st = helix_comm_reduce_scatter_sum(c, dev, rows, unit, t, scratch);
    if (!st) st = helix_cuda_sync(ctx, &err);
    if (!st) st = helix_cuda_download(ctx, h, dev, bytes, &err);
    int64_t b, e;
    helix_split_range(rows, c->size, c->rank, &b, &e);
    CHECK(st == HELIX_OK && !memcmp((char *)h + (size_t)(b * unit) * es, (char *)expect + (size_t)(b * unit) * es,
                                    (size_t)((e - b) * unit) * es),
          "reduce-scatter %s rows=%lld: status %d %s, or my rows differ from the host's rank-ordered sum",
          helix_dtype_name(t), (long long)rows, (int)st, err.msg);
    helix_cuda_free(dev);
    helix_cuda_free(scratch);
    free(h);
    free(expect);
}

/* all-gather, all-to-all and gather of uneven chunks (rank r: r+1 ints) */
static void moves(helix_cuda_ctx *ctx, helix_comm_t *c)
{
    const int P = c->size, me = c->rank;
    size_t *cnt = calloc((size_t)(4 * P), sizeof *cnt);
    int64_t total = 0;
    for (int q = 0; q < P; q++) { cnt[q] = sizeof(int) * (size_t)(q + 1); cnt[P + q] = sizeof(int) * (size_t)total; total += q + 1; }
    int *mine = malloc(sizeof(int) * (size_t)(me + 1)), *all = calloc((size_t)total, sizeof(int));
    for (int k = 0; k <= me; k++) mine[k] = 1000 * me + k;
    void *dm = NULL, *da = NULL;
    helix_err err = {{0}};
    helix_status st = helix_cuda_malloc(ctx, sizeof(int) * (size_t)(me + 1), &dm, &err);
    if (!st) st = helix_cuda_malloc(ctx, sizeof(int) * (size_t)total, &da, &err);
    if (!st) st = helix_cuda_upload(ctx, dm, mine, sizeof(int) * (size_t)(me + 1), &err);
    if (!st) st = helix_comm_allgatherv(c, dm, cnt[me], da, cnt, cnt + P);
    if (!st) st = helix_cuda_sync(ctx, &err);
    if (!st) st = helix_cuda_download(ctx, all, da, sizeof(int) * (size_t)total, &err);
    int ok = !st;
    for (int q = 0, at = 0; ok && q < P; at += q + 1, q++)
        for (int k = 0; ok && k <= q; k++) ok = all[at + k] == 1000 * q + k;
    CHECK(ok, "all-gather of uneven chunks: status %d %s", (int)st, err.msg);
    /* gather onto the last rank */
    memset(all, 0, sizeof(int) * (size_t)total);
    if (!st) st = helix_cuda_upload(ctx, da, all, sizeof(int) * (size_t)total, &err);
    if (!st) st = helix_comm_gatherv(c, dm, cnt[me], da, cnt, cnt + P, P - 1);
    if (!st) st = helix_cuda_sync(ctx, &err);
    if (!st) st = helix_cuda_download(ctx, all, da, sizeof(int) * (size_t)total, &err);
    ok = !st;
    for (int q = 0, at = 0; ok && me == P - 1 && q < P; at += q + 1, q++)
        for (int k = 0; ok && k <= q; k++) ok = all[at + k] == 1000 * q + k;
    CHECK(ok, "gather onto rank %d: status %d %s", P - 1, (int)st, err.msg);
    /* all-to-all: rank r sends (r+1) ints to every peer, value 1000*r + peer */
    size_t *sc = cnt + 2 * P, *sd = calloc((size_t)P, sizeof *sd), *rc = calloc((size_t)P, sizeof *rc), *rd = calloc((size_t)P, sizeof *rd);
    int *sb = malloc(sizeof(int) * (size_t)(P * (me + 1))), *rb = calloc((size_t)total, sizeof(int));
    for (int q = 0; q < P; q++) {
        sc[q] = sizeof(int) * (size_t)(me + 1); sd[q] = sizeof(int) * (size_t)(q * (me + 1));
        rc[q] = cnt[q]; rd[q] = cnt[P + q];
        for (int k = 0; k <= me; k++) sb[q * (me + 1) + k] = 1000 * me + q;
    }
    void *ds = NULL;
    if (!st) st = helix_cuda_malloc(ctx, sizeof(int) * (size_t)(P * (me + 1)), &ds, &err);
    if (!st) st = helix_cuda_upload(ctx, ds, sb, sizeof(int) * (size_t)(P * (me + 1)), &err);
    if (!st) st = helix_comm_alltoallv(c, ds, sc, sd, da, rc, rd);
    if (!st) st = helix_cuda_sync(ctx, &err);
    if (!st) st = helix_cuda_download(ctx, rb, da, sizeof(int) * (size_t)total, &err);
    ok = !st;
    for (int q = 0, at = 0; ok && q < P; at += q + 1, q++)
        for (int k = 0; ok && k <= q; k++) ok = rb[at + k] == 1000 * q + me;
    CHECK(ok, "all-to-all of uneven chunks: status %d %s", (int)st, err.msg);
    helix_cuda_free(dm); helix_cuda_free(da); helix_cuda_free(ds);
    free(mine); free(all); free(cnt); free(sd); free(rc); free(rd); free(sb); free(rb);
}

/* --collectives native (ncclAllReduce): right to rounding, booked as ordered */
static void native_allreduce(helix_cuda_ctx *ctx, helix_comm_t *c, int64_t count)
{
    void *h = malloc(4 * (size_t)count), *dev = NULL;
    helix_err err = {{0}};
    for (int64_t k = 0; k < count; k++) ((float *)h)[k] = value(c->rank, k);
    helix_status st = helix_cuda_malloc(ctx, 4 * (size_t)count, &dev, &err);
    if (!st) st = helix_cuda_upload(ctx, dev, h, 4 * (size_t)count, &err);
    const int has = helix_comm_set_native(c, 1);
    if (!st && has) st = helix_comm_allreduce_sum(c, dev, count, HELIX_F32, NULL);   /* native needs no scratch */
    helix_comm_set_native(c, 0);
    if (!st) st = helix_cuda_sync(ctx, &err);
    if (!st) st = helix_cuda_download(ctx, h, dev, 4 * (size_t)count, &err);
    int64_t off = 0;
    for (int64_t k = 0; !st && k < count; k++) {
        double want = 0;
        for (int r = 0; r < c->size; r++) want += value(r, k);
        off += !(fabs(((float *)h)[k] - want) <= 1e-5 * (1 + fabs(want)));
    }
    CHECK(has && st == HELIX_OK && off == 0, "native all-reduce: engine has it %d, status %d %s, %lld values off",
          has, (int)st, err.msg, (long long)off);
    helix_cuda_free(dev);
    free(h);
}

int main(int argc, char **argv)
{
    int rank = 0, size = 1, gpus = 0;
    helix_err err = {{0}};
    if (!helix_cuda_built() || !helix_mpi_built()) {
        printf("SKIPPED: helix was built without %s\n", helix_cuda_built() ? "MPI" : "CUDA");
        return 77;
    }
    if (helix_mpi_init(&argc, &argv, &rank, &size, &err)) { printf("SKIPPED: %s\n", err.msg); return 77; }
    helix_comm_t *mpi = NULL;
    if (helix_mpi_world(&mpi)) { helix_mpi_finalize(); return 1; }
    int no = helix_cuda_device_count(&gpus, &err) != HELIX_OK, any = 0;
    helix_comm_any(mpi, no, &any);
    if (any) {
        if (rank == 0) printf("SKIPPED: %s\n", no ? err.msg : "a rank has no GPU");
        helix_comm_free(mpi);
        helix_mpi_finalize();
        return 77;
    }
    helix_cuda_ctx *ctx = NULL;
    helix_comm_t *world = NULL;
    helix_status st = helix_nccl_world(mpi, &ctx, &world, &err);
    if (st == HELIX_ERR_UNSUPPORTED) {   /* more ranks than GPUs on a host */
        if (rank == 0) printf("SKIPPED: %s\n", err.msg);
        helix_comm_free(mpi);
        helix_mpi_finalize();
        return 77;
    }
    CHECK(st == HELIX_OK, "helix_nccl_world: %s", err.msg);
    if (!st) {
        helix_comm_counters counters;
        memset(&counters, 0, sizeof counters);
        world->counters = &counters;
        const helix_dtype types[3] = {HELIX_F32, HELIX_F16, HELIX_BF16};
        for (int t = 0; t < 3; t++) {
            allreduce(ctx, world, types[t], 1, "world");
            allreduce(ctx, world, types[t], 1000003, "world");
        }
        const helix_comm_topo one = helix_comm_topo_one(size, rank);
        helix_traffic want = helix_traffic_allreduce(&one, 1000003, 4);
        CHECK(size == 1 || counters.bytes[counters.phase].sent_bytes >= want.sent_bytes, "counted bytes %lld < %lld",
              (long long)counters.bytes[counters.phase].sent_bytes, (long long)want.sent_bytes);
        helix_comm_t *half = NULL;
        st = helix_comm_split(world, rank % 2, rank, &half);
        CHECK(st == HELIX_OK, "split: status %d", (int)st);
        if (!st) {
            allreduce(ctx, half, HELIX_BF16, 4099, "split");
            helix_comm_free(half);
        }
        /* every other collective the executor uses, on the world and on a split of two halves */
        for (int t = 0; t < 3; t++) reduce_scatter(ctx, world, types[t], 1000 + size / 2, 24);
        moves(ctx, world);
        native_allreduce(ctx, world, 100003);
        helix_comm_t *pair = NULL;
        if (size >= 4 && !helix_comm_split(world, rank % 2, rank, &pair)) {
            reduce_scatter(ctx, pair, HELIX_BF16, 333, 16);
            moves(ctx, pair);
            helix_comm_free(pair);
        }
        /* broadcast from the last rank */
        int64_t *hb = calloc(256, sizeof *hb);
        void *db = NULL;
        for (int k = 0; k < 256; k++) hb[k] = rank == size - 1 ? k * 3 + 1 : -1;
        st = helix_cuda_malloc(ctx, 256 * sizeof *hb, &db, &err);
        if (!st) st = helix_cuda_upload(ctx, db, hb, 256 * sizeof *hb, &err);
        if (!st) st = helix_comm_bcast(world, db, 256 * sizeof *hb, size - 1);
        if (!st) st = helix_cuda_sync(ctx, &err);
        if (!st) st = helix_cuda_download(ctx, hb, db, 256 * sizeof *hb, &err);
        int ok = !st;
        for (int k = 0; ok && k < 256; k++) ok = hb[k] == k * 3 + 1;
        CHECK(ok, "broadcast from rank %d: status %d", size - 1, (int)st);
        helix_cuda_free(db);
        free(hb);
        helix_comm_free(world);
    }
    helix_cuda_ctx_free(ctx);
    helix_comm_free(mpi);
    int failed = t_fail != 0;
    helix_mpi_finalize();
    if (rank == 0) return test_summary();
    return failed;
}
