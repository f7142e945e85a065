/* mpi.c — the MPI engine: one rank per device. Each primitive maps to the
 * MPI collective of the same name; messages whose counts or offsets do not
 * fit MPI's int are moved by chunked point-to-point instead. Errors return
 * (MPI_ERRORS_RETURN) so they travel up as helix_status. */
#include "helix_comm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HELIX_HAVE_MPI
#include <limits.h>
#include <mpi.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#define CHUNK ((size_t)1 << 30)

typedef struct {
    helix_comm_t pub;
    MPI_Comm comm;
} mpi_comm_t;

/* ------------------------------------------------------------ watchdog
 * A thread that watches the collective this rank is in. When one has not
 * completed within the timeout, the rank tells every other rank so (on a
 * communicator of its own, which needs MPI_THREAD_MULTIPLE), listens for a
 * grace period to learn which ranks are waiting too, and the lowest of the
 * waiting ranks reports the ranks that never arrived through the caller's
 * callback (which ends the job). A stopped or hung rank cannot report:
 * that is how it is named. */
enum { WD_TAG = 4242 };
typedef struct {
    int rank;
    double waited_s;
    char what[112];
} wd_note;

static struct {
    pthread_mutex_t mu;
    double timeout_s;                 /* 0: off */
    void (*on_timeout)(const char *msg, void *ctx);
    void *ctx;
    int depth;                        /* nested primitives count once */
    double since;
    char what[112];
    pthread_t th;
    int started, stop, multiple;
    MPI_Comm comm;
} wd = {PTHREAD_MUTEX_INITIALIZER};

static double wd_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void wd_enter(void *self, const char *op)
{
    if (!wd.started) return;
    const mpi_comm_t *c = self;
    pthread_mutex_lock(&wd.mu);
    if (wd.depth++ == 0) {
        wd.since = wd_now();
        snprintf(wd.what, sizeof wd.what, "%s in phase %s (a communicator of %d ranks)", op,
                 c->pub.counters ? helix_phase_name(c->pub.counters->phase) : "setup", c->pub.size);
    }
    pthread_mutex_unlock(&wd.mu);
}

static void wd_leave(void)
{
    if (!wd.started) return;
    pthread_mutex_lock(&wd.mu);
    wd.depth--;
    pthread_mutex_unlock(&wd.mu);
}

/* the collective timed out: find out who else is waiting, then report */
static void wd_fire(const char *what, double waited)
{
    int me = 0, n = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    char msg[1400];
    if (!wd.multiple) {
        snprintf(msg, sizeof msg, "rank %d: %s has not completed after %.0f s (--timeout); some rank stopped or hangs "
                 "(this MPI gives no MPI_THREAD_MULTIPLE, so the ranks cannot tell which)", me, what, waited);
        wd.on_timeout(msg, wd.ctx);
        return;
    }
    wd_note mine = {me, waited, ""};
    snprintf(mine.what, sizeof mine.what, "%s", what);
    MPI_Request *req = calloc((size_t)n, sizeof *req);
    char *heard = calloc((size_t)n, 1);
    if (!req || !heard) { wd.on_timeout("collective timed out (and out of memory)", wd.ctx); return; }
    for (int p = 0; p < n; p++) req[p] = MPI_REQUEST_NULL;
    for (int p = 0; p < n; p++)
        if (p != me) MPI_Isend(&mine, (int)sizeof mine, MPI_BYTE, p, WD_TAG, wd.comm, &req[p]);
    heard[me] = 1;
    const double grace = wd.timeout_s / 4 < 2 ? 2 : wd.timeout_s / 4 > 10 ? 10 : wd.timeout_s / 4, t0 = wd_now();
    while (wd_now() - t0 < grace) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, WD_TAG, wd.comm, &flag, &st);
        if (!flag) { usleep(20000); continue; }
        wd_note other;
        MPI_Recv(&other, (int)sizeof other, MPI_BYTE, st.MPI_SOURCE, WD_TAG, wd.comm, MPI_STATUS_IGNORE);
        if (other.rank >= 0 && other.rank < n) heard[other.rank] = 1;
    }
    int lowest = me;
    for (int p = 0; p < me; p++) if (heard[p]) { lowest = p; break; }
    if (lowest != me) sleep(3);          /* the lowest waiting rank reports; this one only if it could not */
    size_t k = (size_t)snprintf(msg, sizeof msg, "%s has not completed after %.0f s (--timeout %.0f): ", what, waited,
                                wd.timeout_s);
    int missing = 0;
    for (int p = 0; p < n; p++) missing += !heard[p];
    for (int p = 0, q = 0; p < n && k < sizeof msg; p++)
        if (!heard[p]) k += (size_t)snprintf(msg + k, sizeof msg - k, "%s%d", q++ ? ", " : missing > 1 ? "ranks " : "rank ", p);
    if (k < sizeof msg)
        snprintf(msg + k, sizeof msg - k, missing ? " did not arrive (stopped, hung, or still computing); the %d other "
                 "ranks were waiting" : "every rank is waiting (a collective called in a different order?)", n - missing);
    free(req);
    free(heard);
    wd.on_timeout(msg, wd.ctx);
}

static void *wd_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&wd.mu);
        const int stop = wd.stop, in = wd.depth > 0;
        const double waited = wd_now() - wd.since;
        char what[112];
        snprintf(what, sizeof what, "%s", wd.what);
        pthread_mutex_unlock(&wd.mu);
        if (stop) return NULL;
        if (in && waited > wd.timeout_s) {
            wd_fire(what, waited);
            return NULL;
        }
        usleep(100000);
    }
}

helix_status helix_mpi_watchdog(double timeout_s, void (*on_timeout)(const char *msg, void *ctx), void *ctx)
{
    if (wd.started || timeout_s <= 0) return HELIX_OK;
    int provided = 0;
    MPI_Query_thread(&provided);
    wd.multiple = provided >= MPI_THREAD_MULTIPLE;
    if (wd.multiple && MPI_Comm_dup(MPI_COMM_WORLD, &wd.comm) != MPI_SUCCESS) return HELIX_ERR_COMM;
    wd.timeout_s = timeout_s;
    wd.on_timeout = on_timeout;
    wd.ctx = ctx;
    if (pthread_create(&wd.th, NULL, wd_main, NULL)) return HELIX_ERR_NOMEM;
    wd.started = 1;
    return HELIX_OK;
}

static void wd_stop(void)
{
    if (!wd.started) return;
    pthread_mutex_lock(&wd.mu);
    wd.stop = 1;
    pthread_mutex_unlock(&wd.mu);
    pthread_join(wd.th, NULL);
    wd.started = 0;
    if (wd.multiple) MPI_Comm_free(&wd.comm);
}

static helix_status ok(int rc) { return rc == MPI_SUCCESS ? HELIX_OK : HELIX_ERR_COMM; }
static MPI_Comm C(void *self) { return ((mpi_comm_t *)self)->comm; }

static int fits(const size_t *a, const size_t *b, int n)
{
    for (int p = 0; p < n; p++)
        if (a[p] > INT_MAX || (b && b[p] > INT_MAX)) return 0;
    return 1;
}

static int *to_int(const size_t *v, int n, int *buf)
{
    for (int p = 0; p < n; p++) buf[p] = (int)v[p];
    return buf;
}

/* point-to-point in pieces of at most CHUNK bytes */
static int send_big(const char *b, size_t n, int to, MPI_Comm c)
{
    for (size_t o = 0; o < n; o += CHUNK) {
        int rc = MPI_Send(b + o, (int)(n - o < CHUNK ? n - o : CHUNK), MPI_BYTE, to, 7, c);
        if (rc != MPI_SUCCESS) return rc;
    }
    return MPI_SUCCESS;
}
static int recv_big(char *b, size_t n, int from, MPI_Comm c)
{
    for (size_t o = 0; o < n; o += CHUNK) {
        int rc = MPI_Recv(b + o, (int)(n - o < CHUNK ? n - o : CHUNK), MPI_BYTE, from, 7, c, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return rc;
    }
    return MPI_SUCCESS;
}
/* send n_s bytes to `to` while receiving n_r from `from`, piece by piece
 * with MPI_Sendrecv (deadlock-free whatever the peers' order) */
static int sendrecv_big(const char *s, size_t ns, int to, char *r, size_t nr, int from, MPI_Comm c)
{
    size_t pieces_s = (ns + CHUNK - 1) / CHUNK, pieces_r = (nr + CHUNK - 1) / CHUNK;
    size_t pieces = pieces_s > pieces_r ? pieces_s : pieces_r;
    for (size_t k = 0; k < pieces; k++) {
        size_t o = k * CHUNK;
        int cs = o < ns ? (int)(ns - o < CHUNK ? ns - o : CHUNK) : 0;
        int cr = o < nr ? (int)(nr - o < CHUNK ? nr - o : CHUNK) : 0;
        int rc = MPI_Sendrecv(cs ? s + o : s, cs, MPI_BYTE, to, 8, cr ? r + o : r, cr, MPI_BYTE, from, 8, c,
                              MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return rc;
    }
    return MPI_SUCCESS;
}

static helix_status m_bcast_(void *self, void *buf, size_t n, int root)
{
    for (size_t o = 0; o < n; o += CHUNK) {
        int rc = MPI_Bcast((char *)buf + o, (int)(n - o < CHUNK ? n - o : CHUNK), MPI_BYTE, root, C(self));
        if (rc != MPI_SUCCESS) return HELIX_ERR_COMM;
    }
    return HELIX_OK;
}

static helix_status m_alltoallv_(void *self, const void *send, const size_t *sb, const size_t *sd, void *recv,
                                const size_t *rb, const size_t *rd)
{
    mpi_comm_t *c = (mpi_comm_t *)self;
    const int n = c->pub.size, me = c->pub.rank;
    if (fits(sb, sd, n) && fits(rb, rd, n)) {
        int *v = malloc(sizeof(int) * 4 * (size_t)n);
        if (!v) return HELIX_ERR_NOMEM;
        int rc = MPI_Alltoallv(send, to_int(sb, n, v), to_int(sd, n, v + n), MPI_BYTE, recv,
                               to_int(rb, n, v + 2 * n), to_int(rd, n, v + 3 * n), MPI_BYTE, c->comm);
        free(v);
        return ok(rc);
    }
    memcpy((char *)recv + rd[me], (const char *)send + sd[me], rb[me]);
    for (int step = 1; step < n; step++) {
        int to = (me + step) % n, from = (me - step + n) % n;
        if (sendrecv_big((const char *)send + sd[to], sb[to], to, (char *)recv + rd[from], rb[from], from,
                         c->comm) != MPI_SUCCESS)
            return HELIX_ERR_COMM;
    }
    return HELIX_OK;
}

static helix_status m_alltoallv(void *self, const void *send, const size_t *sb, const size_t *sd, void *recv,
                                const size_t *rb, const size_t *rd);
static helix_status m_allgatherv_(void *self, const void *send, size_t s, void *recv, const size_t *rb,
                                 const size_t *rd)
{
    mpi_comm_t *c = (mpi_comm_t *)self;
    const int n = c->pub.size, me = c->pub.rank;
    if (s <= INT_MAX && fits(rb, rd, n)) {
        int *v = malloc(sizeof(int) * 2 * (size_t)n);
        if (!v) return HELIX_ERR_NOMEM;
        int rc = MPI_Allgatherv(send ? send : MPI_IN_PLACE, (int)s, MPI_BYTE, recv, to_int(rb, n, v),
                                to_int(rd, n, v + n), MPI_BYTE, c->comm);
        free(v);
        return ok(rc);
    }
    /* large: everyone's chunk to everyone, as an all-to-all of the same chunk */
    size_t *v = malloc(sizeof(size_t) * 2 * (size_t)n);
    if (!v) return HELIX_ERR_NOMEM;
    const char *mine = send ? (const char *)send : (const char *)recv + rd[me];
    for (int p = 0; p < n; p++) { v[p] = s; v[n + p] = 0; }
    char *tmp = NULL;
    if (!send) {  /* in place: keep our chunk where alltoallv's self-copy expects it */
        tmp = malloc(s ? s : 1);
        if (!tmp) { free(v); return HELIX_ERR_NOMEM; }
        memcpy(tmp, mine, s);
        mine = tmp;
    }
    helix_status st = m_alltoallv(self, mine, v, v + n, recv, rb, rd);
    free(tmp);
    free(v);
    return st;
}

static helix_status m_gatherv_(void *self, const void *send, size_t s, void *recv, const size_t *rb,
                              const size_t *rd, int root)
{
    mpi_comm_t *c = (mpi_comm_t *)self;
    const int n = c->pub.size, me = c->pub.rank;
    int small = s <= INT_MAX && (me != root || fits(rb, rd, n));
    int all_small = 0;
    if (MPI_Allreduce(&small, &all_small, 1, MPI_INT, MPI_LAND, c->comm) != MPI_SUCCESS) return HELIX_ERR_COMM;
    if (all_small) {
        int *v = malloc(sizeof(int) * 2 * (size_t)n);
        if (!v) return HELIX_ERR_NOMEM;
        int rc = MPI_Gatherv(send, (int)s, MPI_BYTE, recv, me == root ? to_int(rb, n, v) : NULL,
                             me == root ? to_int(rd, n, v + n) : NULL, MPI_BYTE, root, c->comm);
        free(v);
        return ok(rc);
    }
    if (me != root) return ok(send_big(send, s, root, c->comm));
    memcpy((char *)recv + rd[me], send, s);
    for (int p = 0; p < n; p++)
        if (p != me && recv_big((char *)recv + rd[p], rb[p], p, c->comm) != MPI_SUCCESS) return HELIX_ERR_COMM;
    return HELIX_OK;
}

static helix_status m_any_(void *self, int mine, int *any)
{
    int v = mine != 0;
    return ok(MPI_Allreduce(&v, any, 1, MPI_INT, MPI_LOR, C(self)));
}

static const helix_comm_ops mpi_ops;

static helix_status wrap(MPI_Comm comm, helix_comm_t **out)
{
    mpi_comm_t *c = calloc(1, sizeof *c);
    if (!c) { MPI_Comm_free(&comm); return HELIX_ERR_NOMEM; }
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    c->comm = comm;
    c->pub.ops = &mpi_ops;
    c->pub.self = c;
    MPI_Comm_rank(comm, &c->pub.rank);
    MPI_Comm_size(comm, &c->pub.size);
    *out = &c->pub;
    return HELIX_OK;
}

static helix_status m_split_(void *self, int color, int key, helix_comm_t **out)
{
    MPI_Comm nc;
    if (MPI_Comm_split(C(self), color, key, &nc) != MPI_SUCCESS) return HELIX_ERR_COMM;
    return wrap(nc, out);
}

static void m_free(void *self)
{
    mpi_comm_t *c = (mpi_comm_t *)self;
    MPI_Comm_free(&c->comm);
    free(c);
}

/* every primitive under the watchdog */
static helix_status m_bcast(void *self, void *buf, size_t n, int root)
{
    wd_enter(self, "broadcast");
    helix_status st = m_bcast_(self, buf, n, root);
    wd_leave();
    return st;
}
static helix_status m_alltoallv(void *self, const void *send, const size_t *sb, const size_t *sd, void *recv,
                                const size_t *rb, const size_t *rd)
{
    wd_enter(self, "all-to-all");
    helix_status st = m_alltoallv_(self, send, sb, sd, recv, rb, rd);
    wd_leave();
    return st;
}
static helix_status m_allgatherv(void *self, const void *send, size_t s, void *recv, const size_t *rb, const size_t *rd)
{
    wd_enter(self, "all-gather");
    helix_status st = m_allgatherv_(self, send, s, recv, rb, rd);
    wd_leave();
    return st;
}
static helix_status m_gatherv(void *self, const void *send, size_t s, void *recv, const size_t *rb, const size_t *rd,
                              int root)
{
    wd_enter(self, "gather");
    helix_status st = m_gatherv_(self, send, s, recv, rb, rd, root);
    wd_leave();
    return st;
}
static helix_status m_any(void *self, int mine, int *any)
{
    wd_enter(self, "agreement (all-reduce)");
    helix_status st = m_any_(self, mine, any);
    wd_leave();
    return st;
}
static helix_status m_split(void *self, int color, int key, helix_comm_t **out)
{
    wd_enter(self, "communicator split");
    helix_status st = m_split_(self, color, key, out);
    wd_leave();
    return st;
}

/* ---------------------------------------------- native reductions (the library's) */

/* 16-bit elements have no MPI type: a 2-byte type and a sum op that
 * widens to f32 (commutative; the library picks the order) */
static void sum16(void *in, void *inout, int *len, helix_dtype t)
{
    for (int k = 0; k < *len; k++) {
        float v = helix_load(t, in, k) + helix_load(t, inout, k);
        helix_from_f32(t, &v, (char *)inout + 2 * (size_t)k, 1);
    }
}
static void sum_bf16(void *in, void *inout, int *len, MPI_Datatype *dt) { (void)dt; sum16(in, inout, len, HELIX_BF16); }
static void sum_f16(void *in, void *inout, int *len, MPI_Datatype *dt) { (void)dt; sum16(in, inout, len, HELIX_F16); }

static struct { int made; MPI_Datatype half; MPI_Op op[3]; } nat;

/* the MPI type and sum op of t (made on first use, by the thread that runs
 * the collectives) */
static int native_type(helix_dtype t, MPI_Datatype *dt, MPI_Op *op)
{
    if (t == HELIX_F32) { *dt = MPI_FLOAT; *op = MPI_SUM; return 0; }
    if (!nat.made) {
        if (MPI_Type_contiguous(2, MPI_BYTE, &nat.half) != MPI_SUCCESS || MPI_Type_commit(&nat.half) != MPI_SUCCESS ||
            MPI_Op_create(sum_bf16, 1, &nat.op[HELIX_BF16]) != MPI_SUCCESS ||
            MPI_Op_create(sum_f16, 1, &nat.op[HELIX_F16]) != MPI_SUCCESS)
            return -1;
        nat.made = 1;
    }
    *dt = nat.half;
    *op = nat.op[t];
    return 0;
}

/* MPI_Allreduce in place on recv (root < 0) or MPI_Reduce of send onto
 * recv at root, in pieces of at most 2^30 elements (counts are int) */
static helix_status native_sum(void *self, const void *send, void *recv, int64_t count, helix_dtype t, int root)
{
    MPI_Datatype dt;
    MPI_Op op;
    if (native_type(t, &dt, &op)) return HELIX_ERR_COMM;
    mpi_comm_t *c = (mpi_comm_t *)self;
    const int me = c->pub.rank;
    wd_enter(self, root < 0 ? "all-reduce (MPI_Allreduce)" : "reduce (MPI_Reduce)");
    const size_t es = helix_dtype_size(t);
    int rc = MPI_SUCCESS;
    for (int64_t at = 0; at < count && rc == MPI_SUCCESS; at += 1 << 30) {
        const int n = (int)(count - at < (1 << 30) ? count - at : 1 << 30);
        char *r = root < 0 || me == root ? (char *)recv + (size_t)at * es : NULL;
        if (root < 0) { rc = MPI_Allreduce(MPI_IN_PLACE, r, n, dt, op, c->comm); continue; }
        const char *s = (const char *)send + (size_t)at * es;
        rc = MPI_Reduce(me == root && s == r ? MPI_IN_PLACE : s, r, n, dt, op, root, c->comm);
    }
    wd_leave();
    return ok(rc);
}

static helix_status m_allreduce_native(void *self, void *buf, int64_t count, helix_dtype t)
{
    return native_sum(self, NULL, buf, count, t, -1);
}

static helix_status m_reduce_native(void *self, const void *send, void *recv, int64_t count, helix_dtype t, int root)
{
    return native_sum(self, send, recv, count, t, root);
}

static helix_status m_reduce_scatter_native(void *self, const void *buf, const int64_t *counts, void *scratch,
                                            helix_dtype t)
{
    mpi_comm_t *c = (mpi_comm_t *)self;
    const int n = c->pub.size;
    int small = 1, all_small = 0;
    for (int p = 0; p < n; p++) small &= counts[p] <= INT_MAX;
    if (MPI_Allreduce(&small, &all_small, 1, MPI_INT, MPI_LAND, c->comm) != MPI_SUCCESS) return HELIX_ERR_COMM;
    if (!all_small) return HELIX_ERR_UNSUPPORTED;
    MPI_Datatype dt;
    MPI_Op op;
    if (native_type(t, &dt, &op)) return HELIX_ERR_COMM;
    int *rc_n = malloc(sizeof(int) * (size_t)n);
    if (!rc_n) return HELIX_ERR_NOMEM;
    for (int p = 0; p < n; p++) rc_n[p] = (int)counts[p];
    wd_enter(self, "reduce-scatter (MPI_Reduce_scatter)");
    int rc = MPI_Reduce_scatter(buf, scratch, rc_n, dt, op, c->comm);
    wd_leave();
    free(rc_n);
    return ok(rc);
}

static const helix_comm_ops mpi_ops = {
    "mpi", m_bcast, m_allgatherv, m_alltoallv, m_gatherv, m_split, m_any, m_free, NULL, NULL,
    m_allreduce_native, m_reduce_native, m_reduce_scatter_native,
};

int helix_mpi_built(void) { return 1; }

helix_status helix_mpi_init(int *argc, char ***argv, int *rank, int *size, helix_err *err)
{
    int provided = 0;
    /* MULTIPLE: the watchdog thread talks to the other ranks while the main
     * thread is blocked in a collective (FUNNELED would do for the rest) */
    if (MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) {
        if (err) snprintf(err->msg, sizeof err->msg, "MPI_Init_thread failed");
        return HELIX_ERR_COMM;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, rank);
    MPI_Comm_size(MPI_COMM_WORLD, size);
    return HELIX_OK;
}

helix_status helix_mpi_world(helix_comm_t **out)
{
    MPI_Comm dup;
    if (MPI_Comm_dup(MPI_COMM_WORLD, &dup) != MPI_SUCCESS) return HELIX_ERR_COMM;
    return wrap(dup, out);
}

helix_status helix_mpi_nodes(int *ranks_per_node)
{
    MPI_Comm local;
    int rank, lr, ls;
    *ranks_per_node = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local) != MPI_SUCCESS)
        return HELIX_ERR_COMM;
    MPI_Comm_rank(local, &lr);
    MPI_Comm_size(local, &ls);
    int base = rank - lr, mine[2], lo[2];
    MPI_Allreduce(&base, &mine[0], 1, MPI_INT, MPI_MIN, local);     /* the node's lowest world rank */
    /* blocks: every node has ls ranks, consecutive from a multiple of ls */
    mine[0] = mine[0] == base && base % ls == 0 ? ls : -1;
    mine[1] = -ls;
    helix_status st = ok(MPI_Allreduce(mine, lo, 2, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    MPI_Comm_free(&local);
    if (st) return st;
    *ranks_per_node = lo[0] > 0 && -lo[1] == lo[0] ? lo[0] : 0;
    return HELIX_OK;
}

void helix_mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }
void helix_mpi_finalize(void)
{
    wd_stop();
    if (nat.made) {
        MPI_Op_free(&nat.op[HELIX_BF16]);
        MPI_Op_free(&nat.op[HELIX_F16]);
        MPI_Type_free(&nat.half);
        nat.made = 0;
    }
    MPI_Finalize();
}

const char *helix_mpi_version(void)
{
    static char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int n = 0;
    MPI_Get_library_version(v, &n);
    for (int k = 0; k < n; k++) if (v[k] == '\n' || v[k] == ',') { v[k] = 0; break; }
    return v;
}

#else /* no MPI in this build */

int helix_mpi_built(void) { return 0; }
helix_status helix_mpi_init(int *argc, char ***argv, int *rank, int *size, helix_err *err)
{
    (void)argc; (void)argv; *rank = 0; *size = 1;
    if (err) snprintf(err->msg, sizeof err->msg, "this helix was built without MPI "
                      "(install libopenmpi-dev and rebuild: scripts/build.sh)");
    return HELIX_ERR_UNSUPPORTED;
}
helix_status helix_mpi_world(helix_comm_t **out) { *out = NULL; return HELIX_ERR_UNSUPPORTED; }
helix_status helix_mpi_nodes(int *ranks_per_node) { *ranks_per_node = 0; return HELIX_ERR_UNSUPPORTED; }
helix_status helix_mpi_watchdog(double timeout_s, void (*on_timeout)(const char *msg, void *ctx), void *ctx)
{
    (void)timeout_s; (void)on_timeout; (void)ctx;
    return HELIX_ERR_UNSUPPORTED;
}
void helix_mpi_abort(int code) { (void)code; }
void helix_mpi_finalize(void) {}
const char *helix_mpi_version(void) { return ""; }

#endif

int helix_mpi_launched(void)
{
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS", "PMI_RANK"};
    for (size_t k = 0; k < sizeof vars / sizeof *vars; k++)
        if (getenv(vars[k])) return 1;
    return 0;
}
