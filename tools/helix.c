/* helix.c — the command-line entry point: dispatches subcommands. */
#include "cli.h"
#include "helix_cuda.h"
#include "helix.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
        "helix " HELIX_VERSION " - partitioned multi-head attention on an n x m device grid\n"
        "\n"
        "usage: helix <command> [options]\n"
        "\n"
        "commands:\n"
        "  run       run one attention layer on the grid and check it against the reference\n"
        "  inspect   validate a .safetensors or .npy file and list what helix would use\n"
        "  calibrate measure this machine's FMA peak and memory bandwidth\n"
        "  bench     benchmark the kernels ('helix bench kernels') or whole layers in\n"
        "            several layouts ('helix bench layouts')\n"
        "  plan      predict and rank layouts for a model on a machine (cost model)\n"
        "  version   print the version\n"
        "\n"
        "'helix <command> --help' lists a command's options.\n");
}

/* What was printed must have reached standard output (a full disk, a closed
 * pipe): a lost report is a failure, not exit 0. */
static int finish(int rc)
{
    int bad = fflush(stdout) != 0 || ferror(stdout);
    if (cli_json_stdout) bad |= fflush(cli_json_stdout) != 0 || ferror(cli_json_stdout);
    if (bad) {
        fprintf(stderr, "helix: writing standard output failed: the report is incomplete\n");
        return rc ? rc : EXIT_RUNTIME;
    }
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) { usage(stderr); return EXIT_USAGE; }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) { usage(stdout); return finish(EXIT_OK); }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("helix %s\n", HELIX_VERSION);
        const char *mv = helix_mpi_version();
        int n = 0;
        while (mv[n] && mv[n] != ',' && mv[n] != '\n') n++;
        if (helix_mpi_built()) printf("engines: inproc, mpi (%.*s)\n", n, mv);
        else printf("engines: inproc (MPI not built)\n");
        helix_isa isa;
        helix_err ierr = {{0}};
        const helix_status ist = helix_isa_select(&isa, &ierr);
        printf("cpu kernels: %s path (best on this CPU: %s; HELIX_CPU_ISA=portable|avx2|avx512|amx forces one)%s%s\n",
               helix_isa_name(isa), helix_isa_name(helix_isa_best()), ist ? "; " : "", ist ? ierr.msg : "");
        char gpu[1200];
        const int gpu_asked = argc > 2 && !strcmp(argv[2], "--gpu");
        if (!gpu_asked) {                          /* read from the file: this process maps nothing of CUDA */
            const int found = helix_cuda_module_find(gpu, sizeof gpu);
            printf("gpu path: %s%s\n", found ? "module " : "", gpu);
            if (found) printf("  (not loaded; 'helix version --gpu' loads it and lists the GPUs)\n");
        } else if (!helix_cuda_module_status(gpu, sizeof gpu)) {
            printf("gpu path: not loadable: %s\n", gpu);
        } else {
            int count = 0;
            helix_err gerr = {{0}};
            printf("gpu path: module %s loads\n", gpu);
            if (helix_cuda_device_count(&count, &gerr)) printf("  GPUs: none usable (%s)\n", gerr.msg);
            for (int g = 0; g < count; g++) {
                helix_cuda_device d;
                if (helix_cuda_device_info(g, &d, &gerr)) { printf("  GPU %d: %s\n", g, gerr.msg); continue; }
                printf("  GPU %d: %s, sm_%d%d, %d SMs, %.1f GiB, dense f16 peak %.0f TFLOP/s (%s)\n", g, d.name, d.cc_major,
                       d.cc_minor, d.sms, d.mem_bytes / 1073741824.0, d.peak_f16 / 1e12, d.peak_source);
            }
        }
        return finish(EXIT_OK);
    }
    cli_stderr_fd = dup(2);          /* for the MPI watchdog: stderr as it was, before a rank mutes it */
    if (cli_stderr_fd < 0) cli_stderr_fd = 2;
    signal(SIGXFSZ, SIG_IGN);        /* past a file-size limit, write() fails (EFBIG) and we say so */
    cli_json_to_stdout_only(argc, argv);
    helix_err ierr = {{0}};
    if (helix_isa_select(NULL, &ierr)) {   /* a path forced that this CPU lacks: say so, never fall back */
        fprintf(stderr, "helix: %s\n", ierr.msg);
        return EXIT_USAGE;
    }
    int rc;
    if (!strcmp(cmd, "run")) rc = cmd_run(argc - 1, argv + 1);
    else if (!strcmp(cmd, "inspect")) rc = cmd_inspect(argc - 1, argv + 1);
    else if (!strcmp(cmd, "calibrate")) rc = cmd_calibrate(argc - 1, argv + 1);
    else if (!strcmp(cmd, "bench")) rc = cmd_bench(argc - 1, argv + 1);
    else if (!strcmp(cmd, "plan")) rc = cmd_plan(argc - 1, argv + 1);
    else {
        fprintf(stderr, "helix: unknown command '%s' (try 'helix --help')\n", cmd);
        return EXIT_USAGE;
    }
    return finish(rc);
}
