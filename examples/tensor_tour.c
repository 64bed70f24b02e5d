/* examples/tensor_tour.c — a short walk through born's tensor API, printed as it goes: creating
 * tensors, views, broadcasting arithmetic, a matmul, reductions, softmax, scopes that free what
 * they own, and errors that explain themselves. `make demo` runs it (scripts/demo.sh).
 * Only the public headers: this is what a program outside the repository writes. */
#include <born/born.h>

#include <stdio.h>
#include <stdlib.h>

/* Prints "label" and then the tensor the way PyTorch would. */
static void show(const char *label, const bn_tensor *t)
{
    printf("%s\n", label);
    if (bn_print(t) != BN_OK) {
        fprintf(stderr, "tensor_tour: %s\n", bn_error_message());
        exit(1);
    }
    putchar('\n');
}

/* Every op returns NULL on failure and keeps the first error, so a chain is checked once. */
static void check(const char *what)
{
    if (bn_error_code() == BN_OK) return;
    fprintf(stderr, "tensor_tour: %s failed: %s\n", what, bn_error_message());
    exit(1);
}

static void creating_and_viewing(void)
{
    printf("== creating tensors and views ==\n");
    bn_tensor *x = bn_reshape(bn_arange(0, 6, 1, BN_F32), BN_SHAPE(2, 3));
    show("x = arange(6).reshape(2, 3):", x);
    show("x.T (a view: no copy, strides swapped):", bn_transpose(x, 0, 1));
    show("x[:, 1:] (a view):", bn_slice(x, 1, 1, 3, 1));
    const int32_t labels[] = {2, 0, 1};
    show("from C data, int32:", bn_from_data(labels, BN_SHAPE(3), BN_I32));
    check("creating");
}

static void arithmetic_and_matmul(void)
{
    printf("== broadcasting arithmetic and matmul ==\n");
    bn_tensor *x = bn_reshape(bn_arange(0, 6, 1, BN_F32), BN_SHAPE(2, 3));
    const float bias_data[] = {10, 20, 30};
    bn_tensor *bias = bn_from_data(bias_data, BN_SHAPE(3), BN_F32);
    show("x + bias (bias [3] broadcasts over the rows of x [2, 3]):", bn_add(x, bias));
    show("relu(x - 2.5):", bn_relu(bn_sub_scalar(x, 2.5)));

    bn_manual_seed(0);
    bn_tensor *w = bn_randn(BN_SHAPE(3, 4), BN_F32);
    show("w = randn(3, 4) with seed 0:", w);
    show("x @ w ([2, 3] @ [3, 4] -> [2, 4]):", bn_matmul(x, w));
    check("arithmetic");
}

static void reductions_and_softmax(void)
{
    printf("== reductions and softmax ==\n");
    const float logit_data[] = {1.0f, 2.0f, 3.0f, 1.0f, 1.0f, 1.0f};
    bn_tensor *logits = bn_from_data(logit_data, BN_SHAPE(2, 3), BN_F32);
    show("logits:", logits);
    show("sum over every dim:", bn_sum(logits, BN_ALL, false));
    show("mean over dim 1, keepdim:", bn_mean(logits, 1, true));
    show("argmax over dim 1 (int64):", bn_argmax(logits, 1, false));
    bn_tensor *p = bn_softmax(logits, -1);
    show("softmax over the last dim:", p);
    show("its rows sum to 1:", bn_sum(p, 1, false));
    check("reductions");
}

static void scopes_and_errors(void)
{
    printf("== scopes and errors ==\n");
    /* Inside a scope nothing is released by hand; bn_scope_keep hands a result outwards. */
    bn_scope_begin();
    bn_tensor *a = bn_ones(BN_SHAPE(2, 2), BN_F32);
    bn_tensor *kept = bn_scope_keep(bn_mul_scalar(bn_add(a, a), 3.0));
    bn_scope_end(); /* a and the bn_add result are gone; kept survives */
    show("kept from an inner scope: (1 + 1) * 3:", kept);

    /* A failing op returns NULL; the chain goes on returning NULL and keeps the first error. */
    bn_tensor *m = bn_ones(BN_SHAPE(2, 3), BN_F32);
    bn_tensor *bad = bn_relu(bn_matmul(m, m));
    printf("bn_relu(bn_matmul([2, 3], [2, 3])) returned %s\n", bad ? "a tensor" : "NULL");
    printf("  %s: %s\n\n", bn_status_name(bn_error_code()), bn_error_message());
    bn_error_clear();
}

int main(void)
{
    /* One scope around the whole tour: every tensor the API returns is freed at its end. */
    bn_scope_begin();
    creating_and_viewing();
    arithmetic_and_matmul();
    reductions_and_softmax();
    scopes_and_errors();
    bn_scope_end();
    printf("threads: %d, born %s\n", bn_num_threads(), bn_version());
    return 0;
}
