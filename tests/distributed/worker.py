"""One program, run under ``mpiexec -n N`` (the distributed side) or alone (the reference).

    worker.py ddp       --model mlp|cnn --ranks N --steps K --out DIR [--deterministic]
    worker.py reference --model mlp|cnn --ranks N --steps K --out DIR [--deterministic]
    worker.py trainer   --model mlp|cnn --epochs E --out DIR [--resume CKPT]
                        [--checkpoint-every S] [--die-at-step S] [--hang-at-step S]

``ddp`` trains with DistributedDataParallel on a DistributedSampler's shards and writes each
rank's final state to DIR/rank{r}.npz. ``reference`` is one process with batch N*B on the same
samples: the forward pass runs per rank-sized chunk, because that is what data parallelism
computes (each chunk has its rank's dropout stream and normalises with its own BatchNorm
statistics, rank 0's running statistics are kept), and the gradient is the mean loss over all
N*B samples (``--deterministic``: the chunks' gradients summed in rank order, as DDP's
deterministic mode does). It writes DIR/reference.npz.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

import gradwise as gw
from gradwise import distributed as dist
from gradwise import nn
from gradwise.data import DataLoader, DistributedSampler
from gradwise.nn import functional as F
from gradwise.nn.parallel import DistributedDataParallel, SyncBatchNorm
from gradwise.train import Callback, Trainer

SAMPLES = 50  # not a multiple of 2*B or 3*B: the last batches and the padding are uneven
BATCH = 4
SEED = 3


def make_data(model: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    shape = (SAMPLES, 6) if model == "mlp" else (SAMPLES, 1, 6, 6)  # cnn, cnn-sync
    x = rng.standard_normal(shape).astype(np.float32)
    y = rng.integers(0, 3, SAMPLES)
    return x, y


def make_model(model: str, distributed: bool = False) -> nn.Module:
    """``cnn-sync``: the cnn with SyncBatchNorm under DDP (its reference: plain BatchNorm over
    the whole N*B batch in one forward)."""
    if model == "cnn-sync":
        cnn = make_model("cnn")
        return SyncBatchNorm.convert_sync_batchnorm(cnn) if distributed else cnn
    if model == "mlp":
        return nn.Sequential(
            nn.Linear(6, 16, rng=1), nn.ReLU(), nn.Dropout(0.3, rng=2), nn.Linear(16, 3, rng=3)
        )
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, rng=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(36, 3, rng=2),
    )


def make_optimizer(model: nn.Module) -> gw.optim.Optimizer:
    return gw.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def save_state(model: nn.Module, path: Path) -> None:
    np.savez(path, **model.state_dict())


def loaders(ranks: int, model: str) -> list[DataLoader]:
    x, y = make_data(model)
    return [
        DataLoader((x, y), batch_size=BATCH,
                   sampler=DistributedSampler(len(x), ranks, rank, shuffle=True, seed=SEED))
        for rank in range(ranks)
    ]


def run_ddp(args: argparse.Namespace) -> None:
    group = dist.init()
    model = make_model(args.model, distributed=True)
    ddp = DistributedDataParallel(model, bucket_cap_mb=args.bucket_mb,
                                  deterministic=args.deterministic)
    optimizer = make_optimizer(model)
    loader = loaders(group.world_size, args.model)[group.rank]
    step, epoch = 0, 0
    while step < args.steps:
        loader.sampler.set_epoch(epoch)
        for x, y in loader:
            optimizer.zero_grad()
            if args.accumulate and len(x) > 1:
                half = len(x) // 2
                with ddp.no_sync():
                    F.cross_entropy(ddp(gw.from_numpy(x[:half])), gw.from_numpy(y[:half])
                                    ).backward()
                x, y = x[half:], y[half:]
            loss = F.cross_entropy(ddp(gw.from_numpy(x)), gw.from_numpy(y))
            loss.backward()
            optimizer.step()
            step += 1
            if step == args.steps:
                break
        epoch += 1
    save_state(model, Path(args.out) / f"rank{group.rank}.npz")


def run_reference(args: argparse.Namespace) -> None:
    ranks = args.ranks
    model = make_model(args.model)
    optimizer = make_optimizer(model)
    # rank r's dropout stream: rank 0's generator jumped r times, as DistributedDataParallel does
    start = model.rng_state()
    streams = []
    for rank in range(ranks):
        model.set_rng_state(start)
        for module in model.modules():
            if isinstance(module.__dict__.get("rng"), np.random.Generator):
                bits = module.rng.bit_generator
                bits.state = bits.jumped(rank).state if rank else bits.state
        streams.append(model.rng_state())
    shards = loaders(ranks, args.model)
    step, epoch = 0, 0
    while step < args.steps:
        for loader in shards:
            loader.sampler.set_epoch(epoch)
        for batches in zip(*shards, strict=True):
            if args.model == "cnn-sync":  # statistics over all N*B samples: one forward
                x = np.concatenate([x for x, _ in batches])
                y = np.concatenate([y for _, y in batches])
                optimizer.zero_grad()
                F.cross_entropy(model(gw.from_numpy(x)), gw.from_numpy(y)).backward()
                optimizer.step()
                step += 1
                if step == args.steps:
                    break
                continue
            buffers = {name: b._data.copy() for name, b in model.named_buffers()}
            kept = None
            outputs, grads = [], []
            optimizer.zero_grad()
            for rank, (x, y) in enumerate(batches):
                for name, b in model.named_buffers():
                    b._data[...] = buffers[name]
                model.set_rng_state(streams[rank])
                if args.accumulate and len(x) > 1:  # as run_ddp: half under no_sync, then the rest
                    half = len(x) // 2
                    F.cross_entropy(model(gw.from_numpy(x[:half])), gw.from_numpy(y[:half])
                                    ).backward()
                    x, y = x[half:], y[half:]
                out = model(gw.from_numpy(x))
                streams[rank] = model.rng_state()
                if rank == 0:
                    kept = {name: b._data.copy() for name, b in model.named_buffers()}
                if args.deterministic:
                    loss = F.cross_entropy(out, gw.from_numpy(y))
                    loss.backward()
                    grads.append([p._grad for p in model.parameters()])
                    optimizer.zero_grad()
                else:
                    outputs.append(out)
            for name, b in model.named_buffers():
                b._data[...] = kept[name]
            if args.deterministic:
                for position, param in enumerate(model.parameters()):
                    total = grads[0][position].copy()
                    for rank in range(1, ranks):
                        total += grads[rank][position]
                    total /= total.dtype.type(ranks)
                    param._grad = total
            else:
                targets = np.concatenate([y for _, y in batches])
                F.cross_entropy(gw.cat(outputs), gw.from_numpy(targets)).backward()
            optimizer.step()
            step += 1
            if step == args.steps:
                break
        epoch += 1
    save_state(model, Path(args.out) / "reference.npz")


class _Checkpointer(Callback):
    """Checkpoint every ``every`` steps; optionally die or hang at a step (rank 1)."""

    def __init__(self, out: Path, every: int, die_at: int, hang_at: int):
        self.out, self.every, self.die_at, self.hang_at = out, every, die_at, hang_at

    def on_batch_end(self, step: int, logs: dict) -> None:
        done = step + 1
        if self.every and done % self.every == 0:
            self.trainer.save_checkpoint(self.out / "ckpt")
        if dist.get_rank() == 1 and done == self.die_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if dist.get_rank() == 1 and done == self.hang_at:
            time.sleep(600)


def run_trainer(args: argparse.Namespace) -> None:
    dist.init()
    out = Path(args.out)
    model = make_model(args.model)
    wrapped = DistributedDataParallel(model, deterministic=args.deterministic)
    optimizer = make_optimizer(model)
    scheduler = None
    if args.onecycle:  # a per-step schedule sized for this number of ranks
        steps = math.ceil(math.ceil(SAMPLES / dist.get_world_size()) / BATCH)
        scheduler = gw.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1,
                                                     total_steps=args.epochs * steps)
    trainer = Trainer(
        wrapped, nn.CrossEntropyLoss(), optimizer, scheduler, seed=SEED, progress="lines",
        callbacks=[_Checkpointer(out, args.checkpoint_every, args.die_at_step, args.hang_at_step)],
        distributed=True,
    )
    x, y = make_data(args.model)
    val = (x[::-1] * 0.5, y[::-1])
    history = trainer.fit((x, y), val_data=val, epochs=args.epochs, batch_size=BATCH,
                          resume_from=args.resume)
    save_state(model, out / f"rank{dist.get_rank()}.npz")
    if dist.get_rank() == 0:
        history.save(out / "history.json")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["ddp", "reference", "trainer"])
    parser.add_argument("--model", choices=["mlp", "cnn", "cnn-sync"], default="mlp")
    parser.add_argument("--ranks", type=int, default=1)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--bucket-mb", type=float, default=25.0)
    parser.add_argument("--deterministic", action="store_true")
    parser.add_argument("--accumulate", action="store_true")
    parser.add_argument("--onecycle", action="store_true")
    parser.add_argument("--out", required=True)
    parser.add_argument("--resume", default=None)
    parser.add_argument("--checkpoint-every", type=int, default=0)
    parser.add_argument("--die-at-step", type=int, default=0)
    parser.add_argument("--hang-at-step", type=int, default=0)
    args = parser.parse_args()
    {"ddp": run_ddp, "reference": run_reference, "trainer": run_trainer}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
