"""Run under mpiexec: every collective on every rank; each writes DIR/rank{r}.json (argv[1]).

Files, not stdout: the launcher may interleave the ranks' long lines.
"""

import json
import sys
from pathlib import Path

import numpy as np

import gradwise as gw
from gradwise import distributed as dist

group = dist.init()
rank, size = group.rank, group.world_size
results = {"rank": rank, "size": size, "initialized": dist.is_initialized()}
for op in ("sum", "avg", "max", "min", "product"):
    t = gw.tensor([rank + 1.0, -(rank + 1.0)])
    dist.all_reduce(t, op)
    results[op] = np.asarray(t.data).tolist()
b = gw.tensor(np.full(3, float(rank)))
dist.broadcast(b, src=size - 1)
results["broadcast"] = np.asarray(b.data).tolist()
results["all_gather"] = [np.asarray(t.data).tolist()
                         for t in dist.all_gather(None, gw.tensor([rank, 10 * rank]))]
results["json"] = dist.all_gather_json({"r": rank})
try:
    dist.all_gather(None, gw.zeros(rank + 1))
except dist.DistributedError as error:
    results["mismatch"] = str(error)
# the same family: every collective refuses shapes or dtypes that differ across ranks
mismatches = {
    "all_reduce_shape": lambda: dist.all_reduce(gw.ones(2 + rank) * (rank + 1)),
    "all_reduce_dtype": lambda: dist.all_reduce(
        np.ones(2, dtype=np.float64 if rank == 2 else np.float32)),
    "broadcast_shape": lambda: dist.broadcast(gw.ones(2, 1 + (rank == 1))),
}
for name, call in mismatches.items():
    try:
        call()
        results[name] = "no error"
    except dist.DistributedError as error:
        results[name] = str(error)
try:
    dist.all_gather([gw.zeros(2)], gw.ones(2))
    results["short_list"] = "no error"
except ValueError as error:
    results["short_list"] = str(error)
filled = [gw.zeros(2) for _ in range(size)]
same = dist.all_gather(filled, gw.tensor([float(rank), 1.0]))
results["filled"] = [np.asarray(t.data).tolist() for t in filled]
results["filled_in_place"] = same is filled and len(filled) == size
dist.barrier()
Path(sys.argv[1], f"rank{rank}.json").write_text(json.dumps(results))
