/* backend/cpu/host_alloc.c — host memory of the CPU backend (bn__alloc_aligned /
 * bn__free_aligned, 64-byte aligned) with a cache of large blocks.
 *
 * A training step allocates and frees the same large tensors (activations, gradients, optimizer
 * temporaries) again and again. Fresh from posix_memalign, a block of more than glibc's mmap
 * threshold is a fresh mapping whose every page faults (and is zeroed by the kernel) on first
 * touch: about a tenth of a CNN step here. So a freed block of BN_HOST_LARGE_MIN bytes or more
 * is kept, in a size class (four per power of two: at most a quarter wasted, and only as
 * untouched address space on a first use), and the next request of its class takes it back with
 * its pages mapped. Small requests go straight to posix_memalign / free, as before.
 *
 * bn__free_aligned gets no size, so the large blocks handed out are listed in a hash set
 * (pointer -> size class); a pointer not in it is a small block. The set stores the pointers
 * complemented, so that LeakSanitizer does not see them as references: a leaked tensor's block
 * still shows up as leaked. The cached (free) blocks are chained through their first bytes from
 * the per-class lists (reachable: not leaks) and are released at exit (atexit), so that the
 * cache never hides anything from a leak check. The cache holds at most `limit` bytes; beyond
 * it the least recently freed blocks go back to the system. One mutex guards everything (a
 * lock per free, next to the work a tensor of that size takes). Under AddressSanitizer a cached
 * block is poisoned, and a reused one is poisoned past the size asked for, so use-after-free and
 * overflows into the class's slack are still reported. */
#include "backend/cpu/host_alloc.h"

#include "core/internal.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define BN_HOST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BN_HOST_ASAN 1
#endif
#endif
#ifdef BN_HOST_ASAN
#include <sanitizer/asan_interface.h>
#define HOST_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define HOST_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define HOST_POISON(p, n) ((void)(p), (void)(n))
#define HOST_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define ALIGN 64
enum {
    CLASS_SUB = 4,
    MIN_SHIFT = 18,
    MAX_SHIFT = 48,
    NCLASS = CLASS_SUB * (MAX_SHIFT - MIN_SHIFT)
};

/* The class of a large request of n bytes (n >= BN_HOST_LARGE_MIN), or -1 when it is too large
 * to be worth caching. */
static int class_of(size_t n)
{
    int e = MIN_SHIFT;
    while (e < MAX_SHIFT && (n >> (e + 1)) != 0) e++;
    if (e >= MAX_SHIFT) return -1;
    size_t step = (size_t)1 << (e - 2);
    size_t r = (n + step - 1) / step; /* 4..8 quarters of 2^e; 8 is the next power's first */
    int idx = (e - MIN_SHIFT) * CLASS_SUB + (int)(r - CLASS_SUB);
    return idx < NCLASS ? idx : -1;
}

static size_t class_size(int idx)
{
    int e = MIN_SHIFT + idx / CLASS_SUB;
    return ((size_t)1 << e) + (size_t)(idx % CLASS_SUB) * ((size_t)1 << (e - 2));
}

/* A cached block, chained through its first bytes. */
typedef struct node {
    struct node *next, *prev; /* next: older, prev: more recent (same class) */
    uint64_t stamp;           /* when it was freed (a counter) */
    size_t size;              /* its class's bytes */
} node;

typedef struct live_slot {
    uintptr_t key; /* ~pointer; 0: empty */
    int cls;
} live_slot;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static node *heads[NCLASS], *tails[NCLASS]; /* most recent first */
static size_t cached_bytes, cached_blocks;
static size_t limit = BN_HOST_CACHE_DEFAULT_LIMIT;
static uint64_t clock_, hits, misses;
static bool closed, exit_hook;
static live_slot *live;
static size_t live_cap, live_n; /* live_cap: 0 or a power of two */

/* ---- the set of large blocks handed out (open addressing, linear probing) ------------------ */
static size_t slot_of(uintptr_t key, size_t cap)
{
    return (size_t)(((uint64_t)key * 0x9E3779B97F4A7C15ull) >> 20) & (cap - 1);
}

static void live_put_raw(live_slot *tab, size_t cap, uintptr_t key, int cls)
{
    size_t i = slot_of(key, cap);
    while (tab[i].key) i = (i + 1) & (cap - 1);
    tab[i] = (live_slot){key, cls};
}

/* Lists p with its class; false when the set cannot grow (p is then handed out unlisted and
 * freed as a small block would be). */
static bool live_add(void *p, int cls)
{
    if ((live_n + 1) * 2 > live_cap) {
        size_t cap = live_cap ? live_cap * 2 : 64;
        live_slot *tab = calloc(cap, sizeof *tab);
        if (!tab) return false;
        for (size_t i = 0; i < live_cap; i++)
            if (live[i].key) live_put_raw(tab, cap, live[i].key, live[i].cls);
        free(live);
        live = tab;
        live_cap = cap;
    }
    live_put_raw(live, live_cap, ~(uintptr_t)p, cls);
    live_n++;
    return true;
}

/* Takes p out of the set and returns its class; -1 when p is not listed. */
static int live_remove(const void *p)
{
    if (!live_n) return -1;
    const uintptr_t key = ~(uintptr_t)p;
    const size_t m = live_cap - 1;
    size_t i = slot_of(key, live_cap);
    while (live[i].key && live[i].key != key) i = (i + 1) & m;
    if (!live[i].key) return -1;
    int cls = live[i].cls;
    /* backward-shift deletion: pull later entries of the probe run into the hole */
    for (size_t j = i;;) {
        j = (j + 1) & m;
        if (!live[j].key) break;
        size_t home = slot_of(live[j].key, live_cap);
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            live[i] = live[j];
            i = j;
        }
    }
    live[i].key = 0;
    live_n--;
    return cls;
}

/* ---- the cache lists (lock held) ------------------------------------------------------------ */
static void unlink_node(int cls, node *b)
{
    if (b->prev)
        b->prev->next = b->next;
    else
        heads[cls] = b->next;
    if (b->next)
        b->next->prev = b->prev;
    else
        tails[cls] = b->prev;
    cached_bytes -= class_size(cls);
    cached_blocks--;
}

/* Moves the least recently freed block onto *out (chained by next); false when none is cached. */
static bool evict_oldest(node **out)
{
    int best = -1;
    for (int c = 0; c < NCLASS; c++)
        if (tails[c] && (best < 0 || tails[c]->stamp < tails[best]->stamp)) best = c;
    if (best < 0) return false;
    node *b = tails[best];
    unlink_node(best, b);
    b->next = *out;
    *out = b;
    return true;
}

static void free_chain(node *b)
{
    while (b) {
        node *next = b->next;
        HOST_UNPOISON(b, b->size);
        free(b);
        b = next;
    }
}

/* Every cached block onto a chain for free_chain (lock held). */
static node *take_all(void)
{
    node *out = NULL;
    while (evict_oldest(&out)) {
    }
    return out;
}

static void at_exit(void)
{
    pthread_mutex_lock(&lock);
    closed = true;
    node *all = take_all();
    if (!live_n) {
        free(live);
        live = NULL;
        live_cap = 0;
    }
    pthread_mutex_unlock(&lock);
    free_chain(all);
}

/* ---- the allocator -------------------------------------------------------------------------- */
static void *fresh(size_t n)
{
    void *p = NULL;
    return posix_memalign(&p, ALIGN, n) == 0 ? p : NULL;
}

void *bn__alloc_aligned(size_t nbytes)
{
    /* round up so the size is a multiple of the alignment, as aligned_alloc requires */
    size_t n = (nbytes + (ALIGN - 1)) & ~(size_t)(ALIGN - 1);
    if (n < nbytes) return NULL;
    if (n == 0) n = ALIGN;
    int cls = n >= BN_HOST_LARGE_MIN ? class_of(n) : -1;
    if (cls < 0) return fresh(n);
    size_t csize = class_size(cls);
    void *p = NULL;
    pthread_mutex_lock(&lock);
    node *b = heads[cls];
    if (b) {
        unlink_node(cls, b);
        hits++;
        p = b;
        live_add(p, cls); /* when the set cannot grow, p is freed as a small block: no harm */
    } else {
        misses++;
    }
    pthread_mutex_unlock(&lock);
    if (!p) {
        p = fresh(csize);
        if (!p) { /* the cache's blocks back to the system, then once more */
            bn__host_cache_trim();
            p = fresh(csize);
            if (!p) return NULL;
        }
        pthread_mutex_lock(&lock);
        live_add(p, cls);
        pthread_mutex_unlock(&lock);
    }
    HOST_UNPOISON(p, csize);
    HOST_POISON((char *)p + n, csize - n);
    return p;
}

void bn__free_aligned(void *p)
{
    if (!p) return;
    pthread_mutex_lock(&lock);
    int cls = live_remove(p);
    if (cls < 0) {
        pthread_mutex_unlock(&lock);
        free(p);
        return;
    }
    size_t csize = class_size(cls);
    node *evicted = NULL;
    if (closed || csize > limit) {
        pthread_mutex_unlock(&lock);
        HOST_UNPOISON(p, csize);
        free(p);
        return;
    }
    while (cached_bytes + csize > limit && evict_oldest(&evicted)) {
    }
    HOST_UNPOISON(p, sizeof(node));
    node *b = p;
    *b = (node){.next = heads[cls], .prev = NULL, .stamp = ++clock_, .size = csize};
    if (heads[cls])
        heads[cls]->prev = b;
    else
        tails[cls] = b;
    heads[cls] = b;
    cached_bytes += csize;
    cached_blocks++;
    if (!exit_hook) exit_hook = atexit(at_exit) == 0;
    /* poisoned before the lock is let go: another thread may take the block right after */
    HOST_POISON((char *)p + sizeof(node), csize - sizeof(node));
    pthread_mutex_unlock(&lock);
    free_chain(evicted);
}

/* ---- control and statistics (host_alloc.h) ------------------------------------------------- */
void bn__host_cache_get_stats(bn__host_cache_stats *s)
{
    pthread_mutex_lock(&lock);
    *s = (bn__host_cache_stats){.cached_bytes = cached_bytes,
                                .cached_blocks = cached_blocks,
                                .live_large = live_n,
                                .limit = limit,
                                .hits = hits,
                                .misses = misses};
    pthread_mutex_unlock(&lock);
}

size_t bn__host_cache_set_limit(size_t bytes)
{
    node *evicted = NULL;
    pthread_mutex_lock(&lock);
    size_t old = limit;
    limit = bytes;
    while (cached_bytes > limit && evict_oldest(&evicted)) {
    }
    pthread_mutex_unlock(&lock);
    free_chain(evicted);
    return old;
}

void bn__host_cache_trim(void)
{
    pthread_mutex_lock(&lock);
    node *all = take_all();
    pthread_mutex_unlock(&lock);
    free_chain(all);
}

size_t bn__host_class_bytes(size_t n)
{
    if (n < BN_HOST_LARGE_MIN) return n;
    int cls = class_of(n);
    return cls < 0 ? n : class_size(cls);
}
