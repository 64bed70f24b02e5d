/* core/rng.c — the per-thread random generator state: a seed and the number of Philox blocks
 * consumed. Random ops take a contiguous range of blocks, so results depend only on the seed
 * and the sequence of calls, never on thread count or device. */
#include "core/internal.h"

#define BN_DEFAULT_SEED 0x5eed0b0c5eedULL

static _Thread_local bn_rng_state tl_rng = {BN_DEFAULT_SEED, 0};

void bn_manual_seed(uint64_t seed) { tl_rng = (bn_rng_state){seed, 0}; }
bn_rng_state bn_rng_get_state(void) { return tl_rng; }
void bn_rng_set_state(bn_rng_state s) { tl_rng = s; }

static _Thread_local bool tl_capturing, tl_drawn;

void bn__rng_capture_begin(void) { tl_capturing = true, tl_drawn = false; }
bool bn__capturing(void) { return tl_capturing; }

bool bn__rng_capture_end(void)
{
    bool drawn = tl_drawn;
    tl_capturing = tl_drawn = false;
    return drawn;
}

void bn__rng_take(uint64_t nblocks, uint64_t *seed, uint64_t *counter)
{
    if (tl_capturing && nblocks > 0) tl_drawn = true;
    *seed = tl_rng.seed;
    *counter = tl_rng.offset;
    tl_rng.offset += nblocks;
}
