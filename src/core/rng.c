/* rng.c — splitmix64: the one generator of seeded values (weights,
 * inputs), addressable by position. */
#include "helix.h"

#define GAMMA 0x9e3779b97f4a7c15ull

float helix_uniform(uint64_t *s, float a)
{
    uint64_t z = (*s += GAMMA);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return a * (2.0f * (float)((double)(z >> 11) * (1.0 / 9007199254740992.0)) - 1.0f);
}

uint64_t helix_uniform_skip(uint64_t s, int64_t n) { return s + (uint64_t)n * GAMMA; }
