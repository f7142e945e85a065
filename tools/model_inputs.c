/* model_inputs.c — the model and input of `helix bench layouts`: weights
 * from one safetensors file (every rank reads the file; D, F, layers and
 * biases come from it) or random from the seed; X from .npy on rank 0 (B and
 * L from it) or random. Sizes are settled and checked against memory before
 * anything large is allocated; under MPI every rank reaches the same
 * verdict, so a bad file never leaves ranks waiting on each other. */
#include "model_inputs.h"
#include "cli.h"
#include "helix_io.h"
#include "run.h"
#include "run_inputs.h"

#include <stdlib.h>
#include <string.h>

/* What the computation depends on and a state_dict does not record (head
 * count, norm placement, activation): the option, else the file's
 * __metadata__, else refuse; both given and different: refuse. */
int model_meta_settle(const helix_st_file *f, const char *key, const char *opt, const char *values, int given,
                      const char *given_text, char *out, size_t n)
{
    const char *meta = helix_st_meta(f, key);
    if (given && meta && strcmp(meta, given_text)) {
        fprintf(stderr, "helix: %s %s, but %s records %s = \"%s\" in its __metadata__\n", opt, given_text, f->path, key,
                meta);
        return EXIT_USAGE;
    }
    if (!given && !meta) {
        fprintf(stderr, "helix: %s does not record %s (no __metadata__ \"%s\"), and helix does not guess it: give %s %s\n",
                f->path, !strcmp(key, "num_heads") ? "its head count" : !strcmp(key, "norm") ? "its LayerNorm placement"
                                                                              : "its MLP activation",
                key, opt, values);
        return EXIT_USAGE;
    }
    snprintf(out, n, "%s", given ? given_text : meta);
    return EXIT_OK;
}

/* mc's heads, norm, activation from the options or the file's metadata */
static int settle_meta(const model_inputs_opts *o, const helix_st_file *f, helix_model_config *mc)
{
    char v[64], given[32];
    snprintf(given, sizeof given, "%lld", (long long)mc->heads);
    if (model_meta_settle(f, "num_heads", "--heads", "H", o->given_heads, given, v, sizeof v)) return EXIT_USAGE;
    if (cli_int("__metadata__ num_heads", v, 1, 1 << 16, &mc->heads)) return EXIT_USAGE;
    if (model_meta_settle(f, "norm", "--norm", "pre|post", o->given_norm, helix_norm_name(mc->norm), v, sizeof v))
        return EXIT_USAGE;
    if (helix_norm_parse(v, &mc->norm)) {
        fprintf(stderr, "helix: %s: __metadata__ norm = \"%s\": expected pre or post\n", f->path, v);
        return EXIT_USAGE;
    }
    if (model_meta_settle(f, "activation", "--activation", "gelu|gelu-tanh|relu", o->given_act, helix_act_name(mc->act), v,
                          sizeof v))
        return EXIT_USAGE;
    if (helix_act_parse(v, &mc->act)) {
        fprintf(stderr, "helix: %s: __metadata__ activation = \"%s\": expected gelu, gelu-tanh or relu\n", f->path, v);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* mc's D, F, layers, bias, dtype from the file's model; checks the options given */
static int settle_from_file(const model_inputs_opts *o, const helix_st_model *m, helix_model_config *mc)
{
    if (settle_meta(o, m->file, mc)) return EXIT_USAGE;
    if (m->D % mc->heads) {
        fprintf(stderr, "helix: %s has D=%lld, which --heads %lld does not divide\n", o->weights, (long long)m->D,
                (long long)mc->heads);
        return EXIT_USAGE;
    }
    const int64_t d = m->D / mc->heads;
    if (o->given_head_dim && mc->head_dim != d) {
        fprintf(stderr, "helix: --head-dim %lld, but %s has D=%lld = %lld heads x %lld\n", (long long)mc->head_dim,
                o->weights, (long long)m->D, (long long)mc->heads, (long long)d);
        return EXIT_USAGE;
    }
    if (o->given_ffn && mc->ffn != m->F) {
        fprintf(stderr, "helix: --ffn %lld, but %s has F=%lld\n", (long long)mc->ffn, o->weights, (long long)m->F);
        return EXIT_USAGE;
    }
    if (o->given_layers && mc->layers > m->layers) {
        fprintf(stderr, "helix: --layers %lld, but %s has %lld layers\n", (long long)mc->layers, o->weights,
                (long long)m->layers);
        return EXIT_USAGE;
    }
    if (o->given_bias && !m->bias) {
        fprintf(stderr, "helix: --bias, but %s has no biases in its linear layers\n", o->weights);
        return EXIT_USAGE;
    }
    mc->head_dim = d;
    mc->ffn = m->F;
    if (!o->given_layers) mc->layers = m->layers;
    mc->bias = m->bias;
    if (!o->given_dtype) mc->dtype = m->layer[0].attn.q.t->dtype;
    return EXIT_OK;
}

static int memory_check(const helix_model_config *mc, int root, int full, helix_comm_t *world)
{
    int64_t D = 0, xb = 0;
    const int over = __builtin_mul_overflow(mc->heads, mc->head_dim, &D) || __builtin_mul_overflow(D, mc->batch, &xb) ||
                     __builtin_mul_overflow(xb, mc->seq, &xb) || __builtin_mul_overflow(xb, (int64_t)4, &xb);
    const int64_t wb = over ? -1 : full ? helix_model_weights_bytes(D, mc->ffn, mc->layers, mc->bias) : 0;
    if (!root) xb = 0;            /* x: f32 [B, L, D] on rank 0; the full weights too, for --check */
    char why[256] = "", b1[32];
    int fits = wb >= 0;
    if (!fits) snprintf(why, sizeof why, "the sizes overflow");
    else fits = world ? cli_mpi_fits(world, wb + xb, why, sizeof why) : cli_host_fits(wb + xb, why, sizeof why);
    if (fits) return EXIT_OK;
    if (root)
        fprintf(stderr, "helix: the model's f32 weights for the --check reference (%s on rank 0) and input do not fit: %s\n",
                run_human_bytes(wb < 0 ? 0 : wb, b1), why);
    return EXIT_USAGE;
}

void model_weights_close(model_weights *w)
{
    helix_model_weights_free(&w->full);
    if (w->have_m) helix_st_model_close(&w->m);
    if (w->have_f) helix_st_close(&w->f);
    memset(w, 0, sizeof *w);
}

int model_inputs_load(const model_inputs_opts *o, helix_model_config *mc, int root, helix_comm_t *world,
                      model_weights *w, float **x)
{
    memset(w, 0, sizeof *w);
    *x = NULL;
    helix_err err = {{0}};
    helix_st_file *f = &w->f;
    helix_st_model *m = &w->m;
    int rc = EXIT_OK;
    const int full = root && o->check;
    if (o->weights) {
        if (helix_st_open(o->weights, f, &err)) {
            if (root) fprintf(stderr, "helix: %s\n", err.msg);
            rc = EXIT_USAGE;
        } else {
            w->have_f = 1;
            if (helix_st_model_find(f, o->prefix, m, &err)) {
                if (root) fprintf(stderr, "helix: %s\n", err.msg);
                rc = EXIT_USAGE;
            } else {
                w->have_m = 1;
                rc = settle_from_file(o, m, mc);
            }
        }
        rc = cli_agree(world, rc, root, "read the weights (is the file on every node?)");
    }
    /* every rank opened its own copy of the path: it must be the same file */
    if (rc == EXIT_OK && world && w->have_f) rc = cli_mpi_same_file(world, f, root);
    /* the input: rank 0 reads its header, everyone learns B and L; its data
     * are read after the memory check */
    helix_array xa;
    memset(&xa, 0, sizeof xa);
    int have_x = 0;
    int64_t D = 0;
    if (rc == EXIT_OK && __builtin_mul_overflow(mc->heads, mc->head_dim, &D)) {
        if (root) fprintf(stderr, "helix: --heads %lld x --head-dim %lld is too large\n", (long long)mc->heads,
                          (long long)mc->head_dim);
        rc = EXIT_USAGE;
    }
    if (rc == EXIT_OK && o->input) {
        int64_t verdict[3] = {EXIT_OK, mc->batch, mc->seq};
        if (root) {
            char from[1100];
            if (o->weights) snprintf(from, sizeof from, "from %s", o->weights);
            else snprintf(from, sizeof from, "= --heads x --head-dim");
            verdict[0] = run_read_x_header(o->input, D, from, o->given_batch ? mc->batch : 0, o->given_seq ? mc->seq : 0,
                                           &xa);
            if (verdict[0] == EXIT_OK) { verdict[1] = xa.shape[0]; verdict[2] = xa.shape[1]; }
        }
        if (world && helix_comm_bcast(world, verdict, sizeof verdict, 0)) verdict[0] = EXIT_RUNTIME;
        rc = (int)verdict[0];
        mc->batch = verdict[1];
        mc->seq = verdict[2];
    }
    if (rc == EXIT_OK) rc = memory_check(mc, root, full, world);
    if (rc == EXIT_OK && o->input) {
        if (root) {
            rc = run_read_x_data(o->input, mc->dtype, o->allow_nonfinite, &xa);
            have_x = rc == EXIT_OK;
        }
        rc = cli_agree(world, rc, root, "read the input");
    }
    if (rc == EXIT_OK) {
        /* the devices: their own shards, from the file or the generator */
        if (w->have_m) {
            w->run = (helix_model_weights){m->D, m->F, mc->layers, NULL, helix_st_model_shard_load, m};
        } else {
            helix_model_weights_seeded(mc, (uint64_t)o->seed, &w->seeded, &w->run);
        }
        /* rank 0: the values checked (a file), and the full model for --check */
        if (root && w->have_m) {
            if (full) fprintf(stderr, "  loading %lld layers from %s (%s, D=%lld, F=%lld%s) for the reference...\n",
                              (long long)mc->layers, o->weights, m->pattern, (long long)m->D, (long long)m->F,
                              m->bias ? ", biases" : "");
            helix_status st = full ? helix_st_model_load(m, mc->layers, o->allow_nonfinite, mc->dtype, &w->full, &err)
                              : o->allow_nonfinite ? HELIX_OK : helix_st_model_check(m, mc->layers, mc->dtype, &err);
            if (st) {
                fprintf(stderr, "helix: %s%s\n", err.msg,
                        strstr(err.msg, "non-finite") || strstr(err.msg, "overflows") ? "; refusing (--allow-nonfinite to run anyway)" : "");
                rc = EXIT_USAGE;
            }
        } else if (full && helix_model_weights_random(mc, (uint64_t)o->seed, &w->full, &err)) {
            fprintf(stderr, "helix: %s\n", err.msg);
            rc = EXIT_RUNTIME;
        }
        rc = cli_agree(world, rc, root, "load the weights");
    }
    if (rc == EXIT_OK && root) {
        const int64_t n = mc->batch * mc->seq * D;
        *x = malloc(sizeof(float) * (size_t)n);
        if (!*x) {
            fprintf(stderr, "helix: out of memory for the input\n");
            rc = EXIT_RUNTIME;
        } else if (have_x) {
            helix_to_f32(xa.dtype, xa.data, *x, n);
        } else {
            cli_rng g = {(uint64_t)o->seed * 7919 + 17};
            for (int64_t k = 0; k < n; k++) (*x)[k] = cli_uniform(&g, 1.0f);
        }
    }
    if (world) rc = cli_agree(world, rc, root, "allocate the input");
    if (have_x) helix_array_free(&xa);
    if (rc != EXIT_OK) {
        model_weights_close(w);
        free(*x);
        *x = NULL;
    }
    return rc;
}

int model_output_write(const char *path, const helix_model_config *mc, const float *y)
{
    const int64_t shape[3] = {mc->batch, mc->seq, mc->heads * mc->head_dim};
    helix_err err = {{0}};
    if (helix_npy_write(path, HELIX_F32, 3, shape, y, &err)) {
        fprintf(stderr, "helix: --output: %s\n", err.msg);
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}
