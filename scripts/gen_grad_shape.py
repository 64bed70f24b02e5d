"""Fixtures for tests/unit/test_grad_shape.c and tests/unit/test_grad_index.c: float32
gradients, from PyTorch, of the ops whose backward adds gradients together (pad reflect /
replicate, gather / scatter / scatter_add / index_select with repeated indices, topk, sort,
repeat, as_strided with overlap).
Run: /usr/bin/python3 scripts/gen_grad_shape.py  (writes tests/data/grad_shape.txt)

Each case stores the input(s) `x` (and `src`), the index where there is one, the upstream
gradient `g` (shaped like the output) and the expected gradients `gx` (and `gsrc`). Views named
in a case are made by the C test the same way before calling the op."""
import torch
import torch.nn.functional as F

from fixtures import Fixture

torch.manual_seed(4321)
fx = Fixture("grad_shape.txt", "gen_grad_shape.py")


def case(name, fn, inputs, **extra):
    """Runs fn on leaf copies of inputs, backprops a random g, stores everything."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    out = fn(**leaves)
    g = torch.randn(out.shape)
    out.backward(g)
    fx.case(name)
    for k, v in inputs.items():
        fx.tensor(k, v)
    for k, v in extra.items():
        fx.tensor(k, v)
    fx.tensor("out", out)
    fx.tensor("g", g)
    for k, v in leaves.items():
        fx.tensor("g" + k, v.grad)


# ---- pad --------------------------------------------------------------------------------------
x = torch.randn(2, 3, 4)
case("pad_reflect", lambda x: F.pad(x, (2, 3, 1, 2), mode="reflect"), {"x": x})
case("pad_replicate", lambda x: F.pad(x, (3, 1, 2, 4), mode="replicate"), {"x": x})
case("pad_reflect_transposed", lambda x: F.pad(x.transpose(1, 2), (1, 2), mode="reflect"),
     {"x": x})
case("pad_constant_crop", lambda x: F.pad(x, (-1, 2, 1, -1), value=0.5), {"x": x})

# ---- indexing with repeated indices -----------------------------------------------------------
x = torch.randn(4, 5)
idx = torch.tensor([[0, 1, 1, 3], [2, 2, 2, 0], [3, 0, 3, 1]])
case("gather_dups", lambda x: x.gather(1, idx), {"x": x}, index=idx)
idx0 = torch.tensor([[3, 3, 0, 1, 3], [0, 0, 2, 2, 2]])
case("gather_dim0_dups", lambda x: x.gather(0, idx0), {"x": x}, index=idx0)
src = torch.randn(2, 3)  # (torch 1.13's backward refuses a src larger than index)
sidx = torch.tensor([[0, 1, 1], [2, 2, 0]])
case("scatter_dups", lambda x, src: x.scatter(1, sidx, src), {"x": x, "src": src}, index=sidx)
case("scatter_add_dups", lambda x, src: x.scatter_add(1, sidx, src), {"x": x, "src": src},
     index=sidx)
iidx = torch.tensor([4, 0, 4, 4, 2])
case("index_select_dups", lambda x: x.index_select(1, iidx), {"x": x}, index=iidx)

# ---- sort / topk ------------------------------------------------------------------------------
x = torch.randn(3, 6)
case("topk_largest", lambda x: x.topk(3, dim=1)[0], {"x": x})
case("topk_smallest_dim0", lambda x: x.topk(2, dim=0, largest=False)[0], {"x": x})
case("sort_descending", lambda x: x.sort(dim=-1, descending=True)[0], {"x": x})

# ---- repeat, as_strided -----------------------------------------------------------------------
x = torch.randn(2, 3)
case("repeat_lead", lambda x: x.repeat(2, 1, 3), {"x": x})
x = torch.randn(10)
case("as_strided_overlap", lambda x: x.as_strided((3, 4), (2, 1), 1), {"x": x})

fx.write()
