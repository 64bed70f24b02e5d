/* born/data.h — data sets for training: the IDX format (MNIST, Fashion-MNIST; gzip'd or not),
 * CSV tables for tabular classification and regression, an in-memory data set of (x, y) rows,
 * train/validation splits, and a data loader that shuffles with a seed (the same order for any
 * thread count), batches, drops the last partial batch on request and prepares the next batch on
 * a background thread while the model trains. */
#ifndef BORN_DATA_H
#define BORN_DATA_H

#include "born/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- IDX files ------------------------------------------------------------------------------ */
/* Reads an IDX file (http://yann.lecun.com/exdb/mnist/), gzip'd when its name ends in ".gz".
 * Element types: unsigned byte → u8, signed byte → i8, short and int → i32, float → f32,
 * double → f64; the shape is the file's. A bad magic, a size that does not match the dims or a
 * truncated file is BN_ERR_FORMAT naming the file; a missing file is BN_ERR_IO. */
BN_API bn_tensor *bn_idx_read(const char *path);

/* ---- data sets: N rows of x (N, ...) and y (N, ...) ---------------------------------------- */
typedef struct bn_dataset bn_dataset;

/* A data set over x and y (both retained, not copied); their first dims must agree. */
BN_API bn_dataset *bn_dataset_new(const bn_tensor *x, const bn_tensor *y);
BN_API void bn_dataset_free(bn_dataset *d); /* NULL is ignored */
BN_API int64_t bn_dataset_len(const bn_dataset *d); /* -1 for NULL */
/* The whole x / y (new references). */
BN_API bn_tensor *bn_dataset_x(const bn_dataset *d);
BN_API bn_tensor *bn_dataset_y(const bn_dataset *d);
/* Rows [start, start + count) as a new data set (views, no copy). */
BN_API bn_dataset *bn_dataset_slice(const bn_dataset *d, int64_t start, int64_t count);
/* Splits d into a training part and a validation part of round(len * val_fraction) rows,
 * chosen by a permutation seeded with seed (0 <= val_fraction < 1). Both parts are new data sets
 * holding copies of their rows. */
BN_API bn_status bn_dataset_split(const bn_dataset *d, double val_fraction, uint64_t seed,
                                  bn_dataset **train, bn_dataset **val);

/* ---- MNIST and Fashion-MNIST ------------------------------------------------------------------ */
/* Zero means the default. */
typedef struct bn_mnist_opts {
    bool test;      /* the 10,000 test images instead of the 60,000 training images */
    bool normalize; /* (x - mean) / std like torchvision's Normalize((0.2860,), (0.3530,)) for
                       Fashion-MNIST and ((0.1307,), (0.3081,)) for MNIST; else x in [0, 1] */
} bn_mnist_opts;
/* x is f32 (N, 1, 28, 28), y is i64 (N). name is "fashion-mnist", "mnist" or a directory holding
 * {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]. A name is looked for in $BORN_DATA/<name>,
 * $BORN_DATA and /usr/share/datasets/<name>; when it is nowhere the error (BN_ERR_IO) says where
 * it looked and how to get it. */
BN_API bn_dataset *bn_mnist_load(const char *name, bn_mnist_opts o);
/* The directory bn_mnist_load would read name from, written into buf; false (no error set) when
 * there is none. */
BN_API bool bn_mnist_find(const char *name, char *buf, size_t n);

/* ---- CSV tables -------------------------------------------------------------------------------- */
/* Zero means the default. */
typedef struct bn_csv_opts {
    const char *target; /* the target column: its header name, or its index as a string ("0",
                           "-1" = the last); NULL: the last column */
    bool regression;    /* y is f32 (N, 1); otherwise y holds class indices, i64 (N) */
    char delimiter;     /* 0: ',' */
} bn_csv_opts;
/* A CSV file with a header row and numeric cells: x is f32 (N, columns - 1). A cell that is not
 * a number (or, for classification, a target that is not a non-negative integer) is
 * BN_ERR_FORMAT naming the file, line and column. */
BN_API bn_dataset *bn_csv_load(const char *path, bn_csv_opts o);

/* ---- the data loader ------------------------------------------------------------------------- */
typedef struct bn_loader bn_loader;
/* Zero means the default. */
typedef struct bn_loader_opts {
    int64_t batch_size; /* 0: 1 */
    bool shuffle;       /* a new Philox permutation of (seed, epoch) each epoch */
    uint64_t seed;
    bool drop_last; /* leave out the last batch when it is smaller than batch_size */
    bool prefetch;  /* prepare the next batch on a background thread */
} bn_loader_opts;

/* The loader keeps a reference to d's tensors; d may be freed before the loader. */
BN_API bn_loader *bn_loader_new(const bn_dataset *d, bn_loader_opts o);
BN_API void bn_loader_free(bn_loader *l); /* joins the prefetch thread; NULL is ignored */
/* Batches per epoch. */
BN_API int64_t bn_loader_num_batches(const bn_loader *l);
/* Starts epoch `epoch` (its order is a pure function of seed and epoch). Called implicitly with
 * the next epoch number when bn_loader_next reaches the end of one. */
BN_API bn_status bn_loader_start_epoch(bn_loader *l, int64_t epoch);
/* The next batch: *x (B, ...) and *y (B, ...) as new contiguous tensors (registered with the
 * open scope). Returns false at the end of the epoch (then *x = *y = NULL and the next call
 * starts the following epoch) or on an error (bn_error_code() says which). */
BN_API bool bn_loader_next(bn_loader *l, bn_tensor **x, bn_tensor **y);
/* The row indices of the current epoch's order (n = dataset length), for tests and for
 * replaying a batch order elsewhere. */
BN_API const int64_t *bn_loader_order(const bn_loader *l);

#ifdef __cplusplus
}
#endif
#endif
