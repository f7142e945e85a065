/* cmd_inspect.c — `helix inspect FILE`: list a .safetensors or .npy file's
 * tensors and say which helix would use for what. */
#include "cli.h"
#include "helix_io.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *inspect_help =
    "usage: helix inspect FILE [--weights-prefix P] [--layer-prefix P]\n"
    "\n"
    "Validates FILE (.safetensors or .npy) and lists its tensors: name, dtype,\n"
    "shape, bytes, and the role helix gives each: attention weights for\n"
    "'helix run' (W_Q, W_K, W_V, W_O, biases, under --weights-prefix), or the\n"
    "layers of a whole model for 'helix bench layouts --weights' (under\n"
    "--layer-prefix, with {i} for the layer; found automatically if omitted).\n"
    "Exit status: 0 valid, 2 malformed, not a regular file, or unusable (no\n"
    "attention weights and no whole model found: the message lists the\n"
    "prefixes tried), 3 unreadable.\n";

static void shape_str(int ndim, const int64_t *shape, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < ndim && k < n; d++) k += (size_t)snprintf(buf + k, n - k, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

static const char *role(const helix_st_attn *a, const helix_st_tensor *t, char *buf, size_t n)
{
    const struct { const helix_st_view *v; const char *name; } r[] = {
        {&a->q, "W_Q"}, {&a->k, "W_K"}, {&a->v, "W_V"}, {&a->o, "W_O"},
        {&a->bq, "b_Q"}, {&a->bk, "b_K"}, {&a->bv, "b_V"}, {&a->bo, "b_O"},
    };
    size_t k = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof r / sizeof *r && k < n; i++)
        if (r[i].v->t == t) {
            if (t->ndim == 2 && t->shape[0] != a->D)
                k += (size_t)snprintf(buf + k, n - k, "%s%s = rows [%lld, %lld)^T", k ? ", " : "", r[i].name,
                                      (long long)r[i].v->row0, (long long)(r[i].v->row0 + a->D));
            else if (t->ndim == 1 && t->shape[0] != a->D)
                k += (size_t)snprintf(buf + k, n - k, "%s%s = [%lld, %lld)", k ? ", " : "", r[i].name,
                                      (long long)r[i].v->row0, (long long)(r[i].v->row0 + a->D));
            else
                k += (size_t)snprintf(buf + k, n - k, "%s%s%s", k ? ", " : "", r[i].name, t->ndim == 2 ? "^T" : "");
        }
    return buf[0] ? buf : "-";
}

/* The role of every tensor of a whole model ("L3 FC1^T"), indexed like
 * f->tensors, in one pass over the layers (roles[k][0] == 0: none). */
static void model_roles(const helix_st_file *f, const helix_st_model *m, char (*roles)[48])
{
    for (int64_t l = 0; l < m->layers; l++) {
        const helix_st_layer *L = &m->layer[l];
        const helix_st_attn *a = &L->attn;
        const struct { const helix_st_tensor *p; const char *name; } r[] = {
            {L->ln1_g, "LN1 gamma"}, {L->ln1_b, "LN1 beta"}, {L->ln2_g, "LN2 gamma"}, {L->ln2_b, "LN2 beta"},
            {L->w1, "FC1^T"}, {L->b1, "b_FC1"}, {L->w2, "FC2^T"}, {L->b2, "b_FC2"},
            {a->q.t, NULL}, {a->k.t, NULL}, {a->v.t, NULL}, {a->o.t, NULL},
            {a->bq.t, NULL}, {a->bk.t, NULL}, {a->bv.t, NULL}, {a->bo.t, NULL},
        };
        for (size_t i = 0; i < sizeof r / sizeof *r; i++) {
            if (!r[i].p) continue;
            char *dst = roles[r[i].p - f->tensors], ab[160];
            if (dst[0]) continue;    /* in_proj_weight holds W_Q, W_K and W_V: named once */
            snprintf(dst, 48, "L%lld %s", (long long)l, r[i].name ? r[i].name : role(a, r[i].p, ab, sizeof ab));
        }
    }
}

int cmd_inspect(int argc, char **argv)
{
    static const struct option opts[] = {
        {"weights-prefix", required_argument, 0, 'p'}, {"layer-prefix", required_argument, 0, 'l'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *prefix = "", *layer_prefix = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'p') prefix = optarg;
        else if (c == 'l') layer_prefix = optarg;
        else if (c == 'h') { fputs(inspect_help, stdout); return EXIT_OK; }
        else {
            fprintf(stderr, "helix inspect: bad option '%s' (try 'helix inspect --help')\n", argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "helix inspect: expected one FILE (try 'helix inspect --help')\n");
        return EXIT_USAGE;
    }
    const char *path = argv[optind];
    helix_err err = {{0}};
    char sh[160], rb[200];
    int fd;
    helix_status ost = helix_open_regular(path, &fd, NULL, &err);
    if (ost) { fprintf(stderr, "helix: %s\n", err.msg); return ost == HELIX_ERR_IO ? EXIT_RUNTIME : EXIT_USAGE; }
    unsigned char magic[6] = {0};
    ssize_t got = pread(fd, magic, 6, 0);
    close(fd);
    size_t plen = strlen(path);
    int is_npy = (got == 6 && !memcmp(magic, "\x93NUMPY", 6)) || (plen > 4 && !strcmp(path + plen - 4, ".npy"));
    if (is_npy) {
        helix_array a;
        helix_status st = helix_npy_read(path, &a, &err);
        if (st) { fprintf(stderr, "helix: %s\n", err.msg); return st == HELIX_ERR_IO ? EXIT_RUNTIME : EXIT_USAGE; }
        shape_str(a.ndim, a.shape, sh, sizeof sh);
        int64_t bad = helix_first_nonfinite(a.dtype, a.data, a.n_elems);
        printf("# %s: .npy\n# %-10s %-24s %14s  %s\n  %-10s %-24s %14lld  %s\n", path, "dtype", "shape", "bytes", "use",
               helix_dtype_name(a.dtype), sh, (long long)(a.n_elems * (int64_t)helix_dtype_size(a.dtype)),
               a.ndim == 3 ? "X [B, L, D] for --input" : "not an input (needs [B, L, D])");
        if (bad >= 0) printf("# warning: non-finite value at flat index %lld\n", (long long)bad);
        helix_array_free(&a);
        return EXIT_OK;
    }
    helix_st_file sf;
    helix_status st = helix_st_open(path, &sf, &err);
    if (st) { fprintf(stderr, "helix: %s\n", err.msg); return st == HELIX_ERR_IO ? EXIT_RUNTIME : EXIT_USAGE; }
    helix_st_attn a;
    helix_err aerr = {{0}};
    int have = helix_st_attn_find(&sf, prefix, &a, &aerr) == HELIX_OK;
    helix_st_model m;
    helix_err merr = {{0}};
    const int have_m = !have && helix_st_model_find(&sf, layer_prefix, &m, &merr) == HELIX_OK;
    char (*roles)[48] = have_m ? calloc((size_t)sf.n_tensors + 1, sizeof *roles) : NULL;
    if (have_m && !roles) {
        fprintf(stderr, "helix: out of memory\n");
        helix_st_model_close(&m);
        helix_st_close(&sf);
        return EXIT_RUNTIME;
    }
    if (roles) model_roles(&sf, &m, roles);
    printf("# %s: safetensors, %lld tensors, %llu bytes\n", path, (long long)sf.n_tensors,
           (unsigned long long)sf.file_bytes);
    static const char *const meta_keys[] = {"num_heads", "norm", "activation"};
    for (int k = 0; k < 3; k++) {
        const char *v = helix_st_meta(&sf, meta_keys[k]);
        if (v) printf("# __metadata__ %s = %s\n", meta_keys[k], v);
    }
    printf("# %-44s %-6s %-18s %14s  %s\n", "name", "dtype", "shape", "bytes", "helix uses it as");
    for (int64_t k = 0; k < sf.n_tensors; k++) {
        const helix_st_tensor *t = &sf.tensors[k];
        shape_str(t->ndim, t->shape, sh, sizeof sh);
        printf("  %-44s %-6s %-18s %14llu  %s\n", t->name, helix_dtype_name(t->dtype), sh,
               (unsigned long long)t->n_bytes, have ? role(&a, t, rb, sizeof rb) : roles && roles[k][0] ? roles[k] : "-");
    }
    free(roles);
    if (have)
        printf("# attention weights: %s, D=%lld, W_O %s, biases %s (^T: PyTorch [out, in] read transposed)\n",
               a.layout, (long long)a.D, a.o.t ? "yes" : "no", a.bq.t || a.bo.t ? "yes" : "no");
    else if (have_m)
        printf("# whole model (helix bench layouts --weights): %lld layers under '%s', D=%lld, F=%lld, biases %s;\n"
               "#   layer 0 attention: %s (L: layer; ^T: PyTorch [out, in] read transposed)\n",
               (long long)m.layers, m.pattern, (long long)m.D, (long long)m.F, m.bias ? "yes" : "no", m.layer[0].attn.layout);
    else
        fprintf(stderr, "helix: no attention weights found: %s\nhelix: no whole model found: %s\n", aerr.msg, merr.msg);
    if (have_m) helix_st_model_close(&m);
    helix_st_close(&sf);
    return have || have_m ? EXIT_OK : EXIT_USAGE;
}
