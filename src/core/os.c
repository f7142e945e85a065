/* os.c — what the operating system says about this process. */
#include "helix.h"

#include <stdio.h>

/* The "KEY: N kB" line of a /proc file, in bytes; -1 if absent. */
static int64_t proc_kb(const char *path, const char *fmt)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[256];
    long long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, fmt, &kb) == 1) break;
    fclose(f);
    return kb < 0 ? -1 : (int64_t)kb * 1024;
}

int64_t helix_peak_rss_bytes(void) { return proc_kb("/proc/self/status", "VmHWM: %lld kB"); }

int64_t helix_mem_available_bytes(void) { return proc_kb("/proc/meminfo", "MemAvailable: %lld kB"); }
