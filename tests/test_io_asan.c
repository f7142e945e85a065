/* test_io_asan.c — built with AddressSanitizer + UBSan: every file given
 * goes through the .npy or safetensors parser, the attention-weight finder
 * and a full read of each tensor. Malformed files must be refused cleanly;
 * any out-of-bounds access or undefined behaviour aborts the run. */
#include "helix_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    int ok = 0, refused = 0;
    for (int k = 1; k < argc; k++) {
        const char *p = argv[k];
        size_t n = strlen(p);
        helix_err err = {{0}};
        if (n > 4 && !strcmp(p + n - 4, ".npy")) {
            helix_array a;
            if (helix_npy_read(p, &a, &err) == HELIX_OK) {
                (void)helix_first_nonfinite(a.dtype, a.data, a.n_elems);
                helix_array_free(&a);
                ok++;
            } else refused++;
        } else if (n > 12 && !strcmp(p + n - 12, ".safetensors")) {
            helix_st_file f;
            if (helix_st_open(p, &f, &err) != HELIX_OK) { refused++; continue; }
            for (int64_t t = 0; t < f.n_tensors; t++) {
                float *buf = malloc(sizeof(float) * (size_t)(f.tensors[t].n_elems + 1));
                if (buf && helix_st_read_f32(&f, NULL, &f.tensors[t], 0, f.tensors[t].n_elems, buf, &err)) refused++;
                free(buf);
            }
            helix_st_attn a;
            (void)helix_st_attn_find(&f, "", &a, &err);
            helix_st_model m;   /* a whole model, when the file holds one */
            if (helix_st_model_find(&f, NULL, &m, &err) == HELIX_OK) {
                helix_model_weights w;
                if (helix_st_model_load(&m, m.layers, 0, HELIX_F32, &w, &err) == HELIX_OK) helix_model_weights_free(&w);
                helix_st_model_close(&m);
            }
            helix_st_close(&f);
            ok++;
        }
    }
    printf("parsers under ASan/UBSan: %d files accepted, %d refused, no sanitizer report\n", ok, refused);
    return 0;
}
