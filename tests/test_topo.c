/* test_topo.c — collectives that know the topology (helix_comm.h), on the
 * in-process engine with K emulated nodes of G ranks:
 *   - bytes between nodes per rank are exactly the closed forms the
 *     issue states (all-reduce 2(K-1)/K * N/G elements, reduce, all-gather,
 *     broadcast, reduce-scatter by rows (K-1) N/P), and everything booked
 *     equals helix_traffic_*'s prediction;
 *   - the hierarchical sums follow the documented order bitwise (node-local
 *     partials in local order, then across nodes), and differ from no sum
 *     by more than rounding;
 *   - a communicator whose nodes hold different numbers of ranks stays flat.
 * (Bitwise equality with the MPI engine for the same topology is
 * tests/test_mpi.sh's, on whole layers.) */
#include "check.h"
#include "helix_comm.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAXP 12
#define N 960   /* divisible by every K*G below */

static int K, G, P;
static helix_inproc_world_t *world;
static helix_comm_counters ctr[MAXP];
static float in[MAXP][N], ar_out[MAXP][N], red_out[N], ag_out[MAXP][MAXP * 16];
static int bc_out[MAXP][16];
static float rs_out[MAXP][N];
static helix_traffic booked[MAXP][5], predicted[MAXP][5];
#define RS_UNIT 8   /* reduce-scatter by rows of 8: N / 8 = 120 rows */
static int errors[MAXP];
static const int *node_map;   /* node of world rank q */

static float val(int r, int k) { return (float)((r * 7919 + k * 104729) % 2001 - 1000) * 0.00137f; }

static void *rank_main(void *arg)
{
    const int r = (int)(intptr_t)arg;
    helix_comm_t *c = NULL;
    if (helix_inproc_comm(world, r, &ctr[r], &c)) { errors[r] = 1; return NULL; }
    if (helix_comm_set_nodes(c, node_map)) { errors[r] = 2; helix_inproc_rank_done(world); return NULL; }
    helix_comm_topo t;
    helix_comm_topo_init(&t, P, r, node_map);
    float *scratch = malloc((size_t)helix_comm_reduce_scratch_bytes(N, P, HELIX_F32));
    int phase = 0;
    /* all-reduce */
    memcpy(ar_out[r], in[r], sizeof in[r]);
    ctr[r].phase = (helix_phase)phase;
    if (helix_comm_allreduce_sum(c, ar_out[r], N, HELIX_F32, scratch)) errors[r] = 3;
    predicted[r][0] = helix_traffic_allreduce(&t, N, 4);
    /* reduce onto rank P-1 (the last node) */
    ctr[r].phase = (helix_phase)++phase;
    if (helix_comm_reduce_sum(c, in[r], red_out, N, HELIX_F32, P - 1, scratch)) errors[r] = 4;
    predicted[r][1] = helix_traffic_reduce(&t, N, P - 1, 4);
    /* all-gather: rank q contributes q+1 floats at displacement 16q */
    size_t cnt[MAXP], dsp[MAXP];
    for (int q = 0; q < P; q++) { cnt[q] = sizeof(float) * (size_t)(q + 1); dsp[q] = sizeof(float) * 16 * (size_t)q; }
    float mine[MAXP];
    for (int k = 0; k <= r; k++) mine[k] = (float)(100 * r + k);
    ctr[r].phase = (helix_phase)++phase;
    if (helix_comm_allgatherv(c, mine, cnt[r], ag_out[r], cnt, dsp)) errors[r] = 5;
    predicted[r][2] = helix_traffic_allgatherv(&t, (int64_t)cnt[r], cnt);
    /* broadcast 64 bytes from rank 1 */
    for (int k = 0; k < 16; k++) bc_out[r][k] = r == 1 ? 1000 + k : -1;
    ctr[r].phase = (helix_phase)++phase;
    if (helix_comm_bcast(c, bc_out[r], sizeof bc_out[r], 1)) errors[r] = 6;
    predicted[r][3] = helix_traffic_bcast(&t, sizeof bc_out[r], 1);
    /* reduce-scatter by rows */
    memcpy(rs_out[r], in[r], sizeof in[r]);
    float *rs_scratch = malloc((size_t)helix_comm_reduce_scatter_scratch_bytes(N / RS_UNIT, RS_UNIT, P, HELIX_F32));
    ctr[r].phase = (helix_phase)++phase;
    if (!rs_scratch || helix_comm_reduce_scatter_sum(c, rs_out[r], N / RS_UNIT, RS_UNIT, HELIX_F32, rs_scratch)) errors[r] = 7;
    predicted[r][4] = helix_traffic_reduce_scatter(&t, N / RS_UNIT, RS_UNIT, 4);
    free(rs_scratch);
    for (int k = 0; k < 5; k++) booked[r][k] = ctr[r].bytes[k];
    helix_comm_topo_free(&t);
    free(scratch);
    helix_comm_free(c);
    helix_inproc_rank_done(world);
    return NULL;
}

static void run(int k_nodes, int g_per, const int *map, int p)
{
    K = k_nodes; G = g_per; P = p; node_map = map;
    memset(ctr, 0, sizeof ctr);
    memset(errors, 0, sizeof errors);
    memset(ag_out, 0, sizeof ag_out);
    for (int r = 0; r < P; r++) for (int k = 0; k < N; k++) in[r][k] = val(r, k);
    helix_inproc_world_new(P, 2, &world);
    pthread_t th[MAXP];
    for (int r = 0; r < P; r++) pthread_create(&th[r], NULL, rank_main, (void *)(intptr_t)r);
    for (int r = 0; r < P; r++) pthread_join(th[r], NULL);
    helix_inproc_world_free(world);
}

/* the documented order: per node, f32 partials in local (rank) order, then
 * the nodes' partials in node order, each reduce-scatter chunk's sum
 * starting from 0 */
static float hier_sum(int k)
{
    float tot = 0;
    for (int n = 0; n < K; n++) {
        float part = 0;
        for (int l = 0; l < G; l++) part += in[n * G + l][k];
        tot += part;
    }
    return tot;
}

int main(void)
{
    static const int shapes[][2] = {{2, 2}, {2, 4}, {3, 2}, {2, 6}, {3, 4}, {4, 3}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int k_nodes = shapes[s][0], g_per = shapes[s][1], p = k_nodes * g_per;
        int map[MAXP];
        for (int q = 0; q < p; q++) map[q] = 10 + q / g_per;   /* any ids: consecutive blocks */
        run(k_nodes, g_per, map, p);
        for (int r = 0; r < P; r++) CHECK(errors[r] == 0, "K=%d G=%d rank %d: error %d", K, G, r, errors[r]);
        for (int r = 0; r < P; r++)
            for (int op = 0; op < 5; op++)
                CHECK(helix_traffic_eq(&booked[r][op], &predicted[r][op]),
                      "K=%d G=%d rank %d op %d: booked %lld/%lld (inter %lld/%lld), predicted %lld/%lld (inter %lld/%lld)",
                      K, G, r, op, (long long)booked[r][op].sent_bytes, (long long)booked[r][op].recv_bytes,
                      (long long)booked[r][op].inter_sent_bytes, (long long)booked[r][op].inter_recv_bytes,
                      (long long)predicted[r][op].sent_bytes, (long long)predicted[r][op].recv_bytes,
                      (long long)predicted[r][op].inter_sent_bytes, (long long)predicted[r][op].inter_recv_bytes);
        /* closed forms, elements of 4 bytes */
        const int64_t chunk = N / G;
        for (int r = 0; r < P; r++) {
            const helix_traffic *a = &booked[r][0];
            CHECK(a->inter_sent_bytes == 4 * 2 * (K - 1) * chunk / K && a->inter_recv_bytes == a->inter_sent_bytes,
                  "K=%d G=%d rank %d all-reduce: %lld bytes between nodes, want 2(K-1)/K N/G = %lld", K, G, r,
                  (long long)a->inter_sent_bytes, (long long)(4 * 2 * (K - 1) * chunk / K));
            CHECK(a->sent_bytes - a->inter_sent_bytes == 4 * 2 * (N - chunk),
                  "K=%d G=%d rank %d all-reduce: %lld bytes inside the node, want 2(N - N/G) = %lld", K, G, r,
                  (long long)(a->sent_bytes - a->inter_sent_bytes), (long long)(4 * 2 * (N - chunk)));
            /* reduce: the cross reduce-scatter plus, off the root's node, the gather of the sub-chunk */
            const helix_traffic *d = &booked[r][1];
            const int root_node = (P - 1) / G, mine_node = r / G;
            const int64_t want_d = 4 * ((K - 1) * chunk / K + (mine_node != root_node ? chunk / K : 0));
            CHECK(d->inter_sent_bytes == want_d, "K=%d G=%d rank %d reduce: %lld bytes between nodes, want %lld", K, G, r,
                  (long long)d->inter_sent_bytes, (long long)want_d);
            /* all-gather: my chunk once to each other node */
            const helix_traffic *g = &booked[r][2];
            CHECK(g->inter_sent_bytes == 4 * (int64_t)(r + 1) * (K - 1),
                  "K=%d G=%d rank %d all-gather: %lld bytes between nodes, want (K-1) x chunk = %lld", K, G, r,
                  (long long)g->inter_sent_bytes, (long long)(4 * (r + 1) * (K - 1)));
            /* reduce-scatter: my local index's chunk of every other node block to its owner (K-1 chunks of
             * N/P), and inside the node the G-1 other chunks of each of the K blocks */
            const helix_traffic *q = &booked[r][4];
            CHECK(q->inter_sent_bytes == 4 * (K - 1) * (N / P) && q->sent_bytes - q->inter_sent_bytes == 4 * K * (G - 1) * (N / P),
                  "K=%d G=%d rank %d reduce-scatter: %lld between nodes (want (K-1) N/P = %d), %lld inside (want K(G-1) N/P = %d)",
                  K, G, r, (long long)q->inter_sent_bytes, 4 * (K - 1) * (N / P),
                  (long long)(q->sent_bytes - q->inter_sent_bytes), 4 * K * (G - 1) * (N / P));
            /* broadcast: the root sends once to each other node */
            const helix_traffic *b = &booked[r][3];
            CHECK(b->inter_sent_bytes == (r == 1 ? 64 * (K - 1) : 0), "K=%d G=%d rank %d bcast: %lld bytes between nodes",
                  K, G, r, (long long)b->inter_sent_bytes);
        }
        /* values */
        int bad_ar = 0, bad_red = 0, bad_ag = 0, bad_bc = 0, same = 1;
        for (int k = 0; k < N; k++) {
            const float want = hier_sum(k);
            double ref = 0;
            for (int r = 0; r < P; r++) ref += in[r][k];
            for (int r = 0; r < P; r++) bad_ar += memcmp(&ar_out[r][k], &want, sizeof want) != 0;
            bad_red += memcmp(&red_out[k], &want, sizeof want) != 0;
            bad_ar += (double)want - ref > 1e-4 || ref - (double)want > 1e-4;
            float flat = 0;
            for (int r = 0; r < P; r++) flat += in[r][k];
            same &= flat == want;
        }
        for (int r = 0; r < P; r++) {
            for (int q = 0; q < P; q++)
                for (int k = 0; k <= q; k++) bad_ag += ag_out[r][16 * q + k] != (float)(100 * q + k);
            for (int k = 0; k < 16; k++) bad_bc += bc_out[r][k] != 1000 + k;
        }
        int bad_rs = 0;
        for (int r = 0; r < P; r++) {
            const int64_t per = N / P;                       /* rows split evenly: rank r's elements r*per.. */
            for (int64_t k = r * per; k < (r + 1) * per; k++) {
                const float want = hier_sum((int)k);
                bad_rs += memcmp(&rs_out[r][k], &want, sizeof want) != 0;
            }
        }
        CHECK(!bad_rs, "K=%d G=%d: %d reduce-scatter values off the documented order", K, G, bad_rs);
        CHECK(!bad_ar, "K=%d G=%d: %d all-reduce values off the documented order", K, G, bad_ar);
        CHECK(!bad_red, "K=%d G=%d: %d reduce values off the documented order", K, G, bad_red);
        CHECK(!bad_ag && !bad_bc, "K=%d G=%d: all-gather %d, bcast %d wrong values", K, G, bad_ag, bad_bc);
        if (K * G >= 6) CHECK(!same, "K=%d G=%d: the hierarchical sum should differ from the flat order somewhere", K, G);
    }
    /* nodes of 3, 3 and 2 ranks: not uniform, so flat, and still booked right */
    {
        int map[8] = {0, 0, 0, 1, 1, 1, 2, 2};
        run(3, 0, map, 8);
        for (int r = 0; r < 8; r++) {
            CHECK(errors[r] == 0, "uneven: rank %d error %d", r, errors[r]);
            for (int op = 0; op < 5; op++) CHECK(helix_traffic_eq(&booked[r][op], &predicted[r][op]), "uneven: rank %d op %d", r, op);
            /* flat all-reduce: my chunk (N/8) to each of the off-node peers, every other chunk to its owner */
            int64_t off = 0;
            for (int q = 0; q < 8; q++) off += map[q] != map[r];
            CHECK(booked[r][0].inter_sent_bytes == 4 * 2 * off * (N / 8), "uneven: rank %d all-reduce %lld bytes between nodes",
                  r, (long long)booked[r][0].inter_sent_bytes);
        }
        for (int k = 0; k < N; k++) {
            float flat = 0;
            for (int r = 0; r < 8; r++) flat += in[r][k];
            if (memcmp(&flat, &ar_out[0][k], sizeof flat)) { CHECK(0, "uneven: flat order broken at %d", k); break; }
        }
    }
    return test_summary();
}
