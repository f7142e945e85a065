/* helix_io.h — strict readers and writers for tensors on disk. */
#ifndef HELIX_IO_H
#define HELIX_IO_H

#include "helix.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HELIX_MAX_NDIM 8

typedef struct {
    helix_dtype dtype;
    int ndim;
    int64_t shape[HELIX_MAX_NDIM];
    int64_t n_elems;
    void *data;        /* n_elems * helix_dtype_size(dtype) bytes, owned */
} helix_array;

void helix_array_free(helix_array *a);

/* .npy (NumPy format versions 1-3): little-endian '<f4' or '<f2', C order.
 * Anything else, a malformed header, a size that does not match the shape,
 * truncated data or trailing bytes is refused with a message naming the
 * file and the problem (HELIX_ERR_FORMAT; HELIX_ERR_IO if unreadable). */
helix_status helix_npy_read(const char *path, helix_array *out, helix_err *err);
/* Parse from memory (what the fuzz harness calls). Copies the data out. */
helix_status helix_npy_parse(const unsigned char *buf, size_t n_bytes, const char *name,
                             helix_array *out, helix_err *err);
/* Write f32 or f16 data (bf16 has no NumPy type: refused). */
helix_status helix_npy_write(const char *path, helix_dtype t, int ndim, const int64_t *shape,
                             const void *data, helix_err *err);

#ifdef __cplusplus
}
#endif
#endif
