"""N ranks with batch B train to the same weights as one process with batch N*B (issue 16).

The reference (worker.py reference) is one process that takes the same samples as the N ranks
together, N*B per step: bitwise equal when DDP sums the ranks' gradients in a fixed order
(``deterministic=True``), to float32 rounding with MPI's allreduce. 50 samples do not divide
evenly by 2*4 or 3*4, so the last batches are short and the sampler pads. With plain BatchNorm
each rank normalises with its own batch's statistics, so the reference's forward runs per
rank-sized chunk; with SyncBatchNorm it is one forward over all N*B samples.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from distributed.mpi_helpers import assert_states, load_state, parameter_keys, run, worker

CASES = [
    # model, ranks, extra worker flags, bitwise
    ("mlp", 2, ["--deterministic"], True),
    ("mlp", 3, ["--deterministic"], True),
    ("mlp", 3, [], False),
    ("cnn", 2, ["--deterministic"], True),
    ("cnn", 3, ["--deterministic"], True),
    ("cnn", 3, [], False),
    ("mlp", 3, ["--deterministic", "--accumulate"], True),  # no_sync gradient accumulation
    ("cnn", 3, ["--deterministic", "--bucket-mb", "0.0005"], True),  # several buckets
    # SyncBatchNorm: statistics over all N*B samples, the reference's BatchNorm in one forward
    ("cnn-sync", 2, [], False),
    ("cnn-sync", 3, [], False),
]


@pytest.mark.parametrize(("model", "ranks", "flags", "bitwise"), CASES,
                         ids=[f"{m}-n{n}-{'-'.join(f.lstrip('-') for f in fl) or 'allreduce'}"
                              for m, n, fl, _ in CASES])
def test_ranks_match_one_process_with_n_times_the_batch(
    mpi, tmp_path: Path, model: str, ranks: int, flags: list[str], bitwise: bool
) -> None:
    common = ["--model", model, "--steps", "9", "--out", str(tmp_path), *flags]
    run(mpi, ranks, worker("ddp", *common))
    run(mpi, 0, worker("reference", "--ranks", str(ranks), *common))
    reference = load_state(tmp_path / "reference.npz")
    states = [load_state(tmp_path / f"rank{rank}.npz") for rank in range(ranks)]
    # rank 0 holds the model, running statistics included
    assert_states(states[0], reference, bitwise, what=f"rank 0 vs one process ({model})")
    for rank in range(1, ranks):  # replicas stay identical, bitwise, in every mode
        assert_states(states[rank], states[0], True, parameter_keys(states[0]),
                      what=f"rank {rank} vs rank 0")


def test_the_reference_tells_rank_counts_apart(mpi, tmp_path: Path) -> None:
    """The comparison can fail: 3 ranks do not match a one-process run built for 2."""
    common = ["--model", "mlp", "--steps", "9", "--out", str(tmp_path), "--deterministic"]
    run(mpi, 3, worker("ddp", *common))
    run(mpi, 0, worker("reference", "--ranks", "2", *common))
    with pytest.raises(AssertionError):
        assert_states(load_state(tmp_path / "rank0.npz"),
                      load_state(tmp_path / "reference.npz"), True)
