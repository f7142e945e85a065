/* file.c — the two ways helix touches a path: reading only regular files
 * (a FIFO, device or directory is refused before it is opened, so nothing
 * blocks in open()), and writing through a temporary file in the same
 * directory that is renamed over the target only after every write, the
 * flush, fsync and close succeeded — a failed write leaves the old file as
 * it was and no half-written one. A target that exists and is not a regular
 * file (/dev/null, /dev/stdout, a terminal) is written directly, every
 * write still checked. */
#include "helix_io.h"
#include "../core/err-impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind(mode_t m)
{
    return S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO" : S_ISCHR(m) ? "a character device"
         : S_ISBLK(m) ? "a block device" : S_ISSOCK(m) ? "a socket" : "not a regular file";
}

helix_status helix_open_regular(const char *path, int *fd, uint64_t *n_bytes, helix_err *err)
{
    struct stat sb;
    *fd = -1;
    if (stat(path, &sb)) return helix_errf(err, HELIX_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return helix_errf(err, HELIX_ERR_INVALID, "%s: %s, not a regular file: refused (nothing was read)", path,
                          kind(sb.st_mode));
    /* O_NONBLOCK: if the path was swapped for a FIFO since the stat, open still returns */
    int f = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (f < 0) return helix_errf(err, HELIX_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
    if (fstat(f, &sb) || !S_ISREG(sb.st_mode)) {
        close(f);
        return helix_errf(err, HELIX_ERR_INVALID, "%s: not a regular file: refused", path);
    }
    fcntl(f, F_SETFL, fcntl(f, F_GETFL) & ~O_NONBLOCK);
    *fd = f;
    if (n_bytes) *n_bytes = (uint64_t)sb.st_size;
    return HELIX_OK;
}

helix_status helix_wfile_open(helix_wfile *w, const char *path, helix_err *err)
{
    memset(w, 0, sizeof *w);
    if (strlen(path) + 16 > sizeof w->path) return helix_errf(err, HELIX_ERR_INVALID, "%s: path too long", path);
    snprintf(w->path, sizeof w->path, "%s", path);
    struct stat sb;
    if (!stat(path, &sb) && !S_ISREG(sb.st_mode)) {
        if (S_ISDIR(sb.st_mode)) return helix_errf(err, HELIX_ERR_IO, "%s: is a directory", path);
        w->f = fopen(path, "wb");
        w->direct = 1;
        if (!w->f) return helix_errf(err, HELIX_ERR_IO, "%s: cannot write (%s)", path, strerror(errno));
        return HELIX_OK;
    }
    snprintf(w->tmp, sizeof w->tmp, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(w->tmp);
    if (fd < 0) return helix_errf(err, HELIX_ERR_IO, "%s: cannot create a file beside it (%s)", path, strerror(errno));
    mode_t um = umask(0);
    umask(um);
    fchmod(fd, 0666 & ~um);               /* what fopen would have made, not mkstemp's 0600 */
    w->f = fdopen(fd, "wb");
    if (!w->f) {
        close(fd);
        unlink(w->tmp);
        return helix_errf(err, HELIX_ERR_NOMEM, "%s: out of memory", path);
    }
    return HELIX_OK;
}

helix_status helix_wfile_commit(helix_wfile *w, helix_err *err)
{
    if (!w->f) return helix_errf(err, HELIX_ERR_INVALID, "%s: not open", w->path);
    int bad = ferror(w->f) || fflush(w->f) != 0;
    int e = errno;
    if (!bad && !w->direct && fsync(fileno(w->f)) != 0) { bad = 1; e = errno; }
    if (fclose(w->f) != 0 && !bad) { bad = 1; e = errno; }
    w->f = NULL;
    if (!bad && !w->direct && rename(w->tmp, w->path) != 0) { bad = 1; e = errno; }
    if (bad) {
        if (!w->direct) unlink(w->tmp);
        return helix_errf(err, HELIX_ERR_IO, "%s: write failed (%s)%s", w->path, e ? strerror(e) : "I/O error",
                          w->direct ? "" : "; the old file, if any, is untouched");
    }
    return HELIX_OK;
}

void helix_wfile_abort(helix_wfile *w)
{
    if (w->f) fclose(w->f);
    w->f = NULL;
    if (!w->direct && w->tmp[0]) unlink(w->tmp);
}
