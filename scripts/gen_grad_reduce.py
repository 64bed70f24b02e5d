"""Fixtures for tests/unit/test_grad_reduce.c and test_grad_matmul.c: float32 gradients of the
reductions, cumsum, softmax, log_softmax and matmul, from PyTorch.
Run: /usr/bin/python3 scripts/gen_grad_reduce.py  (writes tests/data/grad_reduce.txt)

Each case <name> holds the inputs "x0" (and "x1" for matmul), the upstream gradient "w" (the
output's shape) and the gradients torch computes for them, "g0" (and "g1"): out = f(inputs),
out.backward(w). The C tests map each case name to the same f (GRAD_CASES there). Cases stress
what the rules must get right: large logits (softmax, log_softmax, logsumexp), zeros in prod
(none, one, two per slice), ties and NaN in max/min."""
import torch

from fixtures import Fixture

torch.manual_seed(4321)
fx = Fixture("grad_reduce.txt", "gen_grad_reduce.py")
F = torch.float32


def case(name, fn, *inputs):
    xs = [x.to(F).clone().requires_grad_(True) for x in inputs]
    out = fn(*xs)
    w = torch.randn(out.shape, dtype=F)
    out.backward(w)
    fx.case(name)
    for i, x in enumerate(xs):
        fx.tensor("x%d" % i, x)
    fx.tensor("w", w)
    for i, x in enumerate(xs):
        fx.tensor("g%d" % i, x.grad)


def randn(*shape):
    return torch.randn(*shape, dtype=F)


nan = float("nan")
x34 = randn(3, 4)
x234 = randn(2, 3, 4)
large = randn(3, 5) * 30 + 1000  # exp overflows without the max shift

# sum and mean
case("sum_d1", lambda x: x.sum(1), x34)
case("sum_all_keepdim", lambda x: x.sum(dim=(0, 1), keepdim=True), x34)
case("sum_dims_0_2_keepdim", lambda x: x.sum(dim=(0, 2), keepdim=True), x234)
case("mean_d0", lambda x: x.mean(0), x34)
case("mean_all", lambda x: x.mean(), x234)
case("mean_dims_0_2", lambda x: x.mean(dim=(0, 2)), x234)

# prod: rows with no zero, one zero and two zeros
zeros = torch.tensor([[1.5, -2.0, 0.5, 3.0], [2.0, 0.0, -1.5, 4.0], [0.0, 2.5, 0.0, 1.0]])
case("prod_d1_zeros", lambda x: x.prod(1), zeros)
case("prod_d0_zeros", lambda x: x.prod(0, keepdim=True), zeros.t().contiguous())
case("prod_all_one_zero", lambda x: x.prod(), torch.tensor([[1.5, -2.0, 0.5], [2.0, 0.0, 3.0]]))
case("prod_all_two_zeros", lambda x: x.prod(), torch.tensor([[1.5, 0.0, 0.5], [2.0, 0.0, 3.0]]))
case("prod_all_no_zero", lambda x: x.prod(), randn(2, 3))

# max and min: ties (over all dims the gradient is split; at a dim it goes to the first index)
ties = torch.tensor([[1.0, 3.0, 3.0, 2.0], [5.0, 5.0, 0.0, 0.0], [-1.0, -1.0, -1.0, -1.0]])
case("max_all_ties", lambda x: x.max(), ties)
case("min_all_ties", lambda x: x.min(), ties)
case("max_d1_ties", lambda x: x.max(1)[0], ties)
case("min_d1_ties", lambda x: x.min(1, keepdim=True)[0], ties)
case("max_d0_ties", lambda x: x.max(0)[0], ties)
withnan = torch.tensor([[1.0, nan, 3.0], [4.0, 2.0, 0.0]])
case("max_all_nan", lambda x: x.max(), withnan)
case("max_d1_nan", lambda x: x.max(1)[0], withnan)

# var and std
case("var_d1", lambda x: torch.var(x, 1, correction=1), x34)
case("var_all_c0", lambda x: torch.var(x, dim=(0, 1), correction=0), x34)
case("std_d0", lambda x: torch.std(x, 0, correction=1), x34)
case("std_all_keepdim", lambda x: torch.std(x, dim=(0, 1), correction=0, keepdim=True), x34)

# logsumexp, softmax, log_softmax with large values
case("logsumexp_d1_large", lambda x: torch.logsumexp(x, 1), large)
case("logsumexp_all_large", lambda x: torch.logsumexp(x, (0, 1)), large)
case("softmax_d1_large", lambda x: torch.softmax(x, 1), large)
case("softmax_d0_large", lambda x: torch.softmax(x, 0), large)
case("log_softmax_d1_large", lambda x: torch.log_softmax(x, 1), large)
case("log_softmax_d0_large", lambda x: torch.log_softmax(x, 0), large)

# cumsum
case("cumsum_d0", lambda x: torch.cumsum(x, 0), x34)
case("cumsum_d1", lambda x: torch.cumsum(x, 1), x34)

# matmul, every torch.matmul case
case("matmul_dot", torch.matmul, randn(4), randn(4))
case("matmul_vec_mat", torch.matmul, randn(3), randn(3, 5))
case("matmul_vec_batched", torch.matmul, randn(3), randn(2, 3, 5))
case("matmul_mat_vec", torch.matmul, randn(4, 3), randn(3))
case("matmul_batched_vec", torch.matmul, randn(2, 4, 3), randn(3))
case("matmul_mat_mat", torch.matmul, randn(4, 3), randn(3, 5))
case("matmul_batched_mat", torch.matmul, randn(2, 4, 3), randn(3, 5))
case("matmul_broadcast_batch", torch.matmul, randn(2, 1, 4, 3), randn(5, 3, 2))

fx.write()
