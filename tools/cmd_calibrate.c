/* cmd_calibrate.c — `helix calibrate`: measure this machine's FP32 FMA
 * peak, 16-bit support and memory bandwidth per thread count, print them,
 * and write a hardware description (key = value) the planner can read. */
#include "cli.h"
#include "cpu.h"
#include "helix.h"

#include <getopt.h>
#include <string.h>
#include <time.h>

static const char *calibrate_help =
    "usage: helix calibrate [--out FILE] [--seconds S]\n"
    "\n"
    "Measures, for 1..all cores: the f32 FMA peak (AVX-512 or AVX2, whichever\n"
    "the CPU has), the triad memory bandwidth, and lists the 16-bit units\n"
    "(AVX512-FP16, AVX512-BF16, AMX-BF16). --out writes the hardware\n"
    "description (key = value lines) for the planner.\n"
    "  --out FILE     hardware description to write        [print only]\n"
    "  --seconds S    time per FMA measurement              [0.3]\n";

int cmd_calibrate(int argc, char **argv)
{
    static const struct option opts[] = {{"out", required_argument, 0, 'o'}, {"seconds", required_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *out = NULL;
    double secs = 0.3;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (c == 'o') out = optarg;
        else if (c == 's') { if (cli_double("--seconds", optarg, &secs) || secs <= 0) return EXIT_USAGE; }
        else if (c == 'h') { fputs(calibrate_help, stdout); return EXIT_OK; }
        else { fprintf(stderr, "helix calibrate: bad option '%s'\n", argv[optind - 1]); return EXIT_USAGE; }
    }
    cpu_info ci;
    cpu_detect(&ci);
    char feat[256];
    printf("# helix %s calibrate\n# cpu: %s, %d logical CPUs\n# features: %s\n# blas: %s\n", HELIX_VERSION, ci.model,
           ci.cpus, cpu_features(&ci, feat, sizeof feat), helix_blas_name());
    printf("#\n# %7s %18s %14s %14s\n", "threads", "fp32_fma", "fp32_GFLOP/s", "triad_GB/s");
    double peak1 = 0, peakn = 0, bw1 = 0, bwn = 0;
    const char *isa = "none";
    for (int t = 1; t <= ci.cpus; t++) {
        double p = cpu_fma_peak(&ci, t, secs, &isa), bw = cpu_triad_bw(t, 64L << 20, 3);
        printf("  %7d %18s %14.1f %14.1f\n", t, isa, p / 1e9, bw / 1e9);
        if (t == 1) { peak1 = p; bw1 = bw; }
        peakn = p; bwn = bw;
    }
    printf("#\n# 16-bit units: avx512_fp16 %s, avx512_bf16 %s, amx_bf16 %s\n", ci.avx512fp16 ? "present" : "absent",
           ci.avx512bf16 ? "present" : "absent", ci.amx_bf16 ? "present" : "absent");
    if (!ci.amx_bf16 && !ci.avx512fp16)
        printf("# this CPU has no 16-bit matrix unit: f16/bf16 run through the f32 path (widened), so their peak is "
               "the fp32 peak\n");
    else
        printf("# note: helix does not use the 16-bit units yet; f16/bf16 are widened to f32\n");
    FILE *f = out ? fopen(out, "w") : stdout;
    if (!f) { fprintf(stderr, "helix: cannot write %s\n", out); return EXIT_RUNTIME; }
    time_t now = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%d", gmtime(&now));
    if (!out) printf("#\n# hardware description (--out FILE writes it):\n");
    fprintf(f, "# helix hardware description: measured by 'helix calibrate' on %s\n", date);
    fprintf(f, "name = this-machine\ncpu = %s\nkind = cpu\n", ci.model);
    fprintf(f, "devices_per_node = %d          # one device per core (MPI rank or grid thread)\n", ci.cpus);
    fprintf(f, "fp32_flops = %.4g              # one device (core), %s FMA loop\n", peak1, isa);
    fprintf(f, "fp32_flops_node = %.4g         # all cores at once\n", peakn);
    fprintf(f, "bf16_flops = %.4g              # %s\n", peak1, ci.amx_bf16 ? "AMX present but unused: f32 path" : "no 16-bit unit: f32 path");
    fprintf(f, "mem_bw = %.4g                  # bytes/s, triad, one core\n", bw1);
    fprintf(f, "mem_bw_node = %.4g             # bytes/s, triad, all cores\n", bwn);
    if (f != stdout) { fclose(f); printf("# wrote %s\n", out); }
    return EXIT_OK;
}
