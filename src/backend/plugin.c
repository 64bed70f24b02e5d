/* backend/plugin.c — loads device plugins (libborn-cuda.so) with dlopen on first use, checks
 * their ABI version and answers the public bn_cuda_* queries (born/cuda.h). libborn links no
 * CUDA library: without the plugin, or without a GPU, every query here still answers (0 devices,
 * or BN_ERR_DEVICE with the reason). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr */
#endif
#include "backend/plugin.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct plugin_slot {
    const char *file; /* "libborn-cuda.so" */
    const char *env;  /* "BORN_CUDA_PLUGIN" */
    pthread_once_t once;
    const bn_plugin *plugin; /* NULL when not loaded */
    int devices;
    char why[512];
} plugin_slot;

static plugin_slot cuda_slot = {
    "libborn-cuda.so", "BORN_CUDA_PLUGIN", PTHREAD_ONCE_INIT, NULL, 0, ""};

static bn_status host_error(bn_status code, const char *message)
{
    return bn__error(code, "%s", message);
}

static const bn_plugin_host host_table = {BN_PLUGIN_ABI_VERSION, sizeof(bn_plugin_host),
                                          sizeof(bn_backend), host_error};

/* The directory of the file that holds libborn's code ("" when unknown), with a trailing '/'. */
static const char own_anchor; /* an object inside libborn, for dladdr */

static void own_dir(char *buf, size_t n)
{
    Dl_info info;
    buf[0] = '\0';
    if (!dladdr(&own_anchor, &info) || !info.dli_fname) return;
    const char *slash = strrchr(info.dli_fname, '/');
    if (!slash) return;
    snprintf(buf, n, "%.*s/", (int)(slash - info.dli_fname), info.dli_fname);
}

/* Tries one path; keeps the handle on success, appends dlerror's text to why otherwise. */
static void *try_open(plugin_slot *s, const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        size_t used = strlen(s->why);
        snprintf(s->why + used, sizeof s->why - used, "%s%s", used ? "; " : "", e ? e : path);
    }
    return h;
}

static void *open_plugin(plugin_slot *s)
{
    const char *env = getenv(s->env);
    if (env && *env) return try_open(s, env);
    char path[1024];
    own_dir(path, sizeof path);
    if (path[0]) {
        size_t len = strlen(path);
        snprintf(path + len, sizeof path - len, "%s", s->file);
        void *h = try_open(s, path);
        if (h) return h;
    }
    return try_open(s, s->file);
}

static void load(plugin_slot *s)
{
    void *h = open_plugin(s);
    if (!h) return;
    bn_plugin_entry_fn entry;
    *(void **)&entry = dlsym(h, BN_PLUGIN_ENTRY_SYMBOL);
    const bn_plugin *p = entry ? entry(&host_table) : NULL;
    if (!p || p->abi_version != BN_PLUGIN_ABI_VERSION || p->struct_size != sizeof(bn_plugin)) {
        snprintf(s->why, sizeof s->why,
                 "%s has no entry point or a different plugin ABI (libborn wants version %u)",
                 s->file, BN_PLUGIN_ABI_VERSION);
        dlclose(h);
        return;
    }
    /* the handle stays open for the life of the process: tensors may outlive any caller */
    s->plugin = p;
    s->devices = p->device_count();
    if (s->devices <= 0) {
        s->devices = 0;
        snprintf(s->why, sizeof s->why, "%s", p->why ? p->why() : "no device found");
    }
}

static void load_cuda(void) { load(&cuda_slot); }

static plugin_slot *slot_of(bn_device_type type)
{
    if (type != BN_DEVICE_CUDA) return NULL;
    pthread_once(&cuda_slot.once, load_cuda);
    return &cuda_slot;
}

const bn_plugin *bn__plugin(bn_device_type type)
{
    plugin_slot *s = slot_of(type);
    return s ? s->plugin : NULL;
}

const char *bn__plugin_why(bn_device_type type)
{
    plugin_slot *s = slot_of(type);
    if (!s) return "no plugin exists for this device type";
    return s->devices > 0 ? NULL : s->why;
}

bool bn__plugin_device_available(bn_device d)
{
    plugin_slot *s = slot_of(d.type);
    return s && s->plugin && d.index >= 0 && d.index < s->devices;
}

const bn_backend *bn__plugin_backend(const char *fn, bn_device d)
{
    plugin_slot *s = slot_of(d.type);
    if (!s) return bn__error_null(BN_ERR_DEVICE, "%s: no plugin exists for this device type", fn);
    if (!s->plugin || s->devices == 0)
        return bn__error_null(BN_ERR_DEVICE, "%s: device cuda:%d is not available (%s)", fn,
                              d.index, s->why);
    if (d.index < 0 || d.index >= s->devices)
        return bn__error_null(BN_ERR_DEVICE,
                              "%s: device cuda:%d does not exist (%d CUDA device%s found)", fn,
                              d.index, s->devices, s->devices == 1 ? "" : "s");
    return s->plugin->select(d.index);
}

/* ---- born/cuda.h ---------------------------------------------------------------------------- */
int bn_cuda_device_count(void)
{
    slot_of(BN_DEVICE_CUDA);
    return cuda_slot.devices;
}

const char *bn_cuda_unavailable_reason(void) { return bn__plugin_why(BN_DEVICE_CUDA); }

/* The plugin when device is one of its devices; NULL with BN_ERR_DEVICE naming fn otherwise. */
static const bn_plugin *cuda_for(const char *fn, int device)
{
    if (!bn__plugin_backend(fn, bn_cuda(device))) return NULL;
    return cuda_slot.plugin;
}

bn_status bn_cuda_device_name(int device, char *buf, size_t n)
{
    BN_CHECK_NULL_STATUS("bn_cuda_device_name", buf);
    const bn_plugin *p = cuda_for("bn_cuda_device_name", device);
    return p ? p->device_name(device, buf, n) : BN_ERR_DEVICE;
}

bn_status bn_cuda_memory_stats_get(int device, bn_cuda_memory_stats *out)
{
    BN_CHECK_NULL_STATUS("bn_cuda_memory_stats_get", out);
    const bn_plugin *p = cuda_for("bn_cuda_memory_stats_get", device);
    return p ? p->memory_stats(device, out) : BN_ERR_DEVICE;
}

bn_status bn_cuda_empty_cache(int device)
{
    const bn_plugin *p = cuda_for("bn_cuda_empty_cache", device);
    return p ? p->empty_cache(device) : BN_ERR_DEVICE;
}

bn_status bn_cuda_set_allow_tf32(bool allow)
{
    const bn_plugin *p = bn__plugin(BN_DEVICE_CUDA);
    if (!p)
        return bn__error(BN_ERR_DEVICE, "bn_cuda_set_allow_tf32: no CUDA plugin: %s",
                         bn__plugin_why(BN_DEVICE_CUDA));
    p->set_allow_tf32(allow);
    return BN_OK;
}

bn_status bn_cuda_synchronize(int device)
{
    const bn_plugin *p = cuda_for("bn_cuda_synchronize", device);
    return p ? p->synchronize(device) : BN_ERR_DEVICE;
}

/* ---- CUDA graphs ---------------------------------------------------------------------------- */
struct bn_cuda_graph {
    void *handle; /* the plugin's */
};

bn_status bn_cuda_graph_begin(int device)
{
    const bn_plugin *p = cuda_for("bn_cuda_graph_begin", device);
    if (!p) return BN_ERR_DEVICE;
    bn_status st = p->graph_begin(device);
    if (st == BN_OK) bn__rng_capture_begin();
    return st;
}

bn_cuda_graph *bn_cuda_graph_end(int device)
{
    const bn_plugin *p = cuda_for("bn_cuda_graph_end", device);
    if (!p) return NULL;
    bool drawn = bn__rng_capture_end();
    void *h = NULL;
    bn_status st = p->graph_end(device, &h);
    if (st != BN_OK) return NULL;
    if (drawn) {
        p->graph_free(h);
        return bn__error_null(BN_ERR_UNSUPPORTED,
                              "bn_cuda_graph_end: the captured work drew random numbers (dropout "
                              "or a random op); every replay would repeat the same draws, so "
                              "capture a step without them (e.g. dropout 0)");
    }
    bn_cuda_graph *g = malloc(sizeof *g);
    if (!g) {
        p->graph_free(h);
        return bn__error_null(BN_ERR_OOM, "bn_cuda_graph_end: out of memory");
    }
    g->handle = h;
    return g;
}

bn_status bn_cuda_graph_replay(bn_cuda_graph *g)
{
    BN_CHECK_NULL_STATUS("bn_cuda_graph_replay", g);
    const bn_plugin *p = bn__plugin(BN_DEVICE_CUDA);
    if (!p) return bn__error(BN_ERR_DEVICE, "bn_cuda_graph_replay: no CUDA plugin");
    return p->graph_launch(g->handle);
}

void bn_cuda_graph_free(bn_cuda_graph *g)
{
    if (!g) return;
    const bn_plugin *p = bn__plugin(BN_DEVICE_CUDA);
    if (p) p->graph_free(g->handle);
    free(g);
}
