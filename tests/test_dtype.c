/* test_dtype.c — f16/bf16 conversions: exact values, rounding to nearest
 * even, subnormals, overflow, Inf and NaN. */
#include "check.h"
#include "helix.h"

#include <math.h>
#include <string.h>

int main(void)
{
    /* exactly representable values survive the round trip */
    const float exact[] = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 0.000061035156f, 5.9604645e-08f, 0.333251953125f};
    for (size_t k = 0; k < sizeof exact / sizeof *exact; k++) {
        float back = helix_f16_to_f32(helix_f32_to_f16(exact[k]));
        CHECK(back == exact[k] && signbit(back) == signbit(exact[k]), "f16 round trip of %g gave %g", exact[k], back);
    }
    CHECK(helix_f32_to_f16(1.0f) == 0x3c00, "1.0 -> %04x", helix_f32_to_f16(1.0f));
    CHECK(helix_f32_to_f16(65520.0f) == 0x7c00, "65520 must overflow to inf");
    CHECK(helix_f32_to_f16(65519.0f) == 0x7bff, "65519 rounds to max f16");
    CHECK(helix_f32_to_f16(INFINITY) == 0x7c00 && helix_f32_to_f16(-INFINITY) == 0xfc00, "inf");
    CHECK(isnan(helix_f16_to_f32(helix_f32_to_f16(NAN))), "nan stays nan");
    /* ties to even: 1 + 2^-11 is halfway between 1 and 1+2^-10 -> 1 */
    CHECK(helix_f32_to_f16(1.0f + 0x1p-11f) == 0x3c00, "tie to even (down)");
    CHECK(helix_f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3c02, "tie to even (up)");
    CHECK(helix_f32_to_f16(0x1p-25f) == 0, "2^-25 ties to zero");
    CHECK(helix_f32_to_f16(0x1.8p-25f) == 1, "1.5*2^-25 rounds to the smallest subnormal");
    CHECK(helix_f32_to_f16(0x1p-24f) == 1, "2^-24 is the smallest subnormal");
    /* every f16 bit pattern (not NaN) survives f16 -> f32 -> f16 */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;
        if (helix_f32_to_f16(helix_f16_to_f32((uint16_t)h)) != h) bad++;
    }
    CHECK(bad == 0, "%d f16 patterns do not round trip", bad);
    bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7f80) == 0x7f80 && (h & 0x7f)) continue;
        if (helix_f32_to_bf16(helix_bf16_to_f32((uint16_t)h)) != h) bad++;
    }
    CHECK(bad == 0, "%d bf16 patterns do not round trip", bad);
    CHECK(helix_f32_to_bf16(1.0f + 0x1p-8f) == 0x3f80, "bf16 tie to even (down)");
    CHECK(helix_f32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82, "bf16 tie to even (up)");
    CHECK(isnan(helix_bf16_to_f32(helix_f32_to_bf16(NAN))), "bf16 nan");
    /* relative error bounds on random values */
    float worst16 = 0, worstb = 0;
    for (int k = 1; k < 100000; k++) {
        float v = (float)k * 0.37f - 12345.0f;
        float e16 = fabsf(helix_f16_to_f32(helix_f32_to_f16(v)) - v) / fabsf(v);
        float eb = fabsf(helix_bf16_to_f32(helix_f32_to_bf16(v)) - v) / fabsf(v);
        if (e16 > worst16) worst16 = e16;
        if (eb > worstb) worstb = eb;
    }
    CHECK(worst16 <= 0x1p-11f, "f16 relative rounding error %g > 2^-11", worst16);
    CHECK(worstb <= 0x1p-8f, "bf16 relative rounding error %g > 2^-8", worstb);
    /* the bulk converters (F16C where present) agree with the scalar ones */
    {
        enum { N = 70000 };
        static float src[N], back[N];
        static uint16_t h[N];
        for (int k = 0; k < N; k++) src[k] = (float)(k - N / 2) * 0.013f * (float)(1 + k % 17);
        src[5] = NAN; src[6] = INFINITY; src[7] = 1e-7f; src[8] = 70000.0f;
        helix_from_f32(HELIX_F16, src, h, N);
        helix_to_f32(HELIX_F16, h, back, N);
        int diff = 0;
        for (int k = 0; k < N; k++) {
            if (h[k] != helix_f32_to_f16(src[k])) diff++;
            float ref = helix_f16_to_f32(h[k]);
            if (memcmp(&ref, &back[k], 4) && !(isnan(ref) && isnan(back[k]))) diff++;
        }
        CHECK(diff == 0, "%d bulk f16 conversions differ from the scalar ones", diff);
    }
    helix_dtype t;
    CHECK(helix_dtype_parse("bf16", &t) == HELIX_OK && t == HELIX_BF16, "parse bf16");
    CHECK(helix_dtype_parse("f64", &t) == HELIX_ERR_INVALID, "f64 is refused");
    return test_summary();
}
