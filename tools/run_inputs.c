/* run_inputs.c — real data for `helix run`, in two steps so that refusals
 * come from headers and sizes before anything large is read:
 *   resolve: open the weights file's header, take D, d, biases, W_O and
 *            dtype from it (the head count from --heads or its metadata);
 *            take B and L from the input file's header; any contradiction
 *            with an option is an error naming both. Under MPI every rank
 *            checks that it opened the same weights file as rank 0.
 *   load:    (after the caller's memory check) the key padding lengths,
 *            the input's data, and the NaN/Inf scans, in the run's storage
 *            type, unless asked not to.
 * Every rank opens the weights (each reads only its own shards later);
 * rank 0 alone reads the input and broadcasts its shape. */
#include "run_inputs.h"
#include "model_inputs.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int resolve_weights(run_opts *o, run_files *f)
{
    helix_err err = {{0}};
    helix_config *c = &o->cfg;
    if (helix_st_open(o->weights, &f->st, &err)) {
        fprintf(stderr, "helix: %s\n", err.msg);
        return EXIT_USAGE;
    }
    f->have_st = 1;                              /* closed by run_files_close, whatever follows */
    if (helix_st_attn_find(&f->st, o->prefix, &f->attn, &err)) {
        fprintf(stderr, "helix: %s\n", err.msg);
        return EXIT_USAGE;
    }
    char v[64], given[32];
    snprintf(given, sizeof given, "%lld", (long long)c->heads);
    if (model_meta_settle(&f->st, "num_heads", "--heads", "H", o->given_heads, given, v, sizeof v) ||
        cli_int("__metadata__ num_heads", v, 1, (int64_t)1 << 40, &c->heads))
        return EXIT_USAGE;
    const int64_t D = f->attn.D;
    const helix_st_tensor *q = f->attn.q.t;
    if (o->given_head_dim) {
        int64_t hd = 0;
        if (__builtin_mul_overflow(c->heads, c->head_dim, &hd)) {
            fprintf(stderr, "helix: --heads %lld x --head-dim %lld is too large\n", (long long)c->heads, (long long)c->head_dim);
            return EXIT_USAGE;
        }
        if (hd != D) {
            fprintf(stderr, "helix: --heads %lld x --head-dim %lld = %lld, but %s has D=%lld (tensor '%s')\n",
                    (long long)c->heads, (long long)c->head_dim, (long long)hd, o->weights, (long long)D, q->name);
            return EXIT_USAGE;
        }
    } else {
        if (D % c->heads) {
            fprintf(stderr, "helix: %s has D=%lld (tensor '%s'), not divisible by --heads %lld\n", o->weights,
                    (long long)D, q->name, (long long)c->heads);
            return EXIT_USAGE;
        }
        c->head_dim = D / c->heads;
    }
    /* one bias flag covers Q, K, V and O; a missing one loads as zeros */
    int has_bias = f->attn.bq.t != NULL || (f->attn.bo.t != NULL && !o->given_no_out);
    if (o->given_bias && !has_bias) {
        fprintf(stderr, "helix: --bias, but %s has no biases under prefix '%s'\n", o->weights, o->prefix);
        return EXIT_USAGE;
    }
    c->bias = has_bias;
    if (!f->attn.o.t) c->out_proj = 0;           /* nothing to apply */
    if (!o->given_dtype) c->dtype = q->dtype;
    return EXIT_OK;
}

/* the shape of x against D (and B, L when asked) */
static int check_x_shape(const char *path, const helix_array *a, int64_t D, const char *d_from, int64_t want_B,
                         int64_t want_L)
{
    if (a->ndim != 3 || a->shape[2] != D) {
        char got[160] = "", *p = got;
        for (int k = 0; k < a->ndim; k++) p += snprintf(p, (size_t)(got + sizeof got - p), "%s%lld", k ? ", " : "", (long long)a->shape[k]);
        fprintf(stderr, "helix: %s has shape [%s], but the model needs [B, L, D=%lld] (D %s)\n", path, got, (long long)D, d_from);
        return EXIT_USAGE;
    }
    if (want_B && want_B != a->shape[0]) {
        fprintf(stderr, "helix: --batch %lld, but %s has B=%lld\n", (long long)want_B, path, (long long)a->shape[0]);
        return EXIT_USAGE;
    }
    if (want_L && want_L != a->shape[1]) {
        fprintf(stderr, "helix: --seq %lld, but %s has L=%lld\n", (long long)want_L, path, (long long)a->shape[1]);
        return EXIT_USAGE;
    }
    if (a->shape[0] < 1 || a->shape[1] < 1) {
        fprintf(stderr, "helix: %s is empty (B=%lld, L=%lld)\n", path, (long long)a->shape[0], (long long)a->shape[1]);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

int run_read_x_header(const char *path, int64_t D, const char *d_from, int64_t want_B, int64_t want_L, helix_array *x)
{
    helix_err err = {{0}};
    helix_status st = helix_npy_read_header(path, x, &err);
    if (st) {
        fprintf(stderr, "helix: %s\n", err.msg);
        return EXIT_USAGE;
    }
    return check_x_shape(path, x, D, d_from, want_B, want_L);
}

int run_read_x_data(const char *path, helix_dtype as, int allow_nonfinite, helix_array *x)
{
    helix_err err = {{0}};
    const helix_array hdr = *x;
    if (helix_npy_read(path, x, &err)) {
        fprintf(stderr, "helix: %s\n", err.msg);
        return EXIT_USAGE;
    }
    if (x->ndim != hdr.ndim || memcmp(x->shape, hdr.shape, sizeof(int64_t) * (size_t)hdr.ndim) || x->dtype != hdr.dtype) {
        fprintf(stderr, "helix: %s changed while it was read\n", path);
        helix_array_free(x);
        return EXIT_USAGE;
    }
    if (allow_nonfinite) return EXIT_OK;
    const int64_t L = x->shape[1], D = x->shape[2];
    enum { PIECE = 1 << 16 };
    float buf[PIECE];
    for (int64_t k0 = 0; k0 < x->n_elems; k0 += PIECE) {
        const int64_t n = x->n_elems - k0 < PIECE ? x->n_elems - k0 : PIECE;
        helix_to_f32(x->dtype, (const char *)x->data + (size_t)k0 * helix_dtype_size(x->dtype), buf, n);
        const int64_t b = helix_first_nonfinite_as(as, buf, n);
        if (b < 0) continue;
        const int64_t bad = k0 + b;
        const float v = buf[b];
        if (v - v == 0)
            fprintf(stderr, "helix: %s: value %g at [%lld, %lld, %lld] overflows %s (the run's storage type) to Inf; "
                            "refusing (--allow-nonfinite to run anyway)\n", path, v, (long long)(bad / (L * D)),
                    (long long)(bad / D % L), (long long)(bad % D), helix_dtype_name(as));
        else
            fprintf(stderr, "helix: %s: non-finite value (%g) at [%lld, %lld, %lld]; refusing (--allow-nonfinite to run anyway)\n",
                    path, v, (long long)(bad / (L * D)), (long long)(bad / D % L), (long long)(bad % D));
        helix_array_free(x);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static int read_input_header(run_opts *o, run_files *f, int64_t D)
{
    char from[1100];
    if (o->weights) snprintf(from, sizeof from, "from %s", o->weights);
    else snprintf(from, sizeof from, "= --heads x --head-dim");
    return run_read_x_header(o->input, D, from, o->given_batch ? o->cfg.batch : 0, o->given_seq ? o->cfg.seq : 0,
                             &f->x_in);
}

static int check_weights_finite(const run_opts *o, run_files *f)
{
    const helix_st_view *views[8] = {&f->attn.q, &f->attn.k, &f->attn.v, &f->attn.o,
                                     &f->attn.bq, &f->attn.bk, &f->attn.bv, &f->attn.bo};
    for (int k = 0; k < 8; k++) {
        const helix_st_tensor *t = views[k]->t;
        int dup = 0;
        for (int j = 0; j < k; j++) dup |= views[j]->t == t;
        if (!t || dup) continue;
        int64_t first;
        helix_err err = {{0}};
        if (helix_st_first_nonfinite(&f->st, t, o->cfg.dtype, &first, &err)) {
            fprintf(stderr, "helix: %s\n", err.msg);
            return EXIT_USAGE;
        }
        if (first >= 0) {
            char at[64];
            if (t->ndim == 2) snprintf(at, sizeof at, "[%lld, %lld]", (long long)(first / t->shape[1]), (long long)(first % t->shape[1]));
            else snprintf(at, sizeof at, "[%lld]", (long long)first);
            float v = 0;
            helix_st_read_f32(&f->st, NULL, t, first, 1, &v, &err);
            if (v - v == 0)
                fprintf(stderr, "helix: %s: tensor '%s' value %g at %s overflows %s (the run's storage type) to Inf; "
                                "refusing (--allow-nonfinite to run anyway)\n", o->weights, t->name, v, at,
                        helix_dtype_name(o->cfg.dtype));
            else
                fprintf(stderr, "helix: %s: tensor '%s' has a non-finite value at %s; refusing "
                                "(--allow-nonfinite to run anyway)\n", o->weights, t->name, at);
            return EXIT_USAGE;
        }
    }
    return EXIT_OK;
}

/* --kv-len "N[,N...]": one length for every batch row, or exactly B. Every
 * rank parses the same string, so all reach the same verdict. The entries
 * (as many as the string holds) are parsed here; the [B] array is made in
 * run_files_load, after the memory check has vetted B. */
static int parse_kv_len(run_opts *o, run_files *f)
{
    const int64_t B = o->cfg.batch;
    int64_t n = 1;
    for (const char *c = o->kv_len; *c; c++) n += *c == ',';
    f->kv_given = malloc(sizeof(int64_t) * (size_t)n);
    if (!f->kv_given) {
        fprintf(stderr, "helix: out of memory for %lld key padding lengths\n", (long long)n);
        return EXIT_RUNTIME;
    }
    f->n_kv_given = n;
    const char *p = o->kv_len;
    char item[32];
    for (int64_t k = 0; k < n; k++) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len == 0 || len >= sizeof item) {
            fprintf(stderr, "helix: --kv-len must be a comma-separated list of lengths, got '%s'\n", o->kv_len);
            return EXIT_USAGE;
        }
        memcpy(item, p, len);
        item[len] = 0;
        if (cli_int("--kv-len", item, 1, (int64_t)1 << 40, &f->kv_given[k])) return EXIT_USAGE;
        p = c ? c + 1 : p + len;
    }
    if (n != 1 && n != B) {
        fprintf(stderr, "helix: --kv-len gives %lld lengths but the batch has B=%lld rows: give one length for "
                        "every row, or one per row\n", (long long)n, (long long)B);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

int run_files_resolve(run_opts *o, run_files *f, int root, helix_comm_t *world)
{
    memset(f, 0, sizeof *f);
    int rc = EXIT_OK;
    if (o->weights) rc = resolve_weights(o, f);
    if (o->given_no_out) o->cfg.out_proj = 0;
    if (world && o->weights) {
        /* every rank opened its own copy of the path: it must be the same file */
        rc = cli_agree(world, rc, root, "read the weights (is the file on every node?)");
        if (rc != EXIT_OK) return rc;
        if ((rc = cli_mpi_same_file(world, &f->st, root)) != EXIT_OK) return rc;
    }
    int64_t D = 0;
    if (rc == EXIT_OK && __builtin_mul_overflow(o->cfg.heads, o->cfg.head_dim, &D)) {
        fprintf(stderr, "helix: --heads %lld x --head-dim %lld is too large\n", (long long)o->cfg.heads,
                (long long)o->cfg.head_dim);
        rc = EXIT_USAGE;
    }
    int64_t verdict[3] = {rc, o->cfg.batch, o->cfg.seq};
    if (root && rc == EXIT_OK) {
        if (o->input) rc = read_input_header(o, f, D);
        verdict[0] = rc;
        if (rc == EXIT_OK && o->input) { verdict[1] = f->x_in.shape[0]; verdict[2] = f->x_in.shape[1]; }
    }
    if (world) {
        /* rank 0's verdict and the input's shape go to everyone; a rank
         * that could not open the weights makes everyone stop too */
        int any = 0;
        if (helix_comm_any(world, rc != EXIT_OK, &any) || helix_comm_bcast(world, verdict, sizeof verdict, 0))
            return EXIT_RUNTIME;
        if (any && verdict[0] == EXIT_OK) {
            if (root) fprintf(stderr, "helix: another rank could not read %s (is it on every node?)\n", o->weights);
            return EXIT_USAGE;
        }
    }
    if (verdict[0] != EXIT_OK) return (int)verdict[0];
    o->cfg.batch = verdict[1];
    o->cfg.seq = verdict[2];
    return o->kv_len ? parse_kv_len(o, f) : EXIT_OK;
}

int run_files_load(run_opts *o, run_files *f, int root, helix_comm_t *world)
{
    int rc = EXIT_OK;
    if (f->n_kv_given) {
        const int64_t B = o->cfg.batch;
        f->kv_len = malloc(sizeof(int64_t) * (size_t)B);
        if (!f->kv_len) {
            fprintf(stderr, "helix: out of memory for %lld key padding lengths\n", (long long)B);
            rc = EXIT_RUNTIME;
        } else {
            for (int64_t b = 0; b < B; b++) f->kv_len[b] = f->kv_given[f->n_kv_given == 1 ? 0 : b];
            o->cfg.kv_len = f->kv_len;
        }
    }
    if (root && rc == EXIT_OK && o->input) {
        rc = run_read_x_data(o->input, o->cfg.dtype, o->allow_nonfinite, &f->x_in);
        f->have_x = rc == EXIT_OK;
    }
    if (root && rc == EXIT_OK && o->weights && !o->allow_nonfinite) rc = check_weights_finite(o, f);
    return cli_agree(world, rc, root, "load its inputs");
}

void run_files_close(run_files *f)
{
    if (f->have_st) helix_st_close(&f->st);
    if (f->have_x) helix_array_free(&f->x_in);
    free(f->kv_len);
    free(f->kv_given);
    memset(f, 0, sizeof *f);
}
