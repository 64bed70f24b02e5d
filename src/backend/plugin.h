/* backend/plugin.h — the versioned interface between libborn and a device plugin loaded with
 * dlopen (libborn-cuda.so). The plugin exports one C function, bn_plugin_entry, which checks the
 * host's ABI version and returns its table, or NULL when the versions differ. Both sides compile
 * this header: any change to it, to bn_backend or to bn_tview bumps BN_PLUGIN_ABI_VERSION. The
 * plugin links nothing of libborn: it reports errors through the host table. */
#ifndef BORN_BACKEND_PLUGIN_H
#define BORN_BACKEND_PLUGIN_H

#include "backend/backend.h"
#include "born/cuda.h"

#define BN_PLUGIN_ABI_VERSION 9u
#define BN_PLUGIN_ENTRY_SYMBOL "bn_plugin_entry"

/* What libborn lends the plugin. */
typedef struct bn_plugin_host {
    uint32_t abi_version;
    uint32_t struct_size;
    uint32_t
        backend_size; /* sizeof(bn_backend) on the host: a cheap check against a stale plugin */
    /* Sets the calling thread's error (as bn__error does) and returns code. */
    bn_status (*error)(bn_status code, const char *message);
} bn_plugin_host;

/* What the plugin gives libborn. */
typedef struct bn_plugin {
    uint32_t abi_version;
    uint32_t struct_size;
    const char *name;    /* "cuda" */
    bn_device_type type; /* BN_DEVICE_CUDA */
    /* Number of devices (0 when none; then why() says why). */
    int (*device_count)(void);
    const char *(*why)(void);
    /* Makes device the calling thread's current device and returns the backend for it. The
     * table's functions act on the current device. NULL (error set) on failure. */
    const bn_backend *(*select)(int device);
    bn_status (*device_name)(int device, char *buf, size_t n);
    bn_status (*memory_stats)(int device, bn_cuda_memory_stats *out);
    bn_status (*empty_cache)(int device);
    bn_status (*synchronize)(int device);
    /* f32 matmuls of every device on TF32 tensor cores (true) or in full f32 (false). */
    void (*set_allow_tf32)(bool allow);
    /* CUDA graphs (born/cuda.h bn_cuda_graph_*). graph_begin starts capturing the work the
     * calling thread queues on device's stream (allocations during the capture come from a pool
     * private to the graph); graph_end stops it and instantiates the graph into *graph (an
     * opaque handle), or fails when the capture was invalidated; graph_launch queues one replay
     * on the graph's device; graph_free waits for its replays and releases it and its pool. */
    bn_status (*graph_begin)(int device);
    bn_status (*graph_end)(int device, void **graph);
    bn_status (*graph_launch)(void *graph);
    void (*graph_free)(void *graph);
} bn_plugin;

typedef const bn_plugin *(*bn_plugin_entry_fn)(const bn_plugin_host *host);
/* The plugin's one exported symbol (defined by the plugin; libborn finds it with dlsym). */
const bn_plugin *bn_plugin_entry(const bn_plugin_host *host);

/* libborn side (plugin.c): the loaded plugin for a device type, loading it on first use; NULL
 * when it is missing (no error set; bn__plugin_why tells why). */
const bn_plugin *bn__plugin(bn_device_type type);
const char *bn__plugin_why(bn_device_type type);
/* The backend of a plugin device for bn__backend (registry.c): NULL with BN_ERR_DEVICE naming fn
 * when the plugin is missing, has no such device or fails to select it. */
const bn_backend *bn__plugin_backend(const char *fn, bn_device d);
bool bn__plugin_device_available(bn_device d);

#endif
