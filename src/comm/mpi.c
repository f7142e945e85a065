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

#define CHUNK ((size_t)1 << 30)

typedef struct {
    helix_comm_t pub;
    MPI_Comm comm;
} mpi_comm_t;

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

static helix_status m_bcast(void *self, void *buf, size_t n, int root)
{
    for (size_t o = 0; o < n; o += CHUNK) {
        int rc = MPI_Bcast((char *)buf + o, (int)(n - o < CHUNK ? n - o : CHUNK), MPI_BYTE, root, C(self));
        if (rc != MPI_SUCCESS) return HELIX_ERR_COMM;
    }
    return HELIX_OK;
}

static helix_status m_alltoallv(void *self, const void *send, const size_t *sb, const size_t *sd, void *recv,
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

static helix_status m_allgatherv(void *self, const void *send, size_t s, void *recv, const size_t *rb,
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

static helix_status m_gatherv(void *self, const void *send, size_t s, void *recv, const size_t *rb,
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

static helix_status m_any(void *self, int mine, int *any)
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

static helix_status m_split(void *self, int color, int key, helix_comm_t **out)
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

static const helix_comm_ops mpi_ops = {
    "mpi", m_bcast, m_allgatherv, m_alltoallv, m_gatherv, m_split, m_any, m_free,
};

int helix_mpi_built(void) { return 1; }

helix_status helix_mpi_init(int *argc, char ***argv, int *rank, int *size, helix_err *err)
{
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
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

void helix_mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }
void helix_mpi_finalize(void) { MPI_Finalize(); }

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
