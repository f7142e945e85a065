/* test_nccl.c — the NCCL engine under mpirun (one rank per GPU): all-reduce,
 * reduce, broadcast and gather over device buffers equal bitwise what the
 * rank-ordered f32 sums on the host give, for f32, f16 and bf16, on the
 * world and on a split; byte counters follow helix_comm.h. Without CUDA,
 * MPI, or a GPU per rank, it prints SKIPPED and exits 77 on every rank. */
#include "check.h"
#include "helix_cuda.h"

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
