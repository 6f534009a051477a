"""Data parallelism on this machine, and a model of it across 1-64 machines.

Part 1, measured: a recipe's training step (``mnist-mlp`` or ``mnist-cnn``, synthetic inputs of
the right shape, the recipe's optimizer) on this 2-core machine, as
  - 2 MPI ranks x 1 thread each, batch B per rank (DistributedDataParallel, allreduce), and
  - 1 process x 2 threads (BLAS and numba), batch 2B,
both at 2B samples per step, in samples/s. Rounds alternate between the two; medians.

Part 2, modelled: the step time on M machines (each like this one, batch 2B per machine,
data-parallel) is the measured one-machine compute time plus a ring allreduce of the gradient
bytes, with the cost model of Thakur, Rabenseifner and Gropp, "Optimization of Collective
Communication Operations in MPICH", IJHPCA 19(1), 2005, section 4 (reduce-scatter +
allgather, the bandwidth-optimal algorithm for long messages):

    T_allreduce(M) = 2 (M - 1) alpha + 2 (M - 1) / M * n * beta + (M - 1) / M * n * gamma

with n the gradient bytes, beta = 1 / link bandwidth, alpha the per-message latency (assumed,
``--latency-us``) and gamma the time to add one byte (measured: a float32 add over the
buffer). Communication is assumed not to overlap with compute (gradwise runs backward and the
reduction on the same cores), so the model is an upper bound on the step time.

Run: python benchmarks/distributed_scaling.py [--recipe mnist-mlp] [--batch 64] [--rounds 3]
(it starts ``mpiexec`` itself; the machine is shared, so say how loaded it was with the numbers)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
MACHINES = (1, 2, 4, 8, 16, 32, 64)
BANDWIDTHS_GBIT = (10, 25, 100)


def _build(recipe: str, seed: int = 0):
    from gradwise.recipes import TrainConfig, build_model, make_optimizer

    config = TrainConfig.from_recipe(recipe)
    model = build_model(config, (1, 28, 28), 10)
    return model, make_optimizer(config, model)


def _steps(model, optimizer, step_model, batch: int, steps: int, seed: int) -> list[float]:
    import gradwise as gw
    from gradwise.nn import functional as F

    rng = np.random.default_rng(seed)
    x = rng.random((batch, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    times = []
    for _ in range(steps + 2):  # two warm-up steps (numba compilation, allocator)
        started = time.perf_counter()
        loss = F.cross_entropy(step_model(gw.from_numpy(x)), gw.from_numpy(y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    return times[2:]


def role_rank(args: argparse.Namespace) -> None:
    """One rank of the 2-rank job: median step time, gradient bytes, a bare allreduce's time."""
    from gradwise import distributed as dist
    from gradwise.nn.parallel import DistributedDataParallel

    group = dist.init()
    model, optimizer = _build(args.recipe)
    ddp = DistributedDataParallel(model)
    times = _steps(model, optimizer, ddp, args.batch, args.steps, seed=group.rank)
    buffer = np.ones(ddp.allreduce_bytes_per_step // 4, dtype=np.float32)
    reduce_times = []
    for _ in range(10):
        dist.barrier()
        started = time.perf_counter()
        dist.all_reduce_array(buffer)
        reduce_times.append(time.perf_counter() - started)
    if group.rank == 0:
        print(json.dumps({"step": statistics.median(times),
                          "bytes": ddp.allreduce_bytes_per_step,
                          "allreduce": statistics.median(reduce_times)}), flush=True)


def role_single(args: argparse.Namespace) -> None:
    model, optimizer = _build(args.recipe)
    times = _steps(model, optimizer, model, args.batch, args.steps, seed=0)
    print(json.dumps({"step": statistics.median(times)}), flush=True)


def _launch(command: list[str], threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               NUMBA_NUM_THREADS=str(threads))
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    return json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])


def _add_seconds_per_byte(n_bytes: int) -> float:
    a = np.ones(n_bytes // 4, dtype=np.float32)
    b = np.ones_like(a)
    times = []
    for _ in range(20):
        started = time.perf_counter()
        a += b
        times.append(time.perf_counter() - started)
    return statistics.median(times) / n_bytes


def ring_allreduce_seconds(machines: int, n_bytes: int, gbit_per_s: float, latency_s: float,
                           add_s_per_byte: float) -> float:
    """Thakur et al. 2005: 2(p-1)alpha + 2(p-1)/p n beta + (p-1)/p n gamma."""
    if machines == 1:
        return 0.0
    p = machines
    beta = 8.0 / (gbit_per_s * 1e9)  # seconds per byte
    return (2 * (p - 1) * latency_s + 2 * (p - 1) / p * n_bytes * beta
            + (p - 1) / p * n_bytes * add_s_per_byte)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="mnist-mlp")
    parser.add_argument("--batch", type=int, default=64, help="samples per rank (B)")
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-us", type=float, default=50.0,
                        help="assumed per-message latency between machines (TCP, Ethernet)")
    parser.add_argument("--role", choices=["rank", "single"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "rank":
        return role_rank(args)
    if args.role == "single":
        return role_single(args)

    mpiexec = str(Path(sys.executable).with_name("mpiexec"))
    me = [sys.executable, str(HERE), "--recipe", args.recipe, "--steps", str(args.steps)]
    two_ranks, two_threads, one_thread, one_thread_2b = [], [], [], []
    for _ in range(args.rounds):  # interleaved, so a load change hits both contenders
        two_ranks.append(_launch([mpiexec, "-n", "2", *me, "--role", "rank",
                                  "--batch", str(args.batch)], threads=1))
        two_threads.append(_launch([*me, "--role", "single", "--batch", str(2 * args.batch)],
                                   threads=2))
        one_thread.append(_launch([*me, "--role", "single", "--batch", str(args.batch)],
                                  threads=1))
        one_thread_2b.append(_launch([*me, "--role", "single", "--batch", str(2 * args.batch)],
                                     threads=1))
    rank_step = statistics.median(r["step"] for r in two_ranks)
    thread_step = statistics.median(r["step"] for r in two_threads)
    compute_b = statistics.median(r["step"] for r in one_thread)
    compute_2b = statistics.median(r["step"] for r in one_thread_2b)
    n_bytes = two_ranks[0]["bytes"]
    local_allreduce = statistics.median(r["allreduce"] for r in two_ranks)
    samples = 2 * args.batch
    print(f"{args.recipe}, {samples} samples per step on this machine ({os.cpu_count()} cores), "
          f"median of {args.rounds} interleaved rounds x {args.steps} steps")
    print(f"  2 ranks x 1 thread (batch {args.batch} each): {rank_step * 1e3:8.1f} ms/step "
          f"{samples / rank_step:8.0f} samples/s")
    print(f"  1 process x 2 threads (batch {samples}):     {thread_step * 1e3:8.1f} ms/step "
          f"{samples / thread_step:8.0f} samples/s")
    print(f"  ratio (2 ranks / 2 threads, samples/s): {thread_step / rank_step:.2f}")
    print(f"  1 process x 1 thread (batch {samples}):     {compute_2b * 1e3:8.1f} ms/step "
          f"{samples / compute_2b:8.0f} samples/s")
    print(f"  1 process x 1 thread (batch {args.batch}):      {compute_b * 1e3:8.1f} ms/step")
    print(f"  gradient allreduce: {n_bytes / 1e6:.2f} MB per step; on this machine "
          f"(shared memory) {local_allreduce * 1e3:.2f} ms")

    # one machine's step at batch 2B, the fastest way measured (2 ranks: their own local
    # allreduce included)
    compute, how = min((rank_step, "2 ranks"), (thread_step, "2 threads"),
                       (compute_2b, "1 thread"))
    add_s = _add_seconds_per_byte(n_bytes)
    latency = args.latency_us * 1e-6
    print(f"\nModel: M machines like this one, batch {samples} each, one machine's step "
          f"{compute * 1e3:.1f} ms ({how}), {n_bytes / 1e6:.2f} MB of gradients, "
          f"alpha {args.latency_us:g} us, gamma {add_s * 1e12:.1f} ps/byte")
    header = "| machines | " + " | ".join(
        f"{bw} Gb/s: step ms, samples/s, efficiency" for bw in BANDWIDTHS_GBIT) + " |"
    print(header)
    print("|" + "---|" * (1 + len(BANDWIDTHS_GBIT)))
    base = samples / compute
    for machines in MACHINES:
        cells = []
        for bandwidth in BANDWIDTHS_GBIT:
            step = compute + ring_allreduce_seconds(machines, n_bytes, bandwidth, latency, add_s)
            throughput = machines * samples / step
            cells.append(f"{step * 1e3:.1f}, {throughput:,.0f}, "
                         f"{throughput / (machines * base):.0%}")
        print(f"| {machines} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
