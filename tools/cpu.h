/* cpu.h — what this CPU can do, and how fast: feature flags (the
 * library's, read at run time), FMA peaks and memory bandwidth measured with micro-loops. */
#ifndef HELIX_CPU_H
#define HELIX_CPU_H

#include "helix.h"

typedef struct {
    char model[128];
    int avx2, fma, avx512f, avx512bf16, avx512fp16, amx_bf16, amx_tile;
    int cpus;
} cpu_info;

void cpu_detect(cpu_info *c);
/* "avx2 fma avx512f ..." */
const char *cpu_features(const cpu_info *c, char *buf, int n);
/* Peak f32 FMA FLOP/s with `threads` threads running at once (widest of
 * AVX-512 / AVX2 that the CPU has); 0 if neither. *isa names it. */
double cpu_fma_peak(const cpu_info *c, int threads, double seconds, const char **isa);
typedef enum {
    CPU_UNIT_AVX2_FMA, CPU_UNIT_AVX512_FMA, CPU_UNIT_AVX512_BF16, CPU_UNIT_AMX_BF16, CPU_UNIT_AMX_BF16_L1,
    CPU_UNIT_AVX512_FP16   /* vfmadd231ph: f16 products accumulated in f16 */
} cpu_unit;
#define CPU_UNITS 6
/* Peak FLOP/s of one unit with `threads` threads at once, operands in
 * registers (CPU_UNIT_AMX_BF16_L1: the AMX products with their tiles
 * loaded from L1 every step, as a GEMM feeds them; not a peak, the rate
 * feeding allows here and now); 0 when the CPU lacks it. */
double cpu_unit_peak(cpu_unit u, int threads, double seconds);
/* The peak of the unit a kernel path uses for dtype t (*unit names it). */
double cpu_path_peak(helix_isa isa, helix_dtype t, int threads, double seconds, const char **unit);
/* Triad a = b + s*c bandwidth in bytes/s (3 arrays of `bytes` each). */
double cpu_triad_bw(int threads, long bytes, int reps);

#endif
