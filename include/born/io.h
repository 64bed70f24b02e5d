/* born/io.h — saving and loading tensors and models (DESIGN §9): the .born format (docs/FORMAT.md)
 * and safetensors, chosen by the file's extension. Readers validate every header field, offset
 * and size before a byte is used; .born files are memory-mapped and their tensors are zero-copy
 * until written. */
#ifndef BORN_IO_H
#define BORN_IO_H

#include "nn.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Free-form string metadata (safetensors' __metadata__; .born's "metadata" object). */
typedef struct bn_metadata {
    int count;
    char **keys;
    char **values;
} bn_metadata;
BN_API const char *bn_metadata_get(const bn_metadata *m, const char *key); /* NULL if absent */
/* Adds or replaces key (both strings are copied). */
BN_API bn_status bn_metadata_set(bn_metadata *m, const char *key, const char *value);
BN_API void bn_metadata_free(bn_metadata *m);

typedef struct bn_save_opts {
    const bn_metadata *metadata; /* or NULL */
    const char *config_json;     /* .born only: the model's architecture/config as a JSON object */
    bool no_checksum;            /* .born only: skip the SHA-256 of the data section */
} bn_save_opts;

typedef struct bn_load_opts {
    bool verify;  /* .born: check the SHA-256 of the data section */
    bool no_mmap; /* read into memory instead of mapping the file */
} bn_load_opts;

/* What a file holds: the tensors in file order, the metadata, the format name ("born" or
 * "safetensors") and, for .born, the config JSON text (or NULL). */
typedef struct bn_loaded {
    bn_tensor_list tensors;
    bn_metadata metadata;
    char *config_json;
    char format[16];
} bn_loaded;
BN_API void bn_loaded_free(bn_loaded *l);

/* By extension: ".born" or ".safetensors" (anything else is BN_ERR_ARG naming the path). Files
 * are written to a temporary name in the same directory and renamed, so a crash never leaves a
 * half-written file under the real name. */
BN_API bn_status bn_save_tensors(const char *path, const bn_tensor_list *tensors, bn_save_opts o);
BN_API bn_status bn_load_tensors(const char *path, bn_load_opts o, bn_loaded *out);

/* The formats, explicitly. */
BN_API bn_status bn_born_save(const char *path, const bn_tensor_list *tensors, bn_save_opts o);
BN_API bn_status bn_born_load(const char *path, bn_load_opts o, bn_loaded *out);
BN_API bn_status bn_safetensors_save(const char *path, const bn_tensor_list *tensors,
                                     const bn_metadata *metadata);
BN_API bn_status bn_safetensors_load(const char *path, bn_load_opts o, bn_loaded *out);

/* A module's state dict to / from a file (format by extension). Loading is strict: every key of
 * the module must be in the file and every key of the file in the module, with equal shapes. */
BN_API bn_status bn_module_save(const bn_module *m, const char *path);
BN_API bn_status bn_module_load(bn_module *m, const char *path);

#ifdef __cplusplus
}
#endif
#endif
