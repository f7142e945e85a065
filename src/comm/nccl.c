/* nccl.c — the NCCL engine: helix_comm_ops over device buffers. The five
 * primitives are grouped ncclSend/ncclRecv (NCCL has no v-collectives) or
 * ncclBroadcast; the rank's own chunk is a device copy; the reduce-scatter's
 * sums are a device kernel in rank order (src/cuda/runtime.cu), so results
 * are bitwise those of the CPU engines. Work runs on the context's
 * communication stream: it waits for the compute stream's work so far (an
 * event) and the compute stream waits for it (another event), so neither
 * the host nor the other stream blocks. `any` and the bookkeeping of split
 * go through the MPI communicator the world was made from. */
#define _DEFAULT_SOURCE   /* gethostname */
#include "../cuda/cuda-impl.h"
#include "helix_comm.h"

#include <nccl.h>
#include <stddef.h>

/* ncclCommSplit (rows and columns) and ncclCommFinalize */
#if !defined(NCCL_VERSION_CODE) || NCCL_VERSION_CODE < NCCL_VERSION(2, 18, 0)
#error "the NCCL engine needs NCCL >= 2.18 (ncclCommSplit)"
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    ncclComm_t nccl;
    helix_comm_t *host;        /* the MPI communicator over the same ranks */
    helix_cuda_ctx *ctx;
    cudaEvent_t before, after;
    int rank, size;
    int aborted;               /* ncclCommAbort was called: destroy, never finalize */
} nc_self;

/* (the library prints nothing: the status says it failed; `what` names
 * the call for a debugger) */
static helix_status nccl_check(ncclResult_t r, const char *what)
{
    (void)what;
    return r == ncclSuccess ? HELIX_OK : HELIX_ERR_COMM;
}

/* the communication stream starts after the compute stream's work so far */
static helix_status enter(nc_self *s)
{
    if (cudaEventRecord(s->before, s->ctx->stream) != cudaSuccess) return HELIX_ERR_COMM;
    return cudaStreamWaitEvent(s->ctx->comm_stream, s->before, 0) == cudaSuccess ? HELIX_OK : HELIX_ERR_COMM;
}

/* An error NCCL found asynchronously (a peer gone, a network failure)
 * aborts the communicator, so no rank waits on it forever. */
static helix_status async_check(nc_self *s, helix_status st)
{
    ncclResult_t ar = ncclSuccess;
    if (!s->aborted && ncclCommGetAsyncError(s->nccl, &ar) == ncclSuccess && ar != ncclSuccess && ar != ncclInProgress) {
        ncclCommAbort(s->nccl);
        s->aborted = 1;
        return HELIX_ERR_COMM;
    }
    if (st && !s->aborted) { ncclCommAbort(s->nccl); s->aborted = 1; }
    return st;
}

/* ... and the compute stream's next work starts after the collective */
static helix_status leave(nc_self *s, helix_status st)
{
    if ((st = async_check(s, st))) return st;
    if (cudaEventRecord(s->after, s->ctx->comm_stream) != cudaSuccess) return HELIX_ERR_COMM;
    return cudaStreamWaitEvent(s->ctx->stream, s->after, 0) == cudaSuccess ? HELIX_OK : HELIX_ERR_COMM;
}

static helix_status dcopy(nc_self *s, void *dst, const void *src, size_t n)
{
    if (!n || dst == src) return HELIX_OK;
    return cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, s->ctx->comm_stream) == cudaSuccess ? HELIX_OK
                                                                                                         : HELIX_ERR_COMM;
}

static helix_status nc_bcast(void *self, void *buf, size_t n, int root)
{
    nc_self *s = self;
    helix_status st = enter(s);
    if (!st) st = nccl_check(ncclBroadcast(buf, buf, n, ncclChar, root, s->nccl, s->ctx->comm_stream), "broadcast");
    return leave(s, st);
}

static helix_status nc_allgatherv(void *self, const void *send, size_t send_bytes, void *recv, const size_t *recv_bytes,
                                  const size_t *displs)
{
    nc_self *s = self;
    const void *mine = send ? send : (const char *)recv + displs[s->rank];
    helix_status st = enter(s);
    if (st) return st;
    if (send) st = dcopy(s, (char *)recv + displs[s->rank], send, send_bytes);
    if (!st) st = nccl_check(ncclGroupStart(), "group start");
    for (int p = 0; !st && p < s->size; p++) {
        if (p == s->rank) continue;
        if (send_bytes) st = nccl_check(ncclSend(mine, send_bytes, ncclChar, p, s->nccl, s->ctx->comm_stream), "send");
        if (!st && recv_bytes[p])
            st = nccl_check(ncclRecv((char *)recv + displs[p], recv_bytes[p], ncclChar, p, s->nccl, s->ctx->comm_stream), "recv");
    }
    helix_status end = nccl_check(ncclGroupEnd(), "group end");
    return leave(s, st ? st : end);
}

static helix_status nc_alltoallv(void *self, const void *send, const size_t *send_bytes, const size_t *sdispls,
                                 void *recv, const size_t *recv_bytes, const size_t *rdispls)
{
    nc_self *s = self;
    helix_status st = enter(s);
    if (st) return st;
    st = dcopy(s, (char *)recv + rdispls[s->rank], (const char *)send + sdispls[s->rank], send_bytes[s->rank]);
    if (!st) st = nccl_check(ncclGroupStart(), "group start");
    for (int p = 0; !st && p < s->size; p++) {
        if (p == s->rank) continue;
        if (send_bytes[p])
            st = nccl_check(ncclSend((const char *)send + sdispls[p], send_bytes[p], ncclChar, p, s->nccl, s->ctx->comm_stream), "send");
        if (!st && recv_bytes[p])
            st = nccl_check(ncclRecv((char *)recv + rdispls[p], recv_bytes[p], ncclChar, p, s->nccl, s->ctx->comm_stream), "recv");
    }
    helix_status end = nccl_check(ncclGroupEnd(), "group end");
    return leave(s, st ? st : end);
}

static helix_status nc_gatherv(void *self, const void *send, size_t send_bytes, void *recv, const size_t *recv_bytes,
                               const size_t *displs, int root)
{
    nc_self *s = self;
    helix_status st = enter(s);
    if (st) return st;
    if (s->rank == root) {
        st = dcopy(s, (char *)recv + displs[root], send, send_bytes);
        if (!st) st = nccl_check(ncclGroupStart(), "group start");
        for (int p = 0; !st && p < s->size; p++)
            if (p != root && recv_bytes[p])
                st = nccl_check(ncclRecv((char *)recv + displs[p], recv_bytes[p], ncclChar, p, s->nccl, s->ctx->comm_stream), "recv");
        helix_status end = nccl_check(ncclGroupEnd(), "group end");
        return leave(s, st ? st : end);
    }
    if (send_bytes) st = nccl_check(ncclSend(send, send_bytes, ncclChar, root, s->nccl, s->ctx->comm_stream), "send");
    return leave(s, st);
}

static helix_status wrap(ncclComm_t nccl, helix_comm_t *host, helix_cuda_ctx *ctx, helix_comm_t **out);

static helix_status nc_split(void *self, int color, int key, helix_comm_t **out)
{
    nc_self *s = self;
    helix_comm_t *host = NULL;
    helix_status st = helix_comm_split(s->host, color, key, &host);
    if (st) return st;
    ncclComm_t sub;
    /* the rows and columns share the parent's resources (buffers, channels):
     * a run splits up to 7 communicators */
    ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
    cfg.splitShare = 1;
    st = nccl_check(ncclCommSplit(s->nccl, color, key, &sub, &cfg), "comm split");
    if (st) { helix_comm_free(host); return st; }
    st = wrap(sub, host, s->ctx, out);
    if (st) { ncclCommDestroy(sub); helix_comm_free(host); }
    return st;
}

static helix_status nc_any(void *self, int mine, int *any)
{
    nc_self *s = self;
    return helix_comm_any(s->host, mine, any);
}

static helix_status nc_copy(void *self, void *dst, const void *src, size_t n)
{
    nc_self *s = self;
    helix_status st = enter(s);
    if (!st) st = dcopy(s, dst, src, n);
    return leave(s, st);
}

static helix_status nc_sum_rows(void *self, void *rows, int64_t n_rows, int64_t n, helix_dtype t)
{
    nc_self *s = self;
    helix_status st = enter(s);
    if (!st) st = helix_cuda_sum_rows(s->ctx->comm_stream, rows, n_rows, n, t);
    return leave(s, st);
}

/* helix_comm_t and its nc_self in one allocation */
typedef struct {
    helix_comm_t comm;
    nc_self self;
} nc_pair;

static void nc_pair_free(void *self)
{
    nc_self *s = self;
    nc_pair *p = (nc_pair *)((char *)s - offsetof(nc_pair, self));
    if (!s->aborted && ncclCommFinalize(s->nccl) != ncclSuccess) ncclCommAbort(s->nccl);   /* flush, then free */
    else if (!s->aborted) ncclCommDestroy(s->nccl);
    cudaEventDestroy(s->before);
    cudaEventDestroy(s->after);
    helix_comm_free(s->host);
    free(p);
}

/* --collectives native: NCCL's own reductions (NVLS / trees / rings; not
 * bitwise reproducible) */
static int nccl_type(helix_dtype t, ncclDataType_t *out)
{
    switch (t) {
    case HELIX_F32: *out = ncclFloat32; return 0;
    case HELIX_F16: *out = ncclFloat16; return 0;
    case HELIX_BF16: *out = ncclBfloat16; return 0;
    default: return -1;
    }
}

static helix_status nc_allreduce_native(void *self, void *buf, int64_t count, helix_dtype t)
{
    nc_self *s = self;
    ncclDataType_t dt;
    if (nccl_type(t, &dt)) return HELIX_ERR_UNSUPPORTED;
    helix_status st = enter(s);
    if (!st) st = nccl_check(ncclAllReduce(buf, buf, (size_t)count, dt, ncclSum, s->nccl, s->ctx->comm_stream), "all-reduce");
    return leave(s, st);
}

static helix_status nc_reduce_native(void *self, const void *send, void *recv, int64_t count, helix_dtype t, int root)
{
    nc_self *s = self;
    ncclDataType_t dt;
    if (nccl_type(t, &dt)) return HELIX_ERR_UNSUPPORTED;
    helix_status st = enter(s);
    if (!st) st = nccl_check(ncclReduce(send, s->rank == root ? recv : NULL, (size_t)count, dt, ncclSum, root, s->nccl,
                                        s->ctx->comm_stream), "reduce");
    return leave(s, st);
}

/* ncclReduceScatter gives every rank the same count: uneven rows run ordered */
static helix_status nc_reduce_scatter_native(void *self, const void *buf, const int64_t *counts, void *scratch,
                                             helix_dtype t)
{
    nc_self *s = self;
    ncclDataType_t dt;
    if (nccl_type(t, &dt)) return HELIX_ERR_UNSUPPORTED;
    for (int p = 1; p < s->size; p++) if (counts[p] != counts[0]) return HELIX_ERR_UNSUPPORTED;
    helix_status st = enter(s);
    if (!st) st = nccl_check(ncclReduceScatter(buf, scratch, (size_t)counts[0], dt, ncclSum, s->nccl, s->ctx->comm_stream),
                             "reduce-scatter");
    return leave(s, st);
}

static const helix_comm_ops nccl_ops = {
    "nccl", nc_bcast, nc_allgatherv, nc_alltoallv, nc_gatherv, nc_split, nc_any, nc_pair_free, nc_copy, nc_sum_rows,
    nc_allreduce_native, nc_reduce_native, nc_reduce_scatter_native,
};

static helix_status wrap(ncclComm_t nccl, helix_comm_t *host, helix_cuda_ctx *ctx, helix_comm_t **out)
{
    nc_pair *p = calloc(1, sizeof *p);
    if (!p) return HELIX_ERR_NOMEM;
    nc_self *s = &p->self;
    s->nccl = nccl;
    s->host = host;
    s->ctx = ctx;
    s->rank = host->rank;
    s->size = host->size;
    if (cudaEventCreateWithFlags(&s->before, cudaEventDisableTiming) != cudaSuccess ||
        cudaEventCreateWithFlags(&s->after, cudaEventDisableTiming) != cudaSuccess) {
        free(p);
        return HELIX_ERR_INTERNAL;
    }
    p->comm.ops = &nccl_ops;
    p->comm.self = s;
    p->comm.rank = s->rank;
    p->comm.size = s->size;
    p->comm.counters = NULL;
    *out = &p->comm;
    return HELIX_OK;
}

static uint64_t host_hash(void)
{
    char name[256] = "";
    gethostname(name, sizeof name - 1);
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */
    for (const char *c = name; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ull;
    return h;
}

helix_status helix_nccl_world(helix_comm_t *mpi, helix_cuda_ctx **ctx, helix_comm_t **out, helix_err *err)
{
    *ctx = NULL;
    *out = NULL;
    const int rank = mpi->rank, size = mpi->size;
    /* the local GPU: this rank's index among the ranks on its host */
    uint64_t *hashes = calloc((size_t)size, sizeof *hashes);
    size_t *cd = calloc(2 * (size_t)size, sizeof *cd);
    if (!hashes || !cd) { free(hashes); free(cd); return helix_errf(err, HELIX_ERR_NOMEM, "out of memory"); }
    for (int p = 0; p < size; p++) { cd[p] = sizeof(uint64_t); cd[size + p] = (size_t)p * sizeof(uint64_t); }
    hashes[rank] = host_hash();
    helix_status st = helix_comm_allgatherv(mpi, NULL, sizeof(uint64_t), hashes, cd, cd + size);
    int local = 0, on_host = 0;
    for (int p = 0; !st && p < size; p++)
        if (hashes[p] == hashes[rank]) { if (p < rank) local++; on_host++; }
    free(hashes);
    free(cd);
    if (st) return helix_errf(err, st, "gathering host names over MPI failed");
    /* the GPU: local rank mod the GPUs this rank sees (one visible GPU per
     * rank, CUDA_VISIBLE_DEVICES or SLURM --gpus-per-task=1, gives 0) */
    int gpus = 0, version = 0;
    helix_status mine = helix_cuda_device_count(&gpus, err);
    const int dev = gpus > 0 ? local % gpus : 0;
    if (!mine && (ncclGetVersion(&version) != ncclSuccess || version < 21800))
        mine = helix_errf(err, HELIX_ERR_UNSUPPORTED, "NCCL %d.%d.%d at run time; the engine needs 2.18 or newer (ncclCommSplit)",
                          version / 10000, version / 100 % 100, version % 100);
    if (!mine) mine = helix_cuda_ctx_new(dev, ctx, err);
    /* two ranks on one physical GPU (NCCL cannot): compare GPU UUIDs */
    unsigned char *uuids = calloc((size_t)size, 16 + sizeof(uint64_t));
    size_t *ucd = calloc(2 * (size_t)size, sizeof *ucd);
    if (!uuids || !ucd) { free(uuids); free(ucd); helix_cuda_ctx_free(*ctx); *ctx = NULL; return helix_errf(err, HELIX_ERR_NOMEM, "out of memory"); }
    const size_t rec = 16 + sizeof(uint64_t);
    struct cudaDeviceProp prop;
    if (!mine && cudaGetDeviceProperties(&prop, dev) == cudaSuccess) memcpy(uuids + (size_t)rank * rec, prop.uuid.bytes, 16);
    const uint64_t hh = host_hash();
    memcpy(uuids + (size_t)rank * rec + 16, &hh, sizeof hh);
    for (int p = 0; p < size; p++) { ucd[p] = rec; ucd[size + p] = (size_t)p * rec; }
    st = helix_comm_allgatherv(mpi, NULL, rec, uuids, ucd, ucd + size);
    for (int p = 0; !st && !mine && p < size; p++) {
        if (p == rank || memcmp(uuids + (size_t)p * rec + 16, &hh, sizeof hh)) continue;   /* another host */
        if (!memcmp(uuids + (size_t)p * rec, uuids + (size_t)rank * rec, 16))
            mine = helix_errf(err, HELIX_ERR_UNSUPPORTED, "ranks %d and %d would share GPU %d of this host (%d visible): NCCL "
                              "cannot put two ranks on one GPU (one GPU per rank, or --virtual-devices)",
                              p < rank ? p : rank, p < rank ? rank : p, dev, gpus);
    }
    free(uuids);
    free(ucd);
    (void)on_host;
    if (st) { helix_cuda_ctx_free(*ctx); *ctx = NULL; return helix_errf(err, st, "gathering GPU ids over MPI failed"); }
    int any = 0;
    if (helix_comm_any(mpi, mine != HELIX_OK, &any)) return helix_errf(err, HELIX_ERR_COMM, "MPI failed");
    if (any) {
        helix_cuda_ctx_free(*ctx);
        *ctx = NULL;
        return mine ? mine : helix_errf(err, HELIX_ERR_ABORTED, "another rank could not open its GPU");
    }
    /* rank 0 makes the id, MPI carries it to everyone */
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    ncclResult_t idr = rank == 0 ? ncclGetUniqueId(&id) : ncclSuccess;
    if (helix_comm_any(mpi, idr != ncclSuccess, &any) || any) {
        helix_cuda_ctx_free(*ctx);
        *ctx = NULL;
        return helix_errf(err, HELIX_ERR_COMM, "ncclGetUniqueId on rank 0 failed%s%s", idr ? ": " : "",
                          idr ? ncclGetErrorString(idr) : "");
    }
    helix_comm_t *host = NULL;
    st = helix_comm_bcast(mpi, &id, sizeof id, 0);
    if (!st) st = helix_comm_split(mpi, 0, rank, &host);   /* the engine's own copy of the MPI world */
    ncclComm_t nccl = NULL;
    ncclResult_t r = st ? ncclInvalidUsage : ncclCommInitRank(&nccl, size, id, rank);
    if (!st && r != ncclSuccess)
        st = helix_errf(err, HELIX_ERR_COMM, "ncclCommInitRank (rank %d of %d, GPU %d): %s", rank, size, dev,
                        ncclGetErrorString(r));
    int nrank = -1, nsize = -1;
    if (!st && (ncclCommUserRank(nccl, &nrank) != ncclSuccess || ncclCommCount(nccl, &nsize) != ncclSuccess ||
                nrank != rank || nsize != size))
        st = helix_errf(err, HELIX_ERR_COMM, "NCCL says rank %d of %d, MPI rank %d of %d", nrank, nsize, rank, size);
    if (!st) st = wrap(nccl, host, *ctx, out);
    if (st) {
        if (nccl) ncclCommDestroy(nccl);
        helix_comm_free(host);
        helix_cuda_ctx_free(*ctx);
        *ctx = NULL;
    }
    return st;
}
