/* status.c — names for status codes and phases. */
#include "err-impl.h"

#include <stdarg.h>
#include <stdio.h>

helix_status helix_errf(helix_err *err, helix_status st, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return st;
}

const char *helix_status_str(helix_status s)
{
    switch (s) {
    case HELIX_OK: return "ok";
    case HELIX_ERR_INVALID: return "invalid input";
    case HELIX_ERR_NOMEM: return "out of memory";
    case HELIX_ERR_COMM: return "communication failure";
    case HELIX_ERR_ABORTED: return "aborted (another device failed)";
    case HELIX_ERR_IO: return "i/o error";
    case HELIX_ERR_FORMAT: return "malformed file";
    case HELIX_ERR_NONFINITE: return "non-finite value";
    case HELIX_ERR_UNSUPPORTED: return "unsupported";
    case HELIX_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

const char *helix_phase_name(helix_phase p)
{
    static const char *names[HELIX_NPHASES] = {
        "input", "qkv", "regather", "attention", "return",
        "row_gather", "col_gather", "out_proj", "reduce",
        "norm", "mlp", "mlp_reduce", "p2p", "output",
    };
    return (p >= 0 && p < HELIX_NPHASES) ? names[p] : "?";
}
