/* data/mnist.c — MNIST and Fashion-MNIST: finds the four IDX files (Debian's
 * dataset-fashion-mnist puts them in /usr/share/datasets/fashion-mnist; $BORN_DATA and explicit
 * directories come first), checks that images and labels agree, and returns images as f32
 * (N, 1, 28, 28) in [0, 1] (or normalised like torchvision) and labels as i64 (N). */
#include "data/data_internal.h"

#include <string.h>
#include <sys/stat.h>

#define MNIST_FN "bn_mnist_load"

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The IDX file `stem` in dir, gzip'd or not, written into buf; false when neither exists. */
static bool find_file(const char *dir, const char *stem, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s.gz", dir, stem);
    if (file_exists(buf)) return true;
    snprintf(buf, n, "%s/%s", dir, stem);
    return file_exists(buf);
}

static bool has_mnist_files(const char *dir)
{
    char path[4096];
    return find_file(dir, "train-images-idx3-ubyte", path, sizeof path) ||
           find_file(dir, "t10k-images-idx3-ubyte", path, sizeof path);
}

static bool is_known_name(const char *name)
{
    return strcmp(name, "fashion-mnist") == 0 || strcmp(name, "mnist") == 0;
}

bool bn_mnist_find(const char *name, char *buf, size_t n)
{
    if (!name || !buf || n == 0) return false;
    if (!is_known_name(name)) {
        snprintf(buf, n, "%s", name);
        return is_dir(name) && has_mnist_files(name);
    }
    const char *env = getenv("BORN_DATA");
    if (env && *env) {
        snprintf(buf, n, "%s/%s", env, name);
        if (has_mnist_files(buf)) return true;
        snprintf(buf, n, "%s", env);
        if (has_mnist_files(buf)) return true;
    }
    snprintf(buf, n, "/usr/share/datasets/%s", name);
    return has_mnist_files(buf);
}

static void *not_found(const char *name)
{
    if (!is_known_name(name)) {
        if (!is_dir(name))
            return bn__error_null(BN_ERR_IO,
                                  MNIST_FN ": '%s' is neither a data set name (fashion-mnist, "
                                  "mnist) nor a directory",
                                  name);
        return bn__error_null(BN_ERR_IO,
                              MNIST_FN ": directory '%s' has no train-images-idx3-ubyte[.gz] or "
                              "t10k-images-idx3-ubyte[.gz]",
                              name);
    }
    const char *env = getenv("BORN_DATA");
    const char *how = strcmp(name, "fashion-mnist") == 0
                          ? "install it with 'apt-get install dataset-fashion-mnist' (or 'bash "
                            "scripts/deps.sh data'), or put the IDX files in $BORN_DATA/"
                            "fashion-mnist or a directory given with --data DIR"
                          : "download the four IDX files from http://yann.lecun.com/exdb/mnist/ "
                            "into $BORN_DATA/mnist or a directory given with --data DIR";
    return bn__error_null(BN_ERR_IO, MNIST_FN ": data set '%s' not found (looked in %s%s%s%s"
                          "/usr/share/datasets/%s); %s",
                          name, env && *env ? env : "", env && *env ? "/" : "",
                          env && *env ? name : "", env && *env ? ", " : "", name, how);
}

/* u8 images (N, 28, 28) → f32 (N, 1, 28, 28), scaled to [0, 1] and optionally normalised. */
static bn_tensor *images_to_f32(const bn_tensor *img, double mean, double std, bool normalize)
{
    int64_t shape[4] = {img->shape[0], 1, img->shape[1], img->shape[2]};
    bn_tensor *out = bn__empty(shape, 4, BN_F32, bn_cpu());
    if (!out) return NULL;
    const uint8_t *src = bn__data(img);
    float *dst = bn__data(out);
    int64_t n = bn__numel(img);
    /* the same arithmetic as torchvision: ToTensor divides by 255, Normalize subtracts the mean
     * and divides by the std, each in f32 */
    float fmean = (float)mean, fstd = (float)std;
    for (int64_t i = 0; i < n; i++) {
        float v = (float)src[i] / 255.0f;
        dst[i] = normalize ? (v - fmean) / fstd : v;
    }
    return out;
}

static bn_tensor *read_checked(const char *dir, const char *stem, int ndim, int64_t rows)
{
    char path[4096];
    if (!find_file(dir, stem, path, sizeof path))
        return bn__error_null(BN_ERR_IO, MNIST_FN ": '%s' has no %s[.gz]", dir, stem);
    bn_scope_begin();
    bn_tensor *t = bn_idx_read(path);
    bn_retain(t);
    bn_scope_end();
    if (!t) return NULL;
    bool ok = t->dtype == BN_U8 && t->ndim == ndim && (rows < 0 || t->shape[0] == rows) &&
              (ndim == 1 || (t->shape[1] == 28 && t->shape[2] == 28));
    if (!ok) {
        bn__error(BN_ERR_FORMAT,
                  MNIST_FN ": '%s' is %s %s; expected u8 %s", path, bn_dtype_name(t->dtype),
                  bn__tshape(t), ndim == 1 ? "[N] labels matching the images" : "[N, 28, 28]");
        bn_release(t);
        return NULL;
    }
    return t;
}

bn_dataset *bn_mnist_load(const char *name, bn_mnist_opts o)
{
    BN_CHECK_NULL(MNIST_FN, name);
    char dir[4096];
    if (!bn_mnist_find(name, dir, sizeof dir)) return not_found(name);
    const char *split = o.test ? "t10k" : "train";
    char stem[64];
    snprintf(stem, sizeof stem, "%s-images-idx3-ubyte", split);
    bn_tensor *img = read_checked(dir, stem, 3, -1);
    if (!img) return NULL;
    snprintf(stem, sizeof stem, "%s-labels-idx1-ubyte", split);
    bn_tensor *lab = read_checked(dir, stem, 1, img->shape[0]);
    if (!lab) {
        bn_release(img);
        return NULL;
    }
    bool fashion = strcmp(name, "mnist") != 0;
    bn_tensor *x = images_to_f32(img, fashion ? 0.2860 : 0.1307, fashion ? 0.3530 : 0.3081,
                                 o.normalize);
    bn_tensor *y = x ? bn__to_dtype(lab, BN_I64) : NULL;
    bn_release(img);
    bn_release(lab);
    bn_dataset *d = y ? bn_dataset_new(x, y) : NULL;
    bn_release(x);
    bn_release(y);
    return d;
}
