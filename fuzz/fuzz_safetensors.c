/* fuzz_safetensors.c — libFuzzer harness: any byte string as a whole
 * safetensors file; accepted files are read back tensor by tensor and
 * searched for attention weights and a whole model. */
#include "helix_io.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    helix_st_file f;
    helix_err err;
    if (helix_st_parse(data, size, "fuzz", &f, &err) != HELIX_OK) return 0;
    for (int64_t k = 0; k < f.n_tensors; k++) {
        const helix_st_tensor *t = &f.tensors[k];
        float *buf = malloc(sizeof(float) * (size_t)(t->n_elems + 1));
        if (buf) helix_st_read_f32(&f, data, t, 0, t->n_elems, buf, &err);
        free(buf);
    }
    helix_st_attn a;
    helix_st_attn_find(&f, "", &a, &err);
    helix_st_model m;
    if (helix_st_model_find(&f, NULL, &m, &err) == HELIX_OK) helix_st_model_close(&m);
    helix_st_close(&f);
    return 0;
}
