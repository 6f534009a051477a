"""Run under mpiexec -n 2: what a newcomer gets wrong; each rank writes DIR/rank{r}.json.

argv[1] is the folder. Before init(): get_rank() must refuse and DistributedSampler must join
the job. Then DDP on models that differ by rank must name the parameter and both shapes, and a
distributed Trainer with a doctor must give every rank rank 0's findings, without "module.".
"""

import json
import os
import sys
from pathlib import Path

import numpy as np

import gradwise as gw
from gradwise import distributed as dist
from gradwise import nn
from gradwise.data import DistributedSampler
from gradwise.doctor import Doctor
from gradwise.nn.parallel import DistributedDataParallel

rank = int(os.environ.get("PMI_RANK") or os.environ.get("OMPI_COMM_WORLD_RANK") or 0)
results: dict = {}
try:
    dist.get_rank()
    results["get_rank_before_init"] = "no error"
except dist.DistributedError as error:
    results["get_rank_before_init"] = str(error)
results["initialized_before_sampler"] = dist.is_initialized()
sampler = DistributedSampler(10, shuffle=False)  # no init(): the sampler joins the job
results["sampler"] = [sampler.num_replicas, sampler.rank, list(sampler)]
try:
    DistributedDataParallel(nn.Linear(2, 16 + rank, rng=0))
    results["ddp_mismatch"] = "no error"
except dist.DistributedError as error:
    results["ddp_mismatch"] = str(error)

rng = np.random.default_rng(0)
x = rng.standard_normal((24, 2)).astype(np.float32)
y = (x[:, 0] > 0).astype(np.int64)
model = nn.Sequential(nn.Linear(2, 8, rng=1), nn.ReLU(), nn.Linear(8, 2, rng=2))
doctor = Doctor()
trainer = gw.train.Trainer(model, nn.CrossEntropyLoss(),
                           gw.optim.SGD(model.parameters(), lr=0.1),
                           doctor=doctor, distributed=True, seed=0)
trainer.fit((x, y), epochs=2, batch_size=4)
results["findings"] = trainer.doctor.format_findings(overhead=False)
if rank == 0:
    results["doctor_names"] = [sorted(doctor.stats.params), sorted(doctor.stats.activations)]
Path(sys.argv[1], f"rank{rank}.json").write_text(json.dumps(results))
