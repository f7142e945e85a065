/* fuzz_npy.c — libFuzzer harness: any byte string as a .npy file. */
#include "helix_io.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    helix_array a;
    helix_err err;
    if (helix_npy_parse(data, size, "fuzz", &a, &err) == HELIX_OK) {
        (void)helix_first_nonfinite(a.dtype, a.data, a.n_elems);
        helix_array_free(&a);
    }
    return 0;
}
