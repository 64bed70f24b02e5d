/* bench/gpt_step.c — one GPT training step (forward, loss, backward, gradient clipping, AdamW,
 * learning-rate schedule) of born's decoder-only model (gpt.h), timed the way
 * bench/gpu/torch_gpt2.py times PyTorch's: GPT-2 small by default (12 layers, 12 heads, D 768,
 * context 1024, vocab 50304, learned positions, LayerNorm, GELU MLP, biases, tied embeddings,
 * no dropout), batch 8, bf16 autocast with f32 master weights, AdamW (lr 6e-4, betas 0.9 / 0.95,
 * eps 1e-8, weight decay 0.1 on the matrices only, like nanoGPT), warmup + cosine schedule,
 * gradient norm clipped to 1. The step body is cmd_train_gpt.c's train_step, except that the
 * loss is not read back every step: only the first and the last losses are kept (on the device)
 * and read after the clock has stopped.
 *
 * Data: random token ids, uniform in [0, min(50257, vocab)) with a fixed seed, pre-generated as
 * --batches batches of (B, T + 1) ids (inputs the first T, targets the last T) placed on the
 * device before the clock starts, and cycled; the timed loop does no host-side data work.
 *
 * Timing: --warmup untimed steps, then --steps timed steps in blocks of --block steps (default
 * 1): the device is synchronised before and after each block, and a block's time divided by its
 * steps is one sample. ms_per_step_median / _min are the median and the smallest sample,
 * ms_per_step_mean the whole timed time over the timed steps; tokens_per_s and mfu use the
 * median. Blocks longer than 1 let the host run ahead of the GPU as far as born lets it: the step
 * itself still reads a few values back (the token range check of bn_gpt_loss, the embeddings'
 * and the classifier's index checks, the total norm of bn_clip_grad_norm), so the host waits for
 * the GPU there whatever the block.
 *
 * MFU, as nanoGPT estimates it: flops per token = 6 N + 12 L H Q T, with N the parameters
 * excluding the position table (nanoGPT's non-embedding count; the tied token embedding is
 * counted once), Q = D / H the head width and T the context; per step that times B T tokens,
 * divided by the median step time and by the peak: 989.4 TFLOP/s (H100 SXM dense bf16) for bf16,
 * 494.7 TFLOP/s (H100 SXM dense TF32) for fp32, or --peak-tflops.
 *
 *   bench_gpt_step [--device cpu|cuda|cuda:N] [--precision bf16|fp32] [--layers 12] [--heads 12]
 *                  [--dim 768] [--context 1024] [--vocab 50304] [--batch 8] [--steps 20]
 *                  [--warmup 5] [--block 1] [--batches 16] [--seed 0] [--threads N]
 *                  [--checkpointing] [--tf32] [--peak-tflops X] [--graph]
 *
 * --graph (CUDA): after the warm-up, the forward, loss and backward are captured once as a CUDA
 * graph (born/cuda.h) on static input tensors; each timed step copies its batch in, replays the
 * graph, then clips, steps AdamW and the schedule eagerly. The clipping norm is never read back
 * (bn_clip_grad_norm_async) in either mode.
 *
 * Prints one JSON line. */
#include "bench_util.h"

#include "born/born.h"
#include "born/gpt.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#define PROG "bench_gpt_step"

/* ---- options ---------------------------------------------------------------------------------- */

typedef struct opts {
    const char *device_name, *precision;
    bn_device device;
    bn_dtype low; /* BN_BF16 for autocast, BN_F32 for none */
    int64_t layers, heads, dim, context, vocab, batch, steps, warmup, block, batches, seed, threads;
    bool checkpointing, tf32, graph;
    double peak_tflops; /* 0: the default for the precision */
    double lr, min_lr, weight_decay, grad_clip;
} opts;

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static int
usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, PROG ": ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: " PROG " [--device cpu|cuda|cuda:N] [--precision bf16|fp32] "
                    "[--layers L] [--heads H] [--dim D] [--context T] [--vocab V] [--batch B] "
                    "[--steps N] [--warmup N] [--block K] [--batches N] [--seed S] "
                    "[--threads N] [--checkpointing] [--tf32] [--peak-tflops X] [--graph]\n");
    return 2;
}

static bool parse_int(const char *name, const char *s, int64_t lo, int64_t hi, int64_t *v)
{
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (!*s || *end || errno || x < lo || x > hi) {
        fprintf(stderr, PROG ": %s must be an integer in [%lld, %lld], got '%s'\n", name,
                (long long)lo, (long long)hi, s);
        return false;
    }
    *v = x;
    return true;
}

static bool parse_device(const char *s, bn_device *out)
{
    if (strcmp(s, "cpu") == 0) return *out = bn_cpu(), true;
    if (strcmp(s, "cuda") == 0) return *out = bn_cuda(0), true;
    int64_t i;
    if (strncmp(s, "cuda:", 5) == 0 && s[5] && parse_int("--device cuda:N", s + 5, 0, 63, &i))
        return *out = bn_cuda((int)i), true;
    return false;
}

/* Returns 0, or the exit status of a usage error. */
static int parse(int argc, char **argv, opts *o)
{
    *o = (opts){.device_name = "cpu",
                .precision = "bf16",
                .low = BN_BF16,
                .layers = 12,
                .heads = 12,
                .dim = 768,
                .context = 1024,
                .vocab = 50304,
                .batch = 8,
                .steps = 20,
                .warmup = 5,
                .block = 1,
                .batches = 16,
                .lr = 6e-4,
                .weight_decay = 0.1,
                .grad_clip = 1.0};
    o->device = bn_cpu();
    static const struct {
        const char *name;
        int64_t lo, hi;
        size_t offset;
    } ints[] = {
        {"--layers", 1, 1000, offsetof(opts, layers)},
        {"--heads", 1, 1024, offsetof(opts, heads)},
        {"--dim", 1, 1 << 16, offsetof(opts, dim)},
        {"--context", 1, 1 << 20, offsetof(opts, context)},
        {"--vocab", 2, 1 << 24, offsetof(opts, vocab)},
        {"--batch", 1, 1 << 20, offsetof(opts, batch)},
        {"--steps", 1, 1000000, offsetof(opts, steps)},
        {"--warmup", 0, 1000000, offsetof(opts, warmup)},
        {"--block", 1, 1000000, offsetof(opts, block)},
        {"--batches", 1, 4096, offsetof(opts, batches)},
        {"--seed", 0, INT64_MAX, offsetof(opts, seed)},
        {"--threads", 1, 1024, offsetof(opts, threads)},
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--checkpointing") == 0) {
            o->checkpointing = true;
            continue;
        }
        if (strcmp(a, "--tf32") == 0) {
            o->tf32 = true;
            continue;
        }
        if (strcmp(a, "--graph") == 0) {
            o->graph = true;
            continue;
        }
        if (i + 1 >= argc) return usage("%s: unknown option or missing value", a);
        const char *v = argv[++i];
        bool known = false;
        for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++)
            if (strcmp(a, ints[k].name) == 0) {
                if (!parse_int(a, v, ints[k].lo, ints[k].hi,
                               (int64_t *)((char *)o + ints[k].offset)))
                    return 2;
                known = true;
            }
        if (known) continue;
        if (strcmp(a, "--device") == 0) {
            if (!parse_device(v, &o->device))
                return usage("--device must be cpu, cuda or cuda:N, got '%s'", v);
            o->device_name = v;
        } else if (strcmp(a, "--precision") == 0) {
            if (strcmp(v, "bf16") != 0 && strcmp(v, "fp32") != 0)
                return usage("--precision must be bf16 or fp32, got '%s'", v);
            o->precision = v;
            o->low = strcmp(v, "bf16") == 0 ? BN_BF16 : BN_F32;
        } else if (strcmp(a, "--peak-tflops") == 0) {
            char *end;
            double x = strtod(v, &end);
            if (!*v || *end || !isfinite(x) || !(x > 0))
                return usage("--peak-tflops must be a number > 0, got '%s'", v);
            o->peak_tflops = x;
        } else {
            return usage("unknown option '%s'", a);
        }
    }
    if (o->steps % o->block)
        return usage("--steps %lld must be a multiple of --block %lld", (long long)o->steps,
                     (long long)o->block);
    if (o->graph && (o->device.type != BN_DEVICE_CUDA || o->warmup < 1))
        return usage("--graph needs --device cuda and --warmup >= 1");
    if (o->peak_tflops == 0) o->peak_tflops = o->low == BN_BF16 ? 989.4 : 494.7;
    o->min_lr = o->lr / 10;
    return 0;
}

/* ---- the run ----------------------------------------------------------------------------------- */

typedef struct bench {
    bn_module *model;
    bn_optim *decay, *no_decay;
    bn_sched *s_decay, *s_no_decay;
    bn_tensor **params; /* borrowed from the model */
    int nparams;
    bn_tensor **x, **y; /* batches of inputs and targets (B, T) on the device */
    /* --graph: forward, loss and backward captured once on the static batch (xs, ys); gloss is
     * the captured loss, rewritten by each replay */
    bn_cuda_graph *g;
    bn_tensor *xs, *ys, *gloss;
} bench;

static void bench_free(bench *b)
{
    bn_cuda_graph_free(b->g);
    bn_sched_free(b->s_decay);
    bn_sched_free(b->s_no_decay);
    bn_optim_free(b->decay);
    bn_optim_free(b->no_decay);
    bn_module_free(b->model);
    free(b->params);
    free(b->x);
    free(b->y);
}

static int fail(const char *what)
{
    fprintf(stderr, PROG ": %s: %s\n", what, bn_error_message());
    return 1;
}

/* Waits for the device's queued work (the CPU backend runs synchronously). */
static bn_status sync_device(bn_device d)
{
    return d.type == BN_DEVICE_CUDA ? bn_cuda_synchronize(d.index) : BN_OK;
}

/* The model on the device, AdamW over two groups (decay on the matrices, none on biases and norm
 * weights) with the same warmup + cosine schedule as cmd_train_gpt.c: warmup over the untimed
 * steps, cosine down to lr / 10 at the last timed step. */
static int setup_model(const opts *o, bench *b)
{
    bn_gpt_config c;
    if (bn_gpt_preset("gpt2", &c) != BN_OK) return fail("the gpt2 preset");
    c.vocab_size = o->vocab;
    c.context = o->context;
    c.layers = o->layers;
    c.heads = o->heads;
    c.kv_heads = 0;
    c.dim = o->dim;
    c.dropout = 0;
    c.checkpoint = o->checkpointing;
    bn_manual_seed((uint64_t)o->seed);
    b->model = bn_gpt_new(&c);
    if (!b->model) return fail("building the model");
    if (o->device.type != BN_DEVICE_CPU && bn_module_to_device(b->model, o->device) != BN_OK)
        return fail("moving the model");
    b->nparams = bn_module_parameters(b->model, NULL, 0);
    if (b->nparams < 1) return fail("the parameters");
    b->params = malloc(sizeof *b->params * (size_t)b->nparams);
    bn_tensor **two = malloc(sizeof *two * (size_t)b->nparams);
    bn_tensor **one = malloc(sizeof *one * (size_t)b->nparams);
    if (!b->params || !two || !one) {
        free(two);
        free(one);
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    bn_module_parameters(b->model, b->params, b->nparams);
    int n2 = 0, n1 = 0;
    for (int i = 0; i < b->nparams; i++) {
        if (bn_ndim(b->params[i]) >= 2)
            two[n2++] = b->params[i];
        else
            one[n1++] = b->params[i];
    }
    bn_adam_opts ao = {
        .lr = o->lr, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = o->weight_decay};
    b->decay = bn_optim_adamw_params(two, n2, ao);
    ao.weight_decay = BN_ZERO;
    b->no_decay = b->decay && n1 ? bn_optim_adamw_params(one, n1, ao) : NULL;
    free(two);
    free(one);
    if (!b->decay || (n1 && !b->no_decay)) return fail("the optimizers");
    int64_t total = o->warmup + o->steps;
    b->s_decay = bn_sched_warmup_cosine(b->decay, o->warmup, total, o->min_lr);
    b->s_no_decay =
        b->no_decay ? bn_sched_warmup_cosine(b->no_decay, o->warmup, total, o->min_lr) : NULL;
    if (!b->s_decay || (b->no_decay && !b->s_no_decay)) return fail("the schedules");
    return 0;
}

/* --batches batches of uniform random ids (B, T + 1) made on the host with born's generator
 * (seeded), split into inputs and targets and copied to the device once. The tensors belong to
 * the caller's open scope. */
static int setup_data(const opts *o, bench *b)
{
    b->x = calloc((size_t)o->batches, sizeof *b->x);
    b->y = calloc((size_t)o->batches, sizeof *b->y);
    if (!b->x || !b->y) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    int64_t hi = o->vocab < 50257 ? o->vocab : 50257, T = o->context;
    bn_manual_seed((uint64_t)o->seed + 1);
    for (int64_t i = 0; i < o->batches; i++) {
        bn_tensor *ids = bn_randint(0, hi, BN_SHAPE(o->batch, T + 1), BN_I64);
        b->x[i] = bn_tensor_to(bn_contiguous(bn_narrow(ids, 1, 0, T)), o->device);
        b->y[i] = bn_tensor_to(bn_contiguous(bn_narrow(ids, 1, 1, T)), o->device);
        if (!b->x[i] || !b->y[i]) return fail("making the batches");
    }
    return sync_device(o->device) == BN_OK ? 0 : fail("bn_cuda_synchronize");
}

/* AdamW on both groups, then (zero: the gradients cleared, as an eager step does; a graph's are
 * rewritten by its next replay) the schedules. */
static bn_status optim_steps(bench *b, bool zero)
{
    bn_status st = bn_optim_step(b->decay);
    if (st == BN_OK && b->no_decay) st = bn_optim_step(b->no_decay);
    if (zero) {
        bn_optim_zero_grad(b->decay);
        if (b->no_decay) bn_optim_zero_grad(b->no_decay);
    }
    if (st == BN_OK) st = bn_sched_step(b->s_decay);
    if (st == BN_OK && b->s_no_decay) st = bn_sched_step(b->s_no_decay);
    return st;
}

/* One optimizer step on batch i: cmd_train_gpt.c's train_step without reading the loss. When
 * keep is not NULL, *keep gets the loss (detached, still on the device), owned by the caller's
 * scope. */
static bn_status train_step(const opts *o, bench *b, int64_t i, bn_tensor **keep)
{
    bn_scope_begin();
    bn_tensor *x = b->x[i % o->batches], *y = b->y[i % o->batches], *l = NULL;
    bn_status st = o->low != BN_F32 ? bn_autocast_begin(o->low) : BN_OK;
    if (st == BN_OK) {
        l = bn_gpt_loss(b->model, x, y);
        if (o->low != BN_F32) bn_autocast_end();
    }
    if (st == BN_OK && !l) st = bn_error_code();
    if (st == BN_OK) st = bn_backward(l);
    if (st == BN_OK && keep) {
        *keep = bn_scope_keep(bn_detach(l));
        if (!*keep) st = bn_error_code();
    }
    /* the norm stays on the device: no host read */
    if (st == BN_OK && o->grad_clip > 0 &&
        !bn_clip_grad_norm_async(b->params, b->nparams, o->grad_clip, 2.0))
        st = bn_error_code();
    bn_scope_end();
    return st == BN_OK ? optim_steps(b, true) : st;
}

/* --graph: captures forward + loss + backward on copies of batch 0 (the gradients the capture
 * makes are rewritten by every replay, so they are never zeroed between steps). */
static bn_status capture(const opts *o, bench *b)
{
    b->xs = bn_clone(b->x[0]);
    b->ys = bn_clone(b->y[0]);
    if (!b->xs || !b->ys) return bn_error_code();
    bn_optim_zero_grad(b->decay);
    if (b->no_decay) bn_optim_zero_grad(b->no_decay);
    bn_status st = bn_cuda_graph_begin(o->device.index);
    if (st != BN_OK) return st;
    bn_scope_begin();
    bn_tensor *l = NULL;
    if (o->low != BN_F32) st = bn_autocast_begin(o->low);
    if (st == BN_OK) {
        l = bn_gpt_loss(b->model, b->xs, b->ys);
        if (o->low != BN_F32) bn_autocast_end();
    }
    if (st == BN_OK) st = l ? bn_backward(l) : bn_error_code();
    if (st == BN_OK) b->gloss = bn_scope_keep(bn_detach(l));
    bn_scope_end();
    if (st != BN_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", bn_error_message());
        bn_cuda_graph_free(bn_cuda_graph_end(o->device.index));
        fprintf(stderr, PROG ": capture: %s\n", msg);
        return st;
    }
    b->g = bn_cuda_graph_end(o->device.index);
    return b->g ? BN_OK : bn_error_code();
}

/* One step with the graph: batch i copied in, one replay, then clipping, AdamW and the
 * schedule as in train_step. */
static bn_status graph_step(const opts *o, bench *b, int64_t i, bn_tensor **keep)
{
    bn_scope_begin();
    bn_status st = bn_copy_(b->xs, b->x[i % o->batches]);
    if (st == BN_OK) st = bn_copy_(b->ys, b->y[i % o->batches]);
    if (st == BN_OK) st = bn_cuda_graph_replay(b->g);
    if (st == BN_OK && keep) {
        *keep = bn_scope_keep(bn_clone(b->gloss));
        if (!*keep) st = bn_error_code();
    }
    if (st == BN_OK && o->grad_clip > 0 &&
        !bn_clip_grad_norm_async(b->params, b->nparams, o->grad_clip, 2.0))
        st = bn_error_code();
    bn_scope_end();
    return st == BN_OK ? optim_steps(b, false) : st;
}

/* A JSON number, or null when x is not finite. */
static void json_num(const char *key, double x, const char *fmt)
{
    printf(",\"%s\":", key);
    if (isfinite(x))
        printf(fmt, x);
    else
        printf("null");
}

/* The parameters nanoGPT's MFU counts: all but the learned position table. Runs inside the
 * caller's scope (which owns the reference bn_module_get returns). */
static int64_t mfu_params(const bench *b)
{
    int64_t n = bn_module_num_parameters(b->model);
    bn_tensor *wpe = bn_module_get(b->model, "transformer.wpe.weight");
    if (wpe) {
        n -= bn_numel(wpe);
    } else {
        bn_error_clear(); /* positions other than learned have no table */
    }
    return n;
}

static void print_result(const opts *o, const bench *b, double *samples, int nsamples,
                         double timed_ms, double loss_first, double loss_last)
{
    qsort(samples, (size_t)nsamples, sizeof *samples, cmp_double);
    double median = nsamples % 2 ? samples[nsamples / 2]
                                 : 0.5 * (samples[nsamples / 2 - 1] + samples[nsamples / 2]);
    double tokens = (double)(o->batch * o->context);
    int64_t n = mfu_params(b);
    double q = (double)(o->dim / o->heads);
    double per_token =
        6.0 * (double)n + 12.0 * (double)o->layers * (double)o->heads * q * (double)o->context;
    double achieved = per_token * tokens / (median * 1e-3); /* FLOP/s */
    char gpu[256] = "cpu";
    if (o->device.type == BN_DEVICE_CUDA &&
        bn_cuda_device_name(o->device.index, gpu, sizeof gpu) != BN_OK)
        snprintf(gpu, sizeof gpu, "?");
    for (char *p = gpu; *p; p++)
        if (*p == '"' || *p == '\\') *p = '?';
    printf("{\"bench\":\"gpt_step\",\"impl\":\"born\",\"device\":\"%s\",\"gpu\":\"%s\","
           "\"precision\":\"%s\",\"tf32\":%s,\"checkpointing\":%s,\"params\":%lld,"
           "\"graph\":%s,\"params_mfu\":%lld,\"layers\":%lld,\"heads\":%lld,\"dim\":%lld,\"vocab\":"
           "%lld,"
           "\"batch\":%lld,\"context\":%lld,\"steps\":%lld,\"warmup\":%lld,\"block\":%lld,"
           "\"threads\":%d",
           o->device_name, gpu, o->precision, o->tf32 ? "true" : "false",
           o->checkpointing ? "true" : "false", (long long)bn_module_num_parameters(b->model),
           o->graph ? "true" : "false", (long long)n, (long long)o->layers, (long long)o->heads,
           (long long)o->dim, (long long)o->vocab, (long long)o->batch, (long long)o->context,
           (long long)o->steps, (long long)o->warmup, (long long)o->block, bn_num_threads());
    json_num("ms_per_step_median", median, "%.3f");
    json_num("ms_per_step_min", samples[0], "%.3f");
    json_num("ms_per_step_mean", timed_ms / (double)o->steps, "%.3f");
    json_num("tokens_per_s", tokens / (median * 1e-3), "%.0f");
    json_num("flops_per_token", per_token, "%.6g");
    json_num("tflops", achieved / 1e12, "%.2f");
    json_num("peak_tflops", o->peak_tflops, "%.1f");
    json_num("mfu", achieved / (o->peak_tflops * 1e12), "%.4f");
    json_num("loss_first", loss_first, "%.5f");
    json_num("loss_last", loss_last, "%.5f");
    printf("}\n");
    fflush(stdout);
}

/* Every step frees and allocates the same large buffers: keep freed host memory in the heap (as
 * cmd_train_gpt.c does) so the CPU runs do not fault every page in again each step. */
static void keep_freed_memory(void)
{
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 512 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

static int run(const opts *o, bench *b)
{
    if (o->device.type == BN_DEVICE_CUDA) {
        if (bn_cuda_device_count() <= o->device.index) {
            const char *why = bn_cuda_unavailable_reason();
            fprintf(stderr, PROG ": --device %s: no such CUDA device (%s)\n", o->device_name,
                    why ? why : "fewer devices");
            return 1;
        }
        if (o->tf32 && bn_cuda_set_allow_tf32(true) != BN_OK) return fail("--tf32");
    }
    if (o->threads && bn_set_num_threads((int)o->threads) != BN_OK) return fail("--threads");
    int rc = setup_model(o, b);
    if (rc) return rc;
    rc = setup_data(o, b);
    if (rc) return rc;
    int nsamples = (int)(o->steps / o->block);
    double *samples = malloc(sizeof *samples * (size_t)nsamples);
    if (!samples) return fprintf(stderr, PROG ": out of memory\n"), 1;
    bn_tensor *first = NULL, *last = NULL;
    int64_t step = 0;
    for (; step < o->warmup; step++)
        if (train_step(o, b, step, step == 0 ? &first : NULL) != BN_OK) {
            free(samples);
            return fail("warm-up step");
        }
    if (o->graph && capture(o, b) != BN_OK) {
        free(samples);
        return fail("CUDA graph capture");
    }
    double timed_ms = 0;
    for (int s = 0; s < nsamples; s++) {
        if (sync_device(o->device) != BN_OK) {
            free(samples);
            return fail("bn_cuda_synchronize");
        }
        double t0 = now_ms();
        for (int64_t k = 0; k < o->block; k++, step++) {
            bn_tensor **keep = step == 0 ? &first : step == o->warmup + o->steps - 1 ? &last : NULL;
            if ((o->graph ? graph_step(o, b, step, keep) : train_step(o, b, step, keep)) != BN_OK) {
                free(samples);
                return fail("timed step");
            }
        }
        if (sync_device(o->device) != BN_OK) {
            free(samples);
            return fail("bn_cuda_synchronize");
        }
        double ms = now_ms() - t0;
        timed_ms += ms;
        samples[s] = ms / (double)o->block;
    }
    if (!last) last = first; /* one step in all: it is both */
    double loss_first = bn_item(first), loss_last = bn_item(last);
    print_result(o, b, samples, nsamples, timed_ms, loss_first, loss_last);
    free(samples);
    return 0;
}

int main(int argc, char **argv)
{
    opts o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc;
    keep_freed_memory();
    bench b = {0};
    bn_scope_begin(); /* owns the batches and the kept losses */
    rc = run(&o, &b);
    bn_scope_end();
    bench_free(&b);
    return rc;
}
