"""One rank of the SyncBatchNorm second-derivative check: a Hessian-vector product through the
op on this rank's slice of a fixed batch, saved for tests/distributed/test_sync_batchnorm.py.

Usage: python sync_bn_second_order_worker.py OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import gradwise as gw
from gradwise import distributed as dist
from gradwise.nn.parallel.sync_batchnorm import _SyncBatchNormFunction

PER_RANK = 3


def batch(ranks: int) -> dict[str, np.ndarray]:
    """The whole batch, its upstream weights and the projection vectors, the same everywhere."""
    rng = np.random.default_rng(0)
    n = PER_RANK * ranks
    return {"x": rng.normal(size=(n, 3, 2)), "weight": rng.normal(size=3),
            "bias": rng.normal(size=3), "upstream": rng.uniform(0.5, 1.5, size=(n, 3, 2)),
            "v_x": rng.normal(size=(n, 3, 2)), "v_weight": rng.normal(size=3),
            "v_bias": rng.normal(size=3)}


def main() -> None:
    out_dir = Path(sys.argv[1])
    dist.init()
    rank, ranks = dist.get_rank(), dist.get_world_size()
    data = batch(ranks)
    mine = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
    x = gw.tensor(data["x"][mine], requires_grad=True)
    weight = gw.tensor(data["weight"], requires_grad=True)
    bias = gw.tensor(data["bias"], requires_grad=True)
    out = _SyncBatchNormFunction.apply(x, weight, bias, None, None, 0.1, 1e-5).tanh()
    first = gw.autograd.grad(out, [x, weight, bias], gw.tensor(data["upstream"][mine]),
                             create_graph=True)
    projection = ((first[0] * gw.tensor(data["v_x"][mine])).sum()
                  + (first[1] * gw.tensor(data["v_weight"])).sum()
                  + (first[2] * gw.tensor(data["v_bias"])).sum())
    second = gw.autograd.grad(projection, [x, weight, bias])
    np.savez(out_dir / f"rank{rank}.npz",
             **{f"first_{k}": np.asarray(g) for k, g in zip(("x", "w", "b"), first, strict=True)},
             **{f"second_{k}": np.asarray(g) for k, g in zip(("x", "w", "b"), second,
                                                               strict=True)})


if __name__ == "__main__":
    main()
