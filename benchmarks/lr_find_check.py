"""Does lr_find's suggestion train as well as the recipe's own learning rate?

For each recipe and seed: run ``gradwise.doctor.lr_find`` on the recipe's model, optimizer (with
its weight decay), loss (with its label smoothing) and training data, exactly as ``gradwise
lr-find`` does; then train the recipe for the same number of epochs from the same seed (same
initial weights, same batches, same dropout masks, the recipe's schedule) once with the recipe's
lr and once with the suggestion, and measure test accuracy. The old suggestion (steepest descent
of a 0.98-smoothed curve, what gradwise suggested before issue 10) is trained too, from the same
sweep, to show what changed.

Verdict per recipe: the suggestion passes when its mean accuracy over the seeds is not below the
recipe's by more than the recipe's own seed-to-seed standard deviation (or one test sample,
whichever is larger): no measurable loss.

Run: python benchmarks/lr_find_check.py [--recipes spiral digits-mlp ...] [--seeds 3]
(Fashion-MNIST recipes need the files: Debian's dataset-fashion-mnist, or --data-dir DIR; they
are skipped with a note otherwise.)
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from dataclasses import dataclass

import numpy as np
from _common import machine_description

from gradwise import nn
from gradwise.data import DatasetNotFoundError
from gradwise.doctor import lr_find
from gradwise.recipes import (
    TrainConfig,
    build_model,
    load_data,
    make_optimizer,
    make_scheduler,
)
from gradwise.runs.lr_find import _LR_FIND_SETTINGS
from gradwise.train import Trainer


@dataclass(frozen=True)
class Plan:
    recipe: str
    epochs: int
    limit_train: int | None = None


# affordable on a shared 2-core machine: the toy and digits recipes at their own epochs, the
# Fashion MLP at the 3 epochs of the issue on all 60k images, the CNN on a 10k subset
PLANS = {
    "spiral": Plan("spiral", 60),
    "digits-mlp": Plan("digits-mlp", 20),
    "mnist-mlp": Plan("mnist-mlp", 15),
    "fashion-mlp": Plan("fashion-mlp", 3),
    "fashion-cnn": Plan("fashion-cnn", 3, limit_train=10_000),
}
DEFAULT = ("spiral", "digits-mlp", "fashion-mlp", "fashion-cnn")


def old_suggestion(lrs: list[float], raw: list[float]) -> float | None:
    """What gradwise suggested before issue 10 (kept here to compare): the steepest descent of
    the 0.98-smoothed loss over log(lr), before its minimum, skipping the first tenth."""
    average, smoothed = 0.0, []
    for i, value in enumerate(raw):
        average = 0.98 * average + 0.02 * value
        smoothed.append(average / (1 - 0.98 ** (i + 1)))
    lrs_array, losses = np.asarray(lrs), np.asarray(smoothed)
    best = int(np.argmin(losses))
    skip = max(1, lrs_array.size // 10)
    if lrs_array.size < 5 or best <= skip + 1:
        return None
    slopes = np.gradient(losses[: best + 1], np.log(lrs_array[: best + 1]))
    steepest = skip + int(np.argmin(slopes[skip:]))
    return float(lrs_array[steepest]) if slopes[steepest] < 0 else None


def sweep(config: TrainConfig, data) -> object:
    """lr_find as `gradwise lr-find` runs it (runs.find_learning_rate), on loaded data."""
    model = build_model(config, data.input_shape, len(data.classes))
    optimizer = make_optimizer(config, model)
    settings = {key: value for key, value in optimizer.defaults.items()
                if key in _LR_FIND_SETTINGS[config.optimizer]}
    return lr_find(model, nn.CrossEntropyLoss(label_smoothing=config.label_smoothing),
                   data.train, optimizer_cls=type(optimizer), batch_size=config.batch_size,
                   seed=config.seed, progress=False, **settings)


def train_accuracy(config: TrainConfig, data, lr: float) -> float:
    """Test accuracy after training ``config`` with ``lr`` (as `gradwise train` does)."""
    config = config.updated({"lr": lr})
    model = build_model(config, data.input_shape, len(data.classes))
    optimizer = make_optimizer(config, model)
    steps = math.ceil(len(data.train[1]) / config.batch_size)
    scheduler = make_scheduler(config, optimizer, steps)
    trainer = Trainer(model, nn.CrossEntropyLoss(label_smoothing=config.label_smoothing),
                      optimizer, scheduler=scheduler, seed=config.seed, progress=False,
                      scheduler_interval=None if scheduler is None else "step")
    trainer.fit(data.train, epochs=config.epochs, batch_size=config.batch_size)
    trainer.loss_fn = nn.CrossEntropyLoss()
    return float(trainer.evaluate(data.test)["accuracy"])


def check(plan: Plan, seeds: int, data_dir: str | None) -> dict | None:
    base = TrainConfig.from_recipe(plan.recipe).updated(
        {"epochs": plan.epochs, "limit_train": plan.limit_train, "doctor": False,
         "data_dir": data_dir}
    )
    try:
        data = load_data(base)
    except DatasetNotFoundError as error:
        print(f"{plan.recipe}: skipped ({error})")
        return None
    rows = []
    for seed in range(seeds):
        config = base.updated({"seed": seed})
        started = time.perf_counter()
        result = sweep(config, data)
        sweep_seconds = time.perf_counter() - started
        old = old_suggestion(result.lrs, result.raw_losses)
        row = {"seed": seed, "suggestions": result.suggestions, "old": old,
               "suggested": result.suggested_lr, "sweep_s": sweep_seconds}
        started = time.perf_counter()
        row["acc_recipe"] = train_accuracy(config, data, config.lr)
        row["train_s"] = time.perf_counter() - started
        row["acc_suggested"] = train_accuracy(config, data, result.suggested_lr)
        row["acc_old"] = None if old is None else train_accuracy(config, data, old)
        rows.append(row)
        shown = ", ".join(f"{k} {v:.2g}" for k, v in result.suggestions.items() if v)
        old_shown = "none" if old is None else f"{old:.2g}: {row['acc_old']:.2%}"
        print(f"  {plan.recipe} seed {seed}: {shown}; accuracy recipe lr "
              f"{row['acc_recipe']:.2%}, suggested {row['acc_suggested']:.2%}, old "
              f"{old_shown} (sweep {sweep_seconds:.1f} s, one training "
              f"{row['train_s']:.1f} s)", flush=True)
    recipe_acc = [r["acc_recipe"] for r in rows]
    suggested_acc = [r["acc_suggested"] for r in rows]
    old_acc = [r["acc_old"] for r in rows if r["acc_old"] is not None]
    spread = statistics.stdev(recipe_acc) if len(rows) > 1 else 0.0
    tolerance = max(spread, 1.0 / len(data.test[1]))
    return {
        "plan": plan, "data": f"{data.dataset}, {len(data.train[1])} train / "
                              f"{len(data.test[1])} test",
        "recipe_lr": base.lr, "suggested": [r["suggested"] for r in rows],
        "old": [r["old"] for r in rows],
        "recipe": statistics.mean(recipe_acc), "spread": spread,
        "suggested_acc": statistics.mean(suggested_acc),
        "old_acc": statistics.mean(old_acc) if old_acc else math.nan,
        "passed": statistics.mean(suggested_acc) >= statistics.mean(recipe_acc) - tolerance,
        "tolerance": tolerance,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", choices=sorted(PLANS), default=list(DEFAULT))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    print(machine_description())
    print("(shared, noisy machine: the times are rough; the accuracies are deterministic per "
          "seed)\n")
    results = [r for r in (check(PLANS[name], args.seeds, args.data_dir)
                           for name in args.recipes) if r is not None]
    print("\n| recipe | data | epochs | recipe lr | suggested lr (valley) | old suggestion | "
          "accuracy, recipe lr | accuracy, suggested | accuracy, old | verdict |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        lrs = "/".join(f"{v:.2g}" for v in r["suggested"])
        old = "/".join(f"{v:.2g}" for v in r["old"] if v is not None)
        verdict = "at least as good" if r["passed"] else "WORSE"
        print(f"| {r['plan'].recipe} | {r['data']} | {r['plan'].epochs} | {r['recipe_lr']:g} | "
              f"{lrs} | {old} | {r['recipe']:.2%} (sd {r['spread']:.2%}) | "
              f"{r['suggested_acc']:.2%} | {r['old_acc']:.2%} | {verdict} "
              f"(tolerance {r['tolerance']:.2%}) |")


if __name__ == "__main__":
    main()
