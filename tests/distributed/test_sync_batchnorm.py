"""SyncBatchNorm's second derivative across ranks equals BatchNorm's over the whole batch."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import gradwise as gw
from distributed.mpi_helpers import load_state, run
from distributed.sync_bn_second_order_worker import batch
from gradwise.nn import functional as F

HERE = Path(__file__).parent


def test_sync_batchnorm_hessian_vector_product_on_two_ranks(mpi, tmp_path: Path) -> None:
    run(mpi, 2, [sys.executable, str(HERE / "sync_bn_second_order_worker.py"), str(tmp_path)])
    ranks = [load_state(tmp_path / f"rank{r}.npz") for r in range(2)]
    # one process, the whole batch, plain BatchNorm
    data = batch(2)
    x = gw.tensor(data["x"], requires_grad=True)
    weight = gw.tensor(data["weight"], requires_grad=True)
    bias = gw.tensor(data["bias"], requires_grad=True)
    out = F.batch_norm(x, None, None, weight, bias, training=True, eps=1e-5).tanh()
    first = gw.autograd.grad(out, [x, weight, bias], gw.tensor(data["upstream"]),
                             create_graph=True)
    projection = ((first[0] * gw.tensor(data["v_x"])).sum()
                  + (first[1] * gw.tensor(data["v_weight"])).sum()
                  + (first[2] * gw.tensor(data["v_bias"])).sum())
    second = gw.autograd.grad(projection, [x, weight, bias])
    for order, grads in (("first", first), ("second", second)):
        # x: each rank holds its slice; weight and bias: each rank its share, summed (as DDP)
        np.testing.assert_allclose(np.concatenate([r[f"{order}_x"] for r in ranks]),
                                   np.asarray(grads[0]), rtol=1e-9, atol=1e-12)
        for i, key in ((1, "w"), (2, "b")):
            np.testing.assert_allclose(sum(r[f"{order}_{key}"] for r in ranks),
                                       np.asarray(grads[i]), rtol=1e-9, atol=1e-12,
                                       err_msg=f"{order} {key}")
