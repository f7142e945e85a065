/* run_args.c — options of `helix run` and its --help text. */
#include "run.h"

#include <getopt.h>
#include <string.h>

const char *run_help_text =
    "usage: helix run [options]\n"
    "       mpirun -np P helix run [options]      (one rank per device)\n"
    "\n"
    "Runs one multi-head attention layer partitioned over an n x m grid of\n"
    "devices on random inputs and weights drawn from --seed, and checks it\n"
    "against the single-device reference.\n"
    "\n"
    "model and grid:\n"
    "  --heads H          attention heads h                        [16]\n"
    "  --head-dim D       width of one head d                      [64]\n"
    "  --groups N         head groups n (grid rows), n | h         [4]\n"
    "  --slices M         slices per head m (grid columns), m | d  [4]\n"
    "  --batch B          batch size                               [2]\n"
    "  --seq L            sequence length                          [512]\n"
    "attention:\n"
    "  --mode MODE        sliced | exact                           [exact]\n"
    "                     sliced: each device runs softmax on its own d/m-wide\n"
    "                     slice = MHA with h*m heads of width d/m (not the\n"
    "                     h-head model); exact: MHA with h heads of width d\n"
    "  --exact-algo ALGO  regather | scores                        [regather]\n"
    "                     regather: move Q/K/V slices so devices own whole\n"
    "                     heads (or query blocks); scores: all-reduce partial\n"
    "                     scores (O(L^2) traffic, short sequences only)\n"
    "  --causal           causal mask                              [off]\n"
    "  --scale S          softmax scale, 0 < S <= 1e6              [1/sqrt(width)]\n"
    "  --kv-len N[,N...]  key padding: batch row b attends to its first N_b\n"
    "                     keys only (1 <= N_b <= L); one N for all rows, or\n"
    "                     one per row                               [no padding]\n"
    "  --no-out-proj      skip W_O: concatenate heads onto rank 0  [W_O on]\n"
    "  --bias             add biases to the Q/K/V/O projections    [off]\n"
    "numbers:\n"
    "  --dtype T          f32 | f16 | bf16 storage (fp32, fp16 too),\n"
    "                     f32 accumulate                           [f32; with\n"
    "                                                     --weights: the file's]\n"
    "  --seed S           seed of the random inputs and weights    [1]\n"
    "real data:\n"
    "  --weights FILE     attention weights (.safetensors): PyTorch\n"
    "                     nn.MultiheadAttention (in_proj_weight, in_proj_bias,\n"
    "                     out_proj.weight, out_proj.bias) or q_proj/k_proj/v_proj\n"
    "                     + o_proj|out_proj (.weight, .bias); D from the file,\n"
    "                     d = D / --heads; biases and W_O used when present;\n"
    "                     --heads is required (a state_dict does not record\n"
    "                     it) unless the file's __metadata__ has num_heads\n"
    "  --weights-prefix P prefix of the tensor names (model.layers.0.self_attn.)\n"
    "  --input FILE       X as .npy [B, L, D] (<f4 or <f2); B, L from the file\n"
    "  --allow-nonfinite  run even if weights or input hold NaN/Inf (also\n"
    "                     values the run's --dtype cannot hold), and write a\n"
    "                     non-finite output                        [refuse]\n"
    "execution:\n"
    "  --backend B        inproc | mpi                             [mpi under mpirun,\n"
    "                     inproc: all devices are threads of this   else inproc]\n"
    "                     process; mpi: one MPI rank per device,\n"
    "                     rank = i*m + j, -np must equal n*m\n"
    "  --threads T        inproc: devices computing at once        [0 = all cores]\n"
    "  --virtual-devices  inproc: every device of the grid on GPU 0 (the CUDA\n"
    "                     backend: device memory, device-to-device copies; one\n"
    "                     GPU runs and checks a whole layout)    [devices on CPUs]\n"
    "  --gpu              mpi: each rank's device on a GPU of its node (local\n"
    "                     rank mod the GPUs it sees; the CUDA backend, the NCCL\n"
    "                     engine)                                [devices on CPUs]\n"
    "  --ranks-per-node K nodes of K consecutive ranks: the reduce onto rank 0\n"
    "                     and the other collectives that span nodes run\n"
    "                     hierarchically, bytes are counted per link class;\n"
    "                     emulates nodes on one host   [mpi: as launched; else one node]\n"
    "  --collectives C    ordered (fixed summation order, bitwise reproducible)\n"
    "                     or native (mpi: the MPI library's reductions)  [ordered]\n"
    "  --timeout S        mpi: end the job when a collective has waited S\n"
    "                     seconds, naming the ranks that did not arrive\n"
    "                     (0: never)    [60 + the pass's FLOPs at 100 MFLOP/s]\n"
    "  --check            compare with the reference (default)\n"
    "  --no-check         skip the reference (large runs)\n"
    "  --overhead         inproc: time the devices' kernels again alone (as\n"
    "                     'helix bench kernels' does, --threads at once) and\n"
    "                     print wall / kernels = the framework's overhead\n"
    "  --output FILE.npy  write the output [B, L, D] (f32; f16 for --dtype f16)\n"
    "  --json FILE|-      write a JSON summary to FILE or stdout\n"
    "  -h, --help         this text\n"
    "\n"
    "exit status: 0 ok, 1 check failed, 2 bad input or usage, 3 runtime failure\n";

enum {
    O_HEADS = 256, O_HEAD_DIM, O_GROUPS, O_SLICES, O_BATCH, O_SEQ, O_MODE, O_ALGO, O_CAUSAL, O_SCALE,
    O_NO_OUT, O_BIAS, O_DTYPE, O_SEED, O_THREADS, O_CHECK, O_NO_CHECK, O_JSON, O_OUTPUT, O_BACKEND, O_WEIGHTS, O_PREFIX, O_INPUT, O_NONFINITE, O_OVERHEAD, O_KV_LEN, O_TIMEOUT, O_HELP,
    O_RPN, O_COLL, O_VIRTUAL, O_GPU
};

static const struct option opts[] = {
    {"heads", required_argument, 0, O_HEADS},     {"head-dim", required_argument, 0, O_HEAD_DIM},
    {"groups", required_argument, 0, O_GROUPS},   {"slices", required_argument, 0, O_SLICES},
    {"batch", required_argument, 0, O_BATCH},     {"seq", required_argument, 0, O_SEQ},
    {"mode", required_argument, 0, O_MODE},       {"exact-algo", required_argument, 0, O_ALGO},
    {"causal", no_argument, 0, O_CAUSAL},         {"scale", required_argument, 0, O_SCALE},
    {"no-out-proj", no_argument, 0, O_NO_OUT},    {"bias", no_argument, 0, O_BIAS},
    {"dtype", required_argument, 0, O_DTYPE},     {"seed", required_argument, 0, O_SEED},
    {"threads", required_argument, 0, O_THREADS}, {"check", no_argument, 0, O_CHECK},
    {"no-check", no_argument, 0, O_NO_CHECK},     {"json", required_argument, 0, O_JSON},
    {"output", required_argument, 0, O_OUTPUT},   {"backend", required_argument, 0, O_BACKEND},
    {"weights", required_argument, 0, O_WEIGHTS}, {"weights-prefix", required_argument, 0, O_PREFIX},
    {"input", required_argument, 0, O_INPUT},     {"allow-nonfinite", no_argument, 0, O_NONFINITE},
    {"overhead", no_argument, 0, O_OVERHEAD},     {"help", no_argument, 0, O_HELP},
    {"kv-len", required_argument, 0, O_KV_LEN},   {"timeout", required_argument, 0, O_TIMEOUT},
    {"ranks-per-node", required_argument, 0, O_RPN}, {"collectives", required_argument, 0, O_COLL},
    {"virtual-devices", no_argument, 0, O_VIRTUAL}, {"gpu", no_argument, 0, O_GPU},
    {0, 0, 0, 0},
};

double run_tolerance(helix_dtype t) { return t == HELIX_F32 ? 1e-4 : t == HELIX_F16 ? 4e-3 : 3e-2; }

static int parse_backend(const char *s, run_backend *b)
{
    if (!strcmp(s, "inproc")) *b = BACKEND_INPROC;
    else if (!strcmp(s, "mpi")) *b = BACKEND_MPI;
    else return -1;
    return 0;
}

run_backend run_backend_peek(int argc, char **argv)
{
    run_backend b = BACKEND_AUTO;
    for (int k = 1; k < argc; k++) {
        if (!strcmp(argv[k], "--backend") && k + 1 < argc) parse_backend(argv[k + 1], &b);
        else if (!strncmp(argv[k], "--backend=", 10)) parse_backend(argv[k] + 10, &b);
    }
    return b;
}

int run_parse(int argc, char **argv, run_opts *o)
{
    memset(o, 0, sizeof *o);
    o->cfg = helix_config_default();
    o->seed = 1;
    o->check = 1;
    o->prefix = "";
    o->timeout = -1;
    helix_config *cfg = &o->cfg;
    int c;
    optind = 1;
    opterr = 0;
    const int64_t big = (int64_t)1 << 40;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case O_HEADS: bad = cli_int("--heads", optarg, 1, big, &cfg->heads); o->given_heads = 1; break;
        case O_HEAD_DIM: bad = cli_int("--head-dim", optarg, 1, big, &cfg->head_dim); o->given_head_dim = 1; break;
        case O_GROUPS: bad = cli_int("--groups", optarg, 1, big, &cfg->groups); break;
        case O_SLICES: bad = cli_int("--slices", optarg, 1, big, &cfg->slices); break;
        case O_BATCH: bad = cli_int("--batch", optarg, 1, big, &cfg->batch); o->given_batch = 1; break;
        case O_SEQ: bad = cli_int("--seq", optarg, 1, big, &cfg->seq); o->given_seq = 1; break;
        case O_MODE:
            if ((bad = helix_mode_parse(optarg, &cfg->mode) != HELIX_OK))
                fprintf(stderr, "helix: --mode must be sliced or exact, got '%s'\n", optarg);
            break;
        case O_ALGO:
            if ((bad = helix_exact_algo_parse(optarg, &cfg->exact_algo) != HELIX_OK))
                fprintf(stderr, "helix: --exact-algo must be regather or scores, got '%s'\n", optarg);
            break;
        case O_CAUSAL: cfg->causal = 1; break;
        case O_SCALE:
            bad = cli_double("--scale", optarg, &cfg->scale);
            if (!bad && !(cfg->scale > 0 && cfg->scale <= 1e6)) {
                fprintf(stderr, "helix: --scale must be > 0 and at most 1e6 (scores times it must stay finite in f32), "
                                "got '%s'\n", optarg);
                bad = 1;
            }
            break;
        case O_NO_OUT: cfg->out_proj = 0; o->given_no_out = 1; break;
        case O_BIAS: cfg->bias = 1; o->given_bias = 1; break;
        case O_DTYPE:
            if ((bad = helix_dtype_parse(optarg, &cfg->dtype) != HELIX_OK))
                fprintf(stderr, "helix: --dtype must be f32, f16 or bf16 (or fp32, fp16), got '%s'\n", optarg);
            o->given_dtype = 1;
            break;
        case O_WEIGHTS: o->weights = optarg; break;
        case O_PREFIX: o->prefix = optarg; break;
        case O_INPUT: o->input = optarg; break;
        case O_NONFINITE: o->allow_nonfinite = 1; break;
        case O_SEED: bad = cli_int("--seed", optarg, 0, INT64_MAX, &o->seed); break;
        case O_THREADS: bad = cli_int("--threads", optarg, 0, 4096, &o->threads); break;
        case O_CHECK: o->check = 1; break;
        case O_NO_CHECK: o->check = 0; break;
        case O_OVERHEAD: o->overhead = 1; break;
        case O_VIRTUAL: o->virtual_devices = 1; break;
        case O_GPU: o->gpu = 1; break;
        case O_KV_LEN: o->kv_len = optarg; break;
        case O_TIMEOUT: bad = cli_timeout(optarg, &o->timeout); break;
        case O_RPN: bad = cli_int("--ranks-per-node", optarg, 1, 1 << 20, &o->ranks_per_node); break;
        case O_COLL: bad = cli_collectives(optarg, &cfg->native_collectives) != 0; break;
        case O_JSON: o->json = optarg; break;
        case O_OUTPUT: o->output = optarg; break;
        case O_BACKEND:
            if ((bad = parse_backend(optarg, &o->backend) != 0))
                fprintf(stderr, "helix: --backend must be inproc or mpi, got '%s'\n", optarg);
            break;
        case 'h':
        case O_HELP: fputs(run_help_text, stdout); return -1;
        case ':':
            fprintf(stderr, "helix run: option %s needs a value\n", argv[optind - 1]);
            return EXIT_USAGE;
        default:
            fprintf(stderr, "helix run: unknown option '%s' (try 'helix run --help')\n", argv[optind - 1]);
            return EXIT_USAGE;
        }
        if (bad) return EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "helix run: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (o->gpu && o->overhead) {
        fprintf(stderr, "helix run: --overhead times the CPU kernels; it does not go with --gpu\n");
        return EXIT_USAGE;
    }
    if (o->virtual_devices && o->overhead) {
        fprintf(stderr, "helix run: --overhead times the CPU kernels; it does not go with --virtual-devices\n");
        return EXIT_USAGE;
    }
    return 0;
}
