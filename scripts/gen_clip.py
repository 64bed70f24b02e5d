"""Fixtures for tests/unit/test_clip.c: torch.nn.utils.clip_grad_norm_ (torch 1.13) over a list
of gradients of mixed sizes (one of them empty), for norm types 1, 2, 3 and inf, in f32 and f64,
once with a max_norm that clips and once with one that does not.

Run with Debian's PyTorch:  /usr/bin/python3 scripts/gen_clip.py
Writes tests/data/clip.txt. Case <dtype>_p<norm>_<clip|keep>: tensors g0..g4 (the gradients
before), c0..c4 (after clip_grad_norm_), scalars max_norm, norm_type (inf written as inf) and norm
(the total norm clip_grad_norm_ returned). For inf, torch 1.13 refuses the empty gradient
(max of nothing), so its call leaves that one out; it adds nothing to any norm.
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures import Fixture  # noqa: E402

SHAPES = [(3, 4), (0,), (7,), (2, 3, 5), (257,)]
NORMS = [("1", 1.0), ("2", 2.0), ("3", 3.0), ("inf", math.inf)]


def main():
    fx = Fixture("clip.txt", "gen_clip.py")
    gen = torch.Generator().manual_seed(1234)
    for dname, dt in (("f32", torch.float32), ("f64", torch.float64)):
        for pname, p in NORMS:
            for mode in ("clip", "keep"):
                grads = [(torch.randn(s, generator=gen, dtype=torch.float64) * 2.5).to(dt)
                         for s in SHAPES]
                params = [torch.zeros(s, dtype=dt, requires_grad=True) for s in SHAPES]
                for w, g in zip(params, grads):
                    w.grad = g.clone()
                # the unclipped norm decides max_norm: a quarter of it clips, four times keeps
                probe = [g.clone().to(torch.float64) for g in grads]
                flat = torch.cat([g.reshape(-1) for g in probe])
                full = flat.abs().max() if math.isinf(p) else flat.abs().pow(p).sum() ** (1.0 / p)
                max_norm = float(full) * (0.25 if mode == "clip" else 4.0)
                # torch 1.13 cannot take the max of an empty gradient: the inf cases leave it out
                # of torch's list (it contributes nothing to any norm), the C test keeps it
                listed = [w for w in params if not (math.isinf(p) and w.numel() == 0)]
                norm = torch.nn.utils.clip_grad_norm_(listed, max_norm, norm_type=p)
                case = "%s_p%s_%s" % (dname, pname, mode)
                fx.case(case)
                fx.scalar("max_norm", max_norm)
                fx.scalar("norm_type", p)
                fx.scalar("norm", float(norm))
                for i, (g, w) in enumerate(zip(grads, params)):
                    fx.tensor("g%d" % i, g)
                    fx.tensor("c%d" % i, w.grad)
    fx.write()


if __name__ == "__main__":
    main()
